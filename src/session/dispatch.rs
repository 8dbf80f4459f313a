//! One command line: the before/after events, the handler lookup, running the handler with
//! its failures contained (a panic, an error of its own), and which replies go out at once.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{counted_bad_command_ends, guarded, send_closing, Flow};
use crate::command::{parse_command_line, Command};
use crate::connection::{Connection, LineStatus};
use crate::data::BareNewlinePolicy;
use crate::error::{Error, Result};
use crate::reply::Reply;
use crate::server::Shared;
use crate::thread::{Context, Pending, SmtpServerThread};
use crate::verbs::data::local_error;

pub(super) fn handle_line(
    shared: &Shared,
    conn: &mut Connection,
    thread: &mut SmtpServerThread,
    status: LineStatus,
    line: &[u8],
) -> Result<(Flow, Option<Pending>)> {
    let config = &shared.config;
    match status {
        LineStatus::TooLong => {
            let text = config.text(&config.messages.line_too_long);
            conn.reply(&Reply::new(500, text).with_enhanced("5.5.6"))?;
            Ok((Flow::Continue, None))
        }
        LineStatus::Line { bare_lf: true }
            if config.bare_newline_policy == BareNewlinePolicy::Reject =>
        {
            conn.reply(
                &Reply::new(500, "Bare LF in command line is not allowed").with_enhanced("5.5.2"),
            )?;
            Ok((Flow::Continue, None))
        }
        LineStatus::Line { .. } => {
            if let Some(before) = &config.on_before_command_handler {
                let text = without_credentials(line);
                guarded(thread, "on_before_command_handler", || {
                    before(thread, &text)
                });
            }
            let outcome = dispatch(shared, conn, thread, line);
            if let Some(after) = &config.on_after_command_handler {
                guarded(thread, "on_after_command_handler", || after(thread));
            }
            outcome
        }
    }
}

/// A command line for `on_before_command_handler`: an AUTH initial response (RFC 4954 §4,
/// base64 credentials for PLAIN) is replaced by `*`, so logging every line logs no password.
fn without_credentials(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(verb), Some(mechanism), Some(_)) if verb.eq_ignore_ascii_case("AUTH") => {
            format!("{verb} {mechanism} *")
        }
        _ => text.into_owned(),
    }
}

/// Syntax and unknown-command errors count against `max_bad_commands`. Sequence errors
/// (503) do not: under RFC 2920 §3.1 a client may pipeline MAIL, many RCPT and DATA in one
/// group, and one refused MAIL makes each of the rest a 503 that is no fault of the client.
pub(super) fn is_error_reply(code: u16) -> bool {
    matches!(code, 500..=502 | 504 | 555)
}

fn dispatch(
    shared: &Shared,
    conn: &mut Connection,
    thread: &mut SmtpServerThread,
    line: &[u8],
) -> Result<(Flow, Option<Pending>)> {
    let config = &shared.config;
    let command = match parse_command_line(line) {
        Ok(command) => command,
        Err(e) => {
            let reply = Reply::new(500, format!("Syntax error: {e}")).with_enhanced("5.5.2");
            conn.reply(&reply)?;
            // RFC 2920 §3.2: the reply to an unrecognized command is not held back.
            conn.flush()?;
            return Ok((Flow::Continue, None));
        }
    };
    if is_http_request(&command) {
        log::warn!(
            "session {}: HTTP request on the SMTP port",
            thread.session_id
        );
        // The status code goes through with_enhanced: written into the text it was doubled
        // after EHLO ("421 4.0.0 4.7.0 ...") and sent before EHLO (RFC 2034 §3).
        conn.reply(&Reply::new(421, "HTTP requests are not accepted here").with_enhanced("4.7.0"))?;
        return Ok((Flow::Close, None));
    }
    if thread.refused && command.verb != "QUIT" {
        return refused_command(shared, conn, thread);
    }
    let entry = if config.command_handlers_enabled {
        config.command_handlers.lookup(&command.verb)
    } else {
        None
    };
    let builtin = entry.is_some_and(|(_, builtin)| builtin);
    let outcome = run_handler(shared, conn, thread, &command.verb, builtin, |ctx| {
        ctx.utf8 |= declares_utf8(ctx, &command);
        match entry {
            Some((handler, _)) => handler(ctx, &command),
            None => no_command_handler(ctx, &command),
        }
    })?;
    if entry.is_none() || ends_a_group(&command.verb) {
        conn.flush()?;
    }
    Ok(outcome)
}

/// Whether the command carries the SMTPUTF8 parameter where RFC 6531 gives it to the client
/// (MAIL, and VRFY and EXPN, §3.7.4.2) on a session that was offered it: its replies may
/// then be UTF-8.
fn declares_utf8(ctx: &Context<'_>, command: &Command) -> bool {
    matches!(command.verb.as_str(), "MAIL" | "VRFY" | "EXPN")
        && ctx.thread.ehlo
        && crate::verbs::session::smtputf8_offered(ctx.server())
        && command
            .params
            .iter()
            .skip(1)
            .any(|p| p.eq_ignore_ascii_case("SMTPUTF8"))
}

/// A command of a client whose connection was refused with a 554 (RFC 5321 §3.1): `503`,
/// as the RFC advises, until QUIT; `max_bad_commands` of them end the wait with a `421`.
fn refused_command(
    shared: &Shared,
    conn: &mut Connection,
    thread: &mut SmtpServerThread,
) -> Result<(Flow, Option<Pending>)> {
    if counted_bad_command_ends(shared, conn, thread)? {
        return Ok((Flow::Close, None));
    }
    let text = "Bad sequence of commands: this connection was refused, send QUIT";
    conn.reply(&Reply::new(503, text).with_enhanced("5.5.1"))?;
    conn.flush()?;
    Ok((Flow::Continue, None))
}

/// RFC 2920 §3.2: replies to EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP (and to unrecognized
/// commands) MUST NOT be buffered: these commands may only end a pipelined group, so what
/// follows them is sent after their reply was read. HELO and HELP are treated alike. The
/// replies to RSET, MAIL and RCPT are held and go out together when the input runs dry.
fn ends_a_group(verb: &str) -> bool {
    const VERBS: [&str; 9] = [
        "EHLO", "HELO", "DATA", "VRFY", "EXPN", "TURN", "QUIT", "NOOP", "HELP",
    ];
    VERBS.contains(&verb)
}

/// Runs a handler with its panic contained, and makes sure the client gets an answer.
/// `may_defer`: the handler is the built-in one and may leave work for the loop.
pub(super) fn run_handler(
    shared: &Shared,
    conn: &mut Connection,
    thread: &mut SmtpServerThread,
    verb: &str,
    may_defer: bool,
    handler: impl FnOnce(&mut Context<'_>) -> Result<()>,
) -> Result<(Flow, Option<Pending>)> {
    let config = &shared.config;
    let replies_before = conn.replies;
    let transaction_before = (thread.from.is_some(), thread.rcpt_list.len());
    // A connection error a previous handler caught and survived is not this one's.
    conn.failed = false;
    let mut ctx = Context::new(thread, shared, conn);
    ctx.may_defer = may_defer;
    let outcome = catch_unwind(AssertUnwindSafe(|| handler(&mut ctx)));
    let (close, pending) = (ctx.close, ctx.pending);
    let flow = if close { Flow::Close } else { Flow::Continue };
    // A final reply (not a 334 or 354) went out: the client has its answer, and a second
    // one would be read as the answer to its next command.
    let answered = conn.replies > replies_before && !(300..400).contains(&conn.last_code);
    let (failure, next) = match outcome {
        Ok(Ok(())) => {
            if conn.replies == replies_before {
                // Indy 9 left the client waiting when a user handler wrote nothing.
                log::warn!(
                    "session {}: handler for {verb} sent no reply",
                    thread.session_id
                );
                conn.reply(&local_error(config))?;
            }
            return Ok((flow, pending));
        }
        // RFC 5321 §4.5.3.1.4: a too-long line is a 500 5.5.6, not the end of the session.
        Ok(Err(Error::LineTooLong)) => {
            let reply =
                Reply::new(500, config.text(&config.messages.line_too_long)).with_enhanced("5.5.6");
            conn.reply(&reply)?;
            return Ok((flow, pending));
        }
        Ok(Err(e)) if conn.failed => return Err(e),
        // The handler's own failure (`?` on a file, a database): Indy 9 dropped the client
        // without a word; RFC 5321 §4.2.2 has 451 for "local error in processing".
        Ok(Err(e)) => (format!("handler for {verb} failed: {e}"), (flow, pending)),
        Err(panic) => (panic_text(&panic), (Flow::Continue, None)),
    };
    report_failure(shared, thread, &failure);
    if conn.in_data {
        // The client is mid-message: its remaining bytes cannot be told from commands.
        send_closing(shared, conn, 421, "4.3.0", &config.messages.local_error)?;
        return Ok((Flow::Close, None));
    }
    settle_transaction(thread, verb, transaction_before, accepted(conn, answered));
    if !answered {
        conn.reply(&local_error(config))?;
    }
    Ok(next)
}

/// Whether the client was told the command succeeded before its handler failed.
fn accepted(conn: &Connection, answered: bool) -> bool {
    answered && conn.last_code / 100 == 2
}

/// The transaction after a handler failed (returned an error of its own or panicked), as the
/// client now sees it. A command whose success it was told of stands, as a 250 to MAIL or
/// RCPT says (RFC 5321 §4.1.1.2, §4.1.1.3). Any other is undone, since a failed handler may
/// have left it half-done: the recipients it added are dropped and a MAIL opens no
/// transaction, while the transaction before it goes on. Resetting that too would answer
/// the DATA of a client that took the 451 as one recipient's temporary failure (§4.2.5) with
/// a 503, a permanent failure for the recipients already accepted. A failed reply to the
/// message ends the transaction (§4.1.1.4, RFC 3030 §2); a 250 to it (or to a BDAT chunk
/// that is not the last) stands like any other, the built-in DATA and BDAT having ended the
/// transaction themselves where that reply ends it.
fn settle_transaction(
    thread: &mut SmtpServerThread,
    verb: &str,
    before: (bool, usize),
    accepted: bool,
) {
    match before {
        _ if accepted => {}
        _ if matches!(verb, "DATA" | "BDAT") => thread.reset_transaction(),
        (true, recipients) => thread.rcpt_list.truncate(recipients),
        (false, _) => thread.reset_transaction(),
    }
}

fn no_command_handler(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    match &ctx.server().on_no_command_handler {
        Some(handler) => handler(ctx, command),
        None => {
            let text = ctx.server().messages.reply_unknown_command.clone();
            ctx.reply_with(500, "5.5.2", &text, &command.verb)
        }
    }
}

/// `GET / HTTP/1.1` and friends: a browser or proxy probe, not an SMTP client.
fn is_http_request(command: &Command) -> bool {
    const VERBS: [&str; 7] = ["GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "DELETE"];
    VERBS.contains(&command.verb.as_str())
        && command
            .params
            .last()
            .is_some_and(|p| p.starts_with("HTTP/"))
}

pub(super) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let message = if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.as_str()
    } else {
        "(no message)"
    };
    format!("handler panicked: {message}")
}

/// A handler panicked (`text` is the panic message) or returned an error of its own.
pub(super) fn report_failure(shared: &Shared, thread: &SmtpServerThread, text: &str) {
    log::error!("session {}: {text}", thread.session_id);
    if let Some(on_exception) = &shared.config.on_exception {
        guarded(thread, "on_exception", || on_exception(thread, text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::CommandError;

    #[test]
    fn http_requests_are_recognised() {
        let http = parse_command_line(b"GET / HTTP/1.1").unwrap();
        assert!(is_http_request(&http));
        let smtp = parse_command_line(b"HELP GET").unwrap();
        assert!(!is_http_request(&smtp));
        assert!(matches!(
            parse_command_line(b"").unwrap_err(),
            CommandError::Empty
        ));
    }

    #[test]
    fn error_codes_counted() {
        assert!(is_error_reply(500) && is_error_reply(504) && is_error_reply(555));
        assert_eq!(without_credentials(b"AUTH PLAIN AGEAYg=="), "AUTH PLAIN *");
        assert_eq!(without_credentials(b"auth login"), "auth login");
        assert_eq!(
            without_credentials(b"MAIL FROM:<a@b> X=1"),
            "MAIL FROM:<a@b> X=1"
        );
        assert!(!is_error_reply(503) && !is_error_reply(550) && !is_error_reply(250));
        assert!(!is_error_reply(452));
    }
}
