//! Session setup: HELO, EHLO, STARTTLS, RSET, NOOP, QUIT.

use crate::command::Command;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::server::Shared;
use crate::thread::{Context, SmtpServerThread};
use crate::verbs::{auth, not_implemented, refuse_params, sequence_error, syntax_error};

/// HELO (RFC 5321 §4.1.1.1). A repeated HELO/EHLO is allowed and resets the transaction
/// (§4.1.4; Indy 9 answered 503).
pub(crate) fn helo(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    if command.unparsed_params.is_empty() {
        return syntax_error(ctx, "HELO needs your host name");
    }
    greet(ctx, command, false);
    let text = &ctx.server().messages.greeting.hello_reply;
    ctx.reply_with(250, "2.0.0", text, &command.unparsed_params)
}

/// EHLO (RFC 5321 §4.1.1.1, RFC 1869): the greeting line, then one line per extension that is
/// really on (Indy 9 advertised a fixed list).
pub(crate) fn ehlo(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let server = ctx.server();
    if !server.allow_ehlo {
        let text = server.messages.greeting.ehlo_not_supported.clone();
        return ctx.reply_with(500, "5.5.1", &text, "");
    }
    if command.unparsed_params.is_empty() {
        return syntax_error(ctx, "EHLO needs your host name");
    }
    greet(ctx, command, true);
    let mut text = crate::reply::fill_template(
        &server.messages.greeting.ehlo_reply,
        &command.unparsed_params,
        &server.hostname,
    );
    for keyword in ehlo_keywords(ctx) {
        text.push('\n');
        text.push_str(&keyword);
    }
    // RFC 2034 §3: the EHLO reply itself carries no enhanced status codes.
    let enhanced = ctx.conn.enhanced;
    ctx.conn.enhanced = false;
    let result = ctx.reply(crate::Reply::new(250, text));
    ctx.conn.enhanced = enhanced;
    result
}

fn greet(ctx: &mut Context<'_>, command: &Command, extended: bool) {
    let thread = &mut *ctx.thread;
    thread.reset_transaction();
    thread.helo = true;
    thread.ehlo = extended;
    thread.helo_name = command.unparsed_params.clone();
    // RFC 2034 §3: enhanced codes only for a client that saw the keyword in EHLO.
    ctx.conn.enhanced = extended && ctx.shared.config.extensions.enhanced_status_codes;
}

/// The EHLO keywords, in the order clients usually list them.
pub(crate) fn ehlo_keywords(ctx: &Context<'_>) -> Vec<String> {
    let server = ctx.server();
    let ext = &server.extensions;
    let mut k = Vec::new();
    let mut add = |on: bool, keyword: String| {
        if on {
            k.push(keyword);
        }
    };
    add(ext.pipelining, "PIPELINING".into());
    let max = server.limits.max_message_size;
    // RFC 1870 §4: "SIZE" alone when there is no fixed maximum.
    add(
        ext.size,
        if max > 0 {
            format!("SIZE {max}")
        } else {
            "SIZE".into()
        },
    );
    add(ext.eight_bit_mime, "8BITMIME".into());
    add(ext.enhanced_status_codes, "ENHANCEDSTATUSCODES".into());
    add(smtputf8_offered(server), "SMTPUTF8".into());
    let chunking = chunking_offered(server);
    add(chunking, "CHUNKING".into());
    add(chunking && ext.binary_mime, "BINARYMIME".into());
    add(ext.dsn, "DSN".into());
    add(starttls_available(ctx), "STARTTLS".into());
    if let Some(keyword) = auth::ehlo_keyword(ctx) {
        add(true, keyword);
    }
    if ext.limits {
        // RFC 9422 §4: LIMITS with the limits that are really enforced (0 = unlimited is not
        // a limit to announce).
        let mut limits = "LIMITS".to_string();
        if server.limits.max_recipients > 0 {
            limits.push_str(&format!(" RCPTMAX={}", server.limits.max_recipients));
        }
        if server.limits.max_transactions > 0 {
            limits.push_str(&format!(" MAILMAX={}", server.limits.max_transactions));
        }
        add(true, limits);
    }
    add(
        server.on_command_help.is_some() && server.command_handlers.contains("HELP"),
        "HELP".into(),
    );
    k.extend(ext.extra.iter().cloned());
    k
}

/// RFC 6531 §3.1 item 8: a server offering SMTPUTF8 MUST support and announce 8BITMIME, so
/// without 8BITMIME neither the keyword nor the MAIL parameter is offered.
pub(crate) fn smtputf8_offered(server: &crate::server::SmtpServer) -> bool {
    server.extensions.smtputf8 && server.extensions.eight_bit_mime
}

/// RFC 3030 §2/§3: CHUNKING promises that BDAT takes its chunk as data. Without a BDAT
/// handler the chunk would be read as commands, so neither CHUNKING nor BINARYMIME (which
/// needs BDAT) is offered or accepted then.
pub(crate) fn chunking_offered(server: &crate::server::SmtpServer) -> bool {
    server.extensions.chunking && server.command_handlers.contains("BDAT")
}

fn starttls_available(ctx: &Context<'_>) -> bool {
    ctx.server().has_tls() && !ctx.is_tls() && ctx.server().command_handlers.contains("STARTTLS")
}

/// STARTTLS (RFC 3207 §4): `220 2.0.0`, the handshake, then the fresh state of a new session.
/// Whatever the client sent after STARTTLS in the same packet is thrown away, not run inside
/// TLS (the CVE-2011-0411 class of plaintext injection).
pub(crate) fn starttls(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    if !ctx.server().has_tls() {
        return not_implemented(ctx, command);
    }
    if ctx.is_tls() {
        return sequence_error(ctx, "TLS already active");
    }
    if !command.unparsed_params.is_empty() {
        return syntax_error(ctx, "STARTTLS takes no parameters");
    }
    let text = ctx.server().messages.ready_to_start_tls.clone();
    ctx.reply_with(220, "2.0.0", &text, "")?;
    start_tls_now(ctx.shared, ctx.conn, ctx.thread)?;
    ctx.thread.reset_session();
    ctx.conn.enhanced = false;
    Ok(())
}

/// Runs the TLS handshake on the connection now (after STARTTLS's 220, or at once on an
/// implicit-TLS port, RFC 8314 §3.3).
#[cfg(feature = "tls")]
pub(crate) fn start_tls_now(
    shared: &Shared,
    conn: &mut Connection,
    thread: &mut SmtpServerThread,
) -> Result<()> {
    let Some(acceptor) = &shared.tls else {
        return Err(Error::NoTlsConfig);
    };
    // RFC 5321 §4.5.3.2 in spirit: the whole handshake, not each read, is bounded.
    let deadline = crate::config::deadline(
        std::time::Instant::now(),
        shared.config.limits.tls_handshake_timeout,
    );
    // The handshake blocks on this client.
    crate::parking::before_blocking();
    conn.upgrade_to_tls(|tcp| acceptor.accept_until(tcp, deadline))?;
    thread.tls = conn.tls().map(crate::tls::tls_info);
    if let Some(info) = &thread.tls {
        log::info!(
            "session {}: TLS {} {} sni={:?}",
            thread.session_id,
            info.protocol_version,
            info.cipher_suite,
            info.sni
        );
    }
    Ok(())
}

/// Without the `tls` feature there is nothing to start.
#[cfg(not(feature = "tls"))]
pub(crate) fn start_tls_now(
    _: &Shared,
    _: &mut Connection,
    _: &mut SmtpServerThread,
) -> Result<()> {
    Err(Error::NoTlsConfig)
}

/// RSET (RFC 5321 §4.1.1.5): ends the transaction; valid in any state.
pub(crate) fn rset(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    if refuse_params(ctx, command)? {
        return Ok(());
    }
    ctx.thread.reset_transaction();
    let text = &ctx.server().messages.rset_reply;
    ctx.reply_with(250, "2.0.0", text, "")
}

/// NOOP (RFC 5321 §4.1.1.9): any argument is ignored.
pub(crate) fn noop(ctx: &mut Context<'_>, _command: &Command) -> Result<()> {
    let text = &ctx.server().messages.noop_reply;
    ctx.reply_with(250, "2.0.0", text, "")
}

/// QUIT (RFC 5321 §4.1.1.10): 221, then close.
pub(crate) fn quit(ctx: &mut Context<'_>, _command: &Command) -> Result<()> {
    let text = &ctx.server().messages.quit_reply;
    ctx.reply_with(221, "2.0.0", text, "")?;
    ctx.close();
    Ok(())
}
