//! The session loop: read a line, dispatch it to its handler, repeat. Everything protocol
//! specific lives in the verbs; this file only moves lines and handles the ways a session ends.

use std::net::{SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::command::{parse_command_line, Command};
use crate::connection::{Connection, LineStatus};
use crate::data::BareNewlinePolicy;
use crate::error::{Error, Result};
use crate::reply::{fill_template, Reply};
use crate::server::Shared;
use crate::thread::{Context, SmtpServerThread};

/// How the loop goes on after a line.
enum Flow {
    Continue,
    Close,
}

pub(crate) fn run(
    shared: &Shared,
    tcp: Arc<TcpStream>,
    peer: SocketAddr,
    id: u64,
    implicit_tls: bool,
    idle: &AtomicBool,
) {
    let local = tcp.local_addr().unwrap_or(peer);
    let mut conn = Connection::new(tcp);
    let mut thread = SmtpServerThread::new(peer, local, id);
    log::info!("session {id}: connect from {peer}");
    let result = serve(shared, &mut conn, &mut thread, implicit_tls, idle);
    match &result {
        Ok(()) | Err(Error::ConnectionClosed) => {}
        Err(Error::Timeout) => {
            let _ = send_closing(
                shared,
                &mut conn,
                421,
                "4.4.2",
                &shared.config.messages.timeout,
            );
        }
        Err(e) => log::warn!("session {id}: {e}"),
    }
    if shared.runtime.stopping() && !matches!(result, Ok(()) | Err(Error::Timeout)) {
        let _ = send_closing(
            shared,
            &mut conn,
            421,
            "4.3.2",
            &shared.config.messages.shutting_down,
        );
    }
    conn.close();
    if let Some(on_disconnect) = &shared.config.on_disconnect {
        guarded(shared, &thread, "on_disconnect", || on_disconnect(&thread));
    }
    log::info!("session {id}: disconnect from {peer}");
}

fn send_closing(
    shared: &Shared,
    conn: &mut Connection,
    code: u16,
    enhanced: &str,
    text: &str,
) -> Result<()> {
    let text = fill_template(text, "", &shared.config.hostname);
    conn.reply(&Reply::new(code, text).with_enhanced(enhanced))?;
    conn.flush()
}

fn serve(
    shared: &Shared,
    conn: &mut Connection,
    thread: &mut SmtpServerThread,
    implicit_tls: bool,
    idle: &AtomicBool,
) -> Result<()> {
    let config = &shared.config;
    if implicit_tls {
        crate::verbs::session::start_tls_now(shared, conn, thread)?;
    }
    if let Some(on_connect) = &config.on_connect {
        let verdict = catch_unwind(AssertUnwindSafe(|| on_connect(thread)));
        match verdict {
            Ok(Ok(())) => {}
            Ok(Err(reply)) => {
                conn.reply(&reply)?;
                return conn.flush();
            }
            Err(panic) => {
                report_panic(shared, thread, &panic_text(&panic));
                return send_closing(shared, conn, 421, "4.3.0", &config.messages.local_error);
            }
        }
    }
    if let Some(delay) = config.limits.greeting_delay {
        if conn.input_pending(delay)? {
            log::warn!(
                "session {}: client talked before the greeting",
                thread.session_id
            );
            let reply = Reply::new(
                554,
                "5.5.0 Protocol error: client talked before the greeting",
            );
            conn.reply(&reply)?;
            return conn.flush();
        }
    }
    let welcome = fill_template(&config.messages.greeting.welcome, "", &config.hostname);
    conn.reply(&Reply::new(220, welcome))?;
    let mut line = Vec::new();
    loop {
        let between_transactions = thread.from.is_none() && thread.bdat.is_none();
        idle.store(between_transactions, Ordering::SeqCst);
        if between_transactions && shared.runtime.stopping() {
            return send_closing(shared, conn, 421, "4.3.2", &config.messages.shutting_down);
        }
        conn.set_read_timeout(config.limits.command_timeout)?;
        let status = conn.read_line(config.limits.max_line_length, &mut line)?;
        idle.store(false, Ordering::SeqCst);
        let replies_before = conn.replies;
        let flow = match status {
            LineStatus::TooLong => {
                let m = &config.messages.line_too_long;
                conn.reply(&Reply::new(500, m.clone()).with_enhanced("5.5.6"))?;
                Flow::Continue
            }
            LineStatus::Line { bare_lf: true }
                if config.bare_newline_policy == BareNewlinePolicy::Reject =>
            {
                conn.reply(
                    &Reply::new(500, "Bare LF in command line is not allowed")
                        .with_enhanced("5.5.2"),
                )?;
                Flow::Continue
            }
            LineStatus::Line { .. } => dispatch(shared, conn, thread, &line)?,
        };
        if conn.replies > replies_before && is_error_reply(conn.last_code) {
            thread.bad_commands += 1;
            if thread.bad_commands >= config.limits.max_bad_commands {
                log::warn!("session {}: too many bad commands", thread.session_id);
                return send_closing(shared, conn, 421, "4.7.0", &config.messages.too_many_errors);
            }
        }
        if let Flow::Close = flow {
            return conn.flush();
        }
    }
}

/// Syntax, sequence and unknown-command errors count against `max_bad_commands`.
fn is_error_reply(code: u16) -> bool {
    matches!(code, 500..=504 | 555)
}

fn dispatch(
    shared: &Shared,
    conn: &mut Connection,
    thread: &mut SmtpServerThread,
    line: &[u8],
) -> Result<Flow> {
    let config = &shared.config;
    let command = match parse_command_line(line) {
        Ok(command) => command,
        Err(e) => {
            let reply = Reply::new(500, format!("Syntax error: {e}")).with_enhanced("5.5.2");
            conn.reply(&reply)?;
            return Ok(Flow::Continue);
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
        return Ok(Flow::Close);
    }
    let handler = if config.command_handlers_enabled {
        config.command_handlers.get(&command.verb)
    } else {
        None
    };
    let replies_before = conn.replies;
    let mut ctx = Context::new(thread, shared, conn);
    let outcome = catch_unwind(AssertUnwindSafe(|| match handler {
        Some(handler) => handler(&mut ctx, &command),
        None => no_command_handler(&mut ctx, &command),
    }));
    let close = ctx.close;
    match outcome {
        Ok(Ok(())) => {
            if conn.replies == replies_before {
                // Indy 9 left the client waiting when a user handler wrote nothing.
                log::warn!(
                    "session {}: handler for {} sent no reply",
                    thread.session_id,
                    command.verb
                );
                let reply =
                    Reply::new(451, config.messages.local_error.clone()).with_enhanced("4.3.0");
                conn.reply(&reply)?;
            }
            Ok(if close { Flow::Close } else { Flow::Continue })
        }
        Ok(Err(e)) => Err(e),
        Err(panic) => {
            report_panic(shared, thread, &panic_text(&panic));
            if conn.in_data {
                // The client is mid-message: its remaining bytes cannot be told from commands.
                send_closing(shared, conn, 421, "4.3.0", &config.messages.local_error)?;
                return Ok(Flow::Close);
            }
            thread.reset_transaction();
            let reply = Reply::new(451, config.messages.local_error.clone()).with_enhanced("4.3.0");
            conn.reply(&reply)?;
            Ok(Flow::Continue)
        }
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

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_string()
    }
}

fn report_panic(shared: &Shared, thread: &SmtpServerThread, text: &str) {
    log::error!("session {}: handler panicked: {text}", thread.session_id);
    if let Some(on_exception) = &shared.config.on_exception {
        guarded(shared, thread, "on_exception", || {
            on_exception(thread, text)
        });
    }
}

/// Runs an event whose panic must not take the session thread down with it.
fn guarded(_shared: &Shared, thread: &SmtpServerThread, what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        log::error!("session {}: {what} panicked", thread.session_id);
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
        assert!(is_error_reply(500) && is_error_reply(503) && is_error_reply(555));
        assert!(!is_error_reply(550) && !is_error_reply(250) && !is_error_reply(452));
    }
}
