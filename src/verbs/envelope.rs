//! The envelope: MAIL (RFC 5321 §4.1.1.2) and RCPT (§4.1.1.3), with their ESMTP parameters.

use crate::address::{parse_mail_from, parse_rcpt_to, BodyType, EsmtpParam, MailFrom, RcptTo};
use crate::command::Command;
use crate::error::Result;
use crate::events::{MailAction, RcptAction};
use crate::thread::Context;
use crate::verbs::sequence_error;

/// `MAIL FROM:<reverse-path> [params]`.
pub(crate) fn mail(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let server = ctx.server();
    let m = &server.messages;
    if !ctx.thread.helo {
        return ctx.reply_with(503, "5.5.1", &m.greeting.no_hello, "");
    }
    if server.require_tls && !ctx.is_tls() {
        return ctx.reply_with(530, "5.7.0", &m.must_start_tls, "");
    }
    if server.auth_mode && !ctx.thread.logged_in {
        let text = if crate::verbs::auth::login_needs_tls_first(ctx) {
            &m.must_start_tls
        } else {
            &m.not_logged_in
        };
        return ctx.reply_with(530, "5.7.0", text, "");
    }
    if ctx.thread.from.is_some() {
        // RFC 5321 §4.1.1.2: one MAIL per transaction (Indy 9 silently started over).
        return sequence_error(ctx, "nested MAIL command");
    }
    let max_transactions = server.limits.max_transactions;
    if max_transactions > 0 && ctx.thread.transactions >= max_transactions {
        // RFC 9422 §5.1: MAILMAX exceeded.
        return ctx.reply_with(452, "4.5.3", "Too many transactions in this session", "");
    }
    let utf8_allowed = super::session::smtputf8_offered(server) && ctx.thread.ehlo;
    let mut mail = match parse_mail_from(&command.unparsed_params, utf8_allowed) {
        Ok(mail) => mail,
        Err(e) => {
            let (code, enhanced, text) = e.reply(false);
            return ctx.reply_with(code, enhanced, &text, "");
        }
    };
    if let Some(keyword) = refused_mail_param(ctx, &mail) {
        return ctx.reply_with(555, "5.5.4", &m.unknown_parameter, keyword);
    }
    let max = server.limits.max_message_size;
    if mail.size.is_some_and(|size| max > 0 && size > max) {
        // RFC 1870 §6.1: the declared size is over the fixed maximum.
        return ctx.reply_with(552, "5.3.4", &m.message_too_large, "");
    }
    let action = match &server.on_command_mail {
        Some(event) => event(ctx.thread, &mut mail),
        None => MailAction::Accept,
    };
    if let Some(param) = mail.unclaimed_params().next() {
        let keyword = param.keyword.clone();
        return ctx.reply_with(555, "5.5.4", &m.unknown_parameter, &keyword);
    }
    let address = mail.address.clone();
    let accept = |ctx: &mut Context<'_>, mail: MailFrom| {
        ctx.thread.from = Some(mail);
        ctx.thread.transactions += 1;
    };
    match action {
        MailAction::Accept => {
            accept(ctx, mail);
            ctx.reply_with(250, "2.1.0", &m.rcpt_replies.address_ok, &address)
        }
        MailAction::Reject => ctx.reply_with(550, "5.7.1", &m.rcpt_replies.address_error, &address),
        MailAction::Reply(reply) => {
            if reply.code() / 100 == 2 {
                accept(ctx, mail);
            }
            ctx.reply(reply.into_final())
        }
    }
}

/// A parameter of an extension that is off, or any extension parameter after HELO
/// (RFC 1869 §6: parameters are valid only after EHLO): answered `555 5.5.4`.
fn refused_mail_param<'m>(ctx: &Context<'_>, mail: &'m MailFrom) -> Option<&'m str> {
    let ext = &ctx.server().extensions;
    let ehlo = ctx.thread.ehlo;
    let binary_ok = super::session::chunking_offered(ctx.server()) && ext.binary_mime;
    mail.params
        .iter()
        .map(|p: &EsmtpParam| p.keyword.as_str())
        .find(|k| {
            !ehlo
                || match *k {
                    "SIZE" => !ext.size,
                    "BODY" => match mail.body {
                        Some(BodyType::BinaryMime) => !binary_ok,
                        _ => !ext.eight_bit_mime,
                    },
                    "SMTPUTF8" => !super::session::smtputf8_offered(ctx.server()),
                    "RET" | "ENVID" => !ext.dsn,
                    "AUTH" => !ctx.server().can_authenticate(),
                    _ => false,
                }
        })
}

/// `RCPT TO:<forward-path> [params]`.
pub(crate) fn rcpt(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let server = ctx.server();
    let m = &server.messages;
    let Some(from) = &ctx.thread.from else {
        return sequence_error(ctx, "need MAIL before RCPT");
    };
    if ctx.thread.bdat.is_some() {
        // The message has begun (RFC 3030 §2): like DATA and MAIL, RCPT waits for its end.
        return sequence_error(ctx, "RCPT between BDAT chunks");
    }
    let utf8_allowed = from.smtputf8;
    let max = server.limits.max_recipients;
    if max > 0 && ctx.thread.rcpt_list.len() >= max {
        // RFC 5321 §4.5.3.1.10: too many recipients is a temporary 452.
        return ctx.reply_with(452, "4.5.3", &m.too_many_recipients, "");
    }
    let mut rcpt = match parse_rcpt_to(&command.unparsed_params, utf8_allowed) {
        Ok(rcpt) => rcpt,
        Err(e) => {
            let (code, enhanced, text) = e.reply(true);
            return ctx.reply_with(code, enhanced, &text, "");
        }
    };
    if !server.extensions.dsn || !ctx.thread.ehlo {
        if let Some(p) = rcpt
            .params
            .iter()
            .find(|p| p.keyword == "NOTIFY" || p.keyword == "ORCPT")
        {
            let keyword = p.keyword.clone();
            return ctx.reply_with(555, "5.5.4", &m.unknown_parameter, &keyword);
        }
    }
    let action = match &server.on_command_rcpt {
        Some(event) => event(ctx.thread, &mut rcpt),
        None => RcptAction::Accept,
    };
    if let Some(param) = rcpt.unclaimed_params().next() {
        let keyword = param.keyword.clone();
        return ctx.reply_with(555, "5.5.4", &m.unknown_parameter, &keyword);
    }
    let address = rcpt.address.clone();
    let add = |ctx: &mut Context<'_>, rcpt: RcptTo| ctx.thread.rcpt_list.push(rcpt);
    match action {
        RcptAction::Accept => {
            add(ctx, rcpt);
            ctx.reply_with(250, "2.1.5", &m.rcpt_replies.address_ok, &address)
        }
        RcptAction::Forward => {
            add(ctx, rcpt);
            // RFC 5321 §3.4: 251 names the forward-path.
            ctx.reply_with(251, "2.1.5", &m.rcpt_replies.address_will_forward, &address)
        }
        RcptAction::Reject => ctx.reply_with(550, "5.1.1", &m.rcpt_replies.address_error, &address),
        RcptAction::Reply(reply) => {
            if reply.code() / 100 == 2 {
                add(ctx, rcpt);
            }
            ctx.reply(reply.into_final())
        }
    }
}
