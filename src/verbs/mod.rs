//! The built-in verbs, grouped: session setup (`session`), the envelope (`envelope`), message
//! data (`data`), authentication (`auth`) and information verbs (`info`).

use std::sync::Arc;

use crate::command::{Command, CommandHandler};
use crate::error::Result;
use crate::thread::Context;

pub(crate) mod auth;
pub(crate) mod data;
pub(crate) mod envelope;
pub(crate) mod info;
pub(crate) mod session;

/// Indy 9's registration order (AUTH first), then the extension verbs.
pub(crate) const BUILTIN_VERBS: [&str; 18] = [
    "AUTH", "HELP", "SOML", "SEND", "SAML", "VRFY", "EXPN", "TURN", "RSET", "DATA", "HELO", "EHLO",
    "MAIL", "NOOP", "QUIT", "RCPT", "BDAT", "STARTTLS",
];

pub(crate) fn builtin(verb: &str) -> Option<CommandHandler> {
    let handler: CommandHandler = match verb.to_ascii_uppercase().as_str() {
        "AUTH" => Arc::new(auth::auth),
        "HELP" => Arc::new(info::help),
        "SOML" => Arc::new(info::soml),
        "SEND" => Arc::new(info::send),
        "SAML" => Arc::new(info::saml),
        "VRFY" => Arc::new(info::vrfy),
        "EXPN" => Arc::new(info::expn),
        "TURN" => Arc::new(info::turn),
        "RSET" => Arc::new(session::rset),
        "DATA" => Arc::new(data::data),
        "HELO" => Arc::new(session::helo),
        "EHLO" => Arc::new(session::ehlo),
        "MAIL" => Arc::new(envelope::mail),
        "NOOP" => Arc::new(session::noop),
        "QUIT" => Arc::new(session::quit),
        "RCPT" => Arc::new(envelope::rcpt),
        "BDAT" => Arc::new(data::bdat),
        "STARTTLS" => Arc::new(session::starttls),
        _ => return None,
    };
    Some(handler)
}

/// `501 5.5.4` (RFC 5321 §4.2.2 "Syntax error in parameters or arguments").
pub(crate) fn syntax_error(ctx: &mut Context<'_>, reason: &str) -> Result<()> {
    let text = &ctx.server().messages.syntax_error;
    ctx.reply_with(501, "5.5.4", text, reason)
}

/// `503 5.5.1` (RFC 5321 §4.1.4 "Bad sequence of commands"); `why` says which.
pub(crate) fn sequence_error(ctx: &mut Context<'_>, why: &str) -> Result<()> {
    let text = ctx.server().messages.sequence_error.clone();
    let text = if why.is_empty() {
        text
    } else {
        format!("{text}: {why}")
    };
    ctx.reply_with(503, "5.5.1", &text, "")
}

/// `502 5.5.1` (RFC 5321 §4.2.4 "Command not implemented") with `messages.error_reply`.
pub(crate) fn not_implemented(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let text = ctx.server().messages.error_reply.clone();
    // AUTH's parameters may hold credentials (an initial response): they are not echoed.
    let echoed = if command.verb == "AUTH" {
        ""
    } else {
        &command.unparsed_params
    };
    ctx.reply_with(502, "5.5.1", &text, echoed)
}

/// Verbs that take no argument (RFC 5321 §4.1.1.4 DATA, §4.1.1.5 RSET) answer `501` to one.
pub(crate) fn refuse_params(ctx: &mut Context<'_>, command: &Command) -> Result<bool> {
    if command.unparsed_params.is_empty() {
        return Ok(false);
    }
    syntax_error(ctx, &format!("{} takes no parameters", command.verb))?;
    Ok(true)
}
