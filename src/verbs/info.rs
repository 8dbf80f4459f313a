//! HELP, VRFY, EXPN, TURN, SOML, SEND, SAML: answered by the application's handler when one
//! is assigned (Indy's `OnCommandX`), otherwise by the RFC-safe default.

use crate::command::{Command, CommandHandler};
use crate::error::Result;
use crate::thread::Context;
use crate::verbs::{not_implemented, syntax_error};

fn assigned_or_502(
    ctx: &mut Context<'_>,
    command: &Command,
    handler: &Option<CommandHandler>,
) -> Result<()> {
    match handler {
        Some(handler) => handler(ctx, command),
        None => not_implemented(ctx, command),
    }
}

/// HELP (RFC 5321 §4.1.1.8): optional; `502 5.5.1` unless `on_command_help` is assigned.
pub(crate) fn help(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let handler = &ctx.server().on_command_help;
    assigned_or_502(ctx, command, handler)
}

/// EXPN (RFC 5321 §4.1.1.7, §7.3): off unless `on_command_expn` is assigned, since it gives
/// list members away to address harvesters.
pub(crate) fn expn(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let handler = &ctx.server().on_command_expn;
    assigned_or_502(ctx, command, handler)
}

/// SOML, SEND, SAML: RFC 821 verbs that RFC 5321 Appendix F.6 removed.
pub(crate) fn soml(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let handler = &ctx.server().on_command_soml;
    assigned_or_502(ctx, command, handler)
}

/// See [`soml`].
pub(crate) fn send(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let handler = &ctx.server().on_command_send;
    assigned_or_502(ctx, command, handler)
}

/// See [`soml`].
pub(crate) fn saml(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let handler = &ctx.server().on_command_saml;
    assigned_or_502(ctx, command, handler)
}

/// VRFY (RFC 5321 §4.1.1.6): `252 2.5.0` "cannot verify" unless `on_command_vrfy` is
/// assigned (§3.5.3: 252 is the answer of a server that will not tell).
pub(crate) fn vrfy(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    if command.unparsed_params.is_empty() {
        return syntax_error(ctx, "VRFY needs an argument");
    }
    match &ctx.server().on_command_vrfy {
        Some(handler) => handler(ctx, command),
        None => {
            let text = ctx.server().messages.cannot_vrfy.clone();
            ctx.reply_with(252, "2.5.0", &text, "")
        }
    }
}

/// TURN (RFC 821; RFC 2821 §4.5.3 deprecates it because it reverses roles without
/// authentication): only for a logged-in client, and only with `on_command_turn`.
pub(crate) fn turn(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let server = ctx.server();
    if server.on_command_turn.is_some() && !ctx.thread.logged_in {
        let text = server.messages.not_logged_in.clone();
        return ctx.reply_with(530, "5.7.0", &text, "");
    }
    assigned_or_502(ctx, command, &server.on_command_turn)
}
