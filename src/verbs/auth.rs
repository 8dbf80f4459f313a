//! AUTH (RFC 4954) with PLAIN (RFC 4616), LOGIN and CRAM-MD5 (RFC 2195).

use crate::auth::{
    cram_md5_challenge, cram_md5_verify, decode_response, encode_challenge, parse_login_field,
    parse_plain, Mechanism, SaslError,
};
use crate::command::Command;
use crate::connection::LineStatus;
use crate::error::Result;
use crate::reply::Reply;
use crate::thread::Context;
use crate::verbs::{not_implemented, sequence_error, syntax_error};

/// How an exchange ended.
enum Outcome {
    Success(String),
    Failure(String),
    Sasl(SaslError),
}

/// The EHLO keyword for AUTH (RFC 4954 §3), if any. The built-in AUTH offers its mechanisms
/// (see `offered_mechanisms`). With `on_command_auth` the application's own line in
/// `extensions.extra` is used; without one, `AUTH LOGIN`, which Indy 9 always advertised, under
/// the same cleartext rule as the built-in LOGIN.
pub(crate) fn ehlo_keyword(ctx: &Context<'_>) -> Option<String> {
    let server = ctx.server();
    if server.on_command_auth.is_none() {
        let mechanisms = offered_mechanisms(ctx);
        let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
        return (!names.is_empty()).then(|| format!("AUTH {}", names.join(" ")));
    }
    let listed = lists_keyword(&server.extensions.extra, "AUTH");
    let offered = !listed && cleartext_ok(ctx) && server.command_handlers.contains("AUTH");
    offered.then(|| "AUTH LOGIN".to_string())
}

/// Whether a client that must log in cannot do it here before STARTTLS: the EHLO reply it got
/// offers STARTTLS and no AUTH (neither the built-in one nor an application's own line in
/// `extensions.extra`), so the reply that helps it is RFC 3207 §4's "530 5.7.0 Must issue a
/// STARTTLS command first", not "authentication required".
pub(crate) fn login_needs_tls_first(ctx: &Context<'_>) -> bool {
    if cleartext_ok(ctx) {
        return false;
    }
    let keywords = crate::verbs::session::ehlo_keywords(ctx);
    lists_keyword(&keywords, "STARTTLS") && !lists_keyword(&keywords, "AUTH")
}

/// Whether one of the EHLO lines `lines` is the keyword `name` (with or without parameters).
fn lists_keyword(lines: &[String], name: &str) -> bool {
    lines.iter().any(|line| {
        let keyword = line.split(' ').next().unwrap_or_default();
        keyword.eq_ignore_ascii_case(name)
    })
}

/// Whether plaintext mechanisms may be used here: over TLS, on a server without TLS, or with
/// `allow_insecure_auth` (RFC 4954 §4, §14).
fn cleartext_ok(ctx: &Context<'_>) -> bool {
    let server = ctx.server();
    ctx.is_tls() || !server.has_tls() || server.allow_insecure_auth
}

/// The mechanisms the built-in AUTH offers on this connection: CRAM-MD5 needs `credentials`;
/// PLAIN and LOGIN need `check_user` or `credentials`, and are hidden on a cleartext
/// connection of a server that has TLS, unless `allow_insecure_auth` (RFC 4954 §4, §14).
pub(crate) fn offered_mechanisms(ctx: &Context<'_>) -> Vec<Mechanism> {
    let server = ctx.server();
    if server.on_command_auth.is_some() || !server.command_handlers.contains("AUTH") {
        return Vec::new();
    }
    let cleartext_ok = cleartext_ok(ctx);
    Mechanism::ALL
        .into_iter()
        .filter(|m| match m {
            Mechanism::CramMd5 => server.credentials.is_some(),
            _ => (server.check_user.is_some() || server.credentials.is_some()) && cleartext_ok,
        })
        .collect()
}

/// AUTH mechanism [initial-response].
pub(crate) fn auth(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let server = ctx.server();
    let m = &server.messages;
    if server.require_tls && !ctx.is_tls() {
        // RFC 3207 §4: checked before a custom AUTH too, so no credentials cross in clear.
        return ctx.reply_with(530, "5.7.0", &m.must_start_tls, "");
    }
    if !server.can_authenticate() {
        return not_implemented(ctx, command);
    }
    // Checked before a custom AUTH too: RFC 4954's MUSTs, and Indy 9 called OnCommandAUTH only
    // after EHLO.
    if !ctx.thread.ehlo {
        // RFC 4954 §4: AUTH is an EHLO extension.
        return sequence_error(ctx, "send EHLO first");
    }
    if ctx.thread.logged_in {
        // RFC 4954 §4: after a successful AUTH, further AUTH commands MUST be refused with 503.
        return sequence_error(ctx, "already authenticated");
    }
    if ctx.thread.from.is_some() {
        // RFC 4954 §4: not permitted during a mail transaction (503).
        return sequence_error(ctx, "AUTH not permitted during a mail transaction");
    }
    if let Some(handler) = &server.on_command_auth {
        let replies_before = ctx.conn.replies;
        let result = handler(ctx, command);
        if ctx.conn.replies > replies_before && ctx.conn.last_code == 535 {
            count_failure(ctx)?;
        }
        return result;
    }
    let (name, initial) = match command.params.as_slice() {
        [name] => (name, None),
        [name, initial] => (name, Some(initial.as_str())),
        _ => return syntax_error(ctx, "AUTH mechanism [initial-response]"),
    };
    let Some(mechanism) = Mechanism::from_name(name) else {
        return ctx.reply_with(504, "5.5.4", "Unrecognized authentication type", "");
    };
    if !offered_mechanisms(ctx).contains(&mechanism) {
        if mechanism.is_plaintext() && !ctx.is_tls() && server.has_tls() {
            return ctx.reply_with(538, "5.7.11", &m.encryption_required, "");
        }
        return ctx.reply_with(504, "5.5.4", "Unrecognized authentication type", "");
    }
    let outcome = match mechanism {
        Mechanism::Plain => plain(ctx, initial)?,
        Mechanism::Login => login(ctx, initial)?,
        Mechanism::CramMd5 => cram_md5(ctx, initial)?,
    };
    finish(ctx, mechanism, outcome)
}

fn finish(ctx: &mut Context<'_>, mechanism: Mechanism, outcome: Outcome) -> Result<()> {
    let server = ctx.server();
    let m = &server.messages;
    let id = ctx.thread.session_id;
    match outcome {
        Outcome::Success(user) => {
            log::info!("session {id}: AUTH {mechanism} succeeded for {user:?}");
            ctx.thread.logged_in = true;
            ctx.thread.username = user;
            ctx.reply_with(235, "2.7.0", &m.auth_succeeded, "")
        }
        Outcome::Failure(user) => {
            // The password is never logged.
            log::warn!(
                "session {id}: AUTH {mechanism} failed for {user:?} from {}",
                ctx.thread.peer_addr
            );
            ctx.reply_with(535, "5.7.8", &m.greeting.auth_failed, "")?;
            count_failure(ctx)
        }
        Outcome::Sasl(SaslError::Cancelled) => {
            // RFC 4954 §4: "*" cancels with 501.
            ctx.reply(Reply::new(501, "Authentication cancelled").with_enhanced("5.7.0"))
        }
        Outcome::Sasl(SaslError::BadBase64) => {
            ctx.reply(Reply::new(501, "Invalid base64 data").with_enhanced("5.5.2"))
        }
        Outcome::Sasl(SaslError::Malformed(why)) => ctx.reply(
            Reply::new(501, format!("Malformed authentication data: {why}")).with_enhanced("5.5.2"),
        ),
        // RFC 4954 §6: 500 5.5.6 for a response longer than the server takes.
        Outcome::Sasl(SaslError::LineTooLong) => ctx.reply(
            Reply::new(500, "Authentication Exchange line is too long").with_enhanced("5.5.6"),
        ),
    }
}

/// Counts a failed login (a 535, RFC 4954 §6); at `max_auth_failures` the session ends with
/// `421 4.7.0`, so a client cannot guess passwords without end on one connection.
fn count_failure(ctx: &mut Context<'_>) -> Result<()> {
    ctx.thread.auth_failures += 1;
    let server = ctx.server();
    let max = server.limits.max_auth_failures;
    if max > 0 && ctx.thread.auth_failures >= max {
        ctx.reply_with(421, "4.7.0", &server.messages.too_many_errors, "")?;
        ctx.close();
    }
    Ok(())
}

/// Sends a 334 challenge and reads the client's answer (RFC 4954 §4).
fn challenge(ctx: &mut Context<'_>, payload: &[u8]) -> Result<Result<Vec<u8>, SaslError>> {
    ctx.reply(Reply::new(334, encode_challenge(payload)))?;
    let limits = &ctx.server().limits;
    ctx.conn.set_read_timeout(limits.command_timeout)?;
    let mut line = Vec::new();
    Ok(
        match ctx.conn.read_line(limits.max_line_length, &mut line)? {
            LineStatus::Line { .. } => decode_response(&line),
            LineStatus::TooLong => Err(SaslError::LineTooLong),
        },
    )
}

/// The initial response if given (`=` is an empty one), else a 334 with an empty challenge.
fn first_response(
    ctx: &mut Context<'_>,
    initial: Option<&str>,
    prompt: &[u8],
) -> Result<Result<Vec<u8>, SaslError>> {
    match initial {
        Some(initial) => Ok(decode_response(initial.as_bytes())),
        None => challenge(ctx, prompt),
    }
}

/// PLAIN (RFC 4616). An authorization identity other than the user itself is refused: there
/// is no policy to allow acting for someone else.
fn plain(ctx: &mut Context<'_>, initial: Option<&str>) -> Result<Outcome> {
    let decoded = match first_response(ctx, initial, b"")? {
        Ok(decoded) => decoded,
        Err(e) => return Ok(Outcome::Sasl(e)),
    };
    let creds = match parse_plain(&decoded) {
        Ok(creds) => creds,
        Err(e) => return Ok(Outcome::Sasl(e)),
    };
    let foreign_authzid = creds.authzid.as_deref().is_some_and(|z| z != creds.authcid);
    Ok(
        if !foreign_authzid && password_ok(ctx, &creds.authcid, &creds.password) {
            Outcome::Success(creds.authcid)
        } else {
            Outcome::Failure(creds.authcid)
        },
    )
}

/// LOGIN (draft-murchison-sasl-login): `Username:` and `Password:` prompts; an initial
/// response is the user name.
fn login(ctx: &mut Context<'_>, initial: Option<&str>) -> Result<Outcome> {
    let user = match first_response(ctx, initial, b"Username:")?.and_then(|u| parse_login_field(&u))
    {
        Ok(user) => user,
        Err(e) => return Ok(Outcome::Sasl(e)),
    };
    let password = match challenge(ctx, b"Password:")?.and_then(|p| parse_login_field(&p)) {
        Ok(password) => password,
        Err(e) => return Ok(Outcome::Sasl(e)),
    };
    Ok(if password_ok(ctx, &user, &password) {
        Outcome::Success(user)
    } else {
        Outcome::Failure(user)
    })
}

/// CRAM-MD5 (RFC 2195): the secret never crosses the wire; the server needs it in the clear
/// (`credentials`).
fn cram_md5(ctx: &mut Context<'_>, initial: Option<&str>) -> Result<Outcome> {
    if initial.is_some() {
        return Ok(Outcome::Sasl(SaslError::Malformed(
            "CRAM-MD5 takes no initial response",
        )));
    }
    let nonce = cram_md5_challenge(&ctx.server().hostname);
    let decoded = match challenge(ctx, nonce.as_bytes())? {
        Ok(decoded) => decoded,
        Err(e) => return Ok(Outcome::Sasl(e)),
    };
    let Some(credentials) = &ctx.server().credentials else {
        return Ok(Outcome::Failure(String::new()));
    };
    let thread = &*ctx.thread;
    let secret_for = |user: &str| credentials(thread, user);
    Ok(match cram_md5_verify(&nonce, &decoded, &secret_for) {
        Some(user) => Outcome::Success(user),
        None => {
            let claimed = decoded.split(|&b| b == b' ').next().unwrap_or_default();
            Outcome::Failure(String::from_utf8_lossy(claimed).into_owned())
        }
    })
}

/// `check_user` decides; without it the secret from `credentials` is compared.
fn password_ok(ctx: &mut Context<'_>, user: &str, password: &str) -> bool {
    let server = ctx.server();
    if let Some(check_user) = &server.check_user {
        return check_user(ctx.thread, user, password);
    }
    match &server.credentials {
        Some(credentials) => credentials(ctx.thread, user)
            .is_some_and(|secret| constant_time_eq(secret.as_bytes(), password.as_bytes())),
        None => false,
    }
}

/// Compares without an early exit, so timing does not reveal how much of a password matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}
