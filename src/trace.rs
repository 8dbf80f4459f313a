//! Trace header fields (RFC 5321 §4.4): the `Received:` line an SMTP server MUST add at the
//! top of every message it accepts for delivery or relaying, and the `Return-Path:` line of
//! final delivery. The server adds nothing to the data it hands the receive events, so an
//! application that delivers or relays prepends these itself:
//!
//! ```
//! use std::io::Read;
//! use indy_smtp::{trace, SmtpServer};
//!
//! let mut server = SmtpServer::new();
//! server.on_receive_raw = Some(Box::new(|thread, stream| {
//!     let mut message = trace::return_path(thread).into_bytes();
//!     message.extend(thread.received_header("mx.example.org", None).into_bytes());
//!     stream.read_to_end(&mut message)?;
//!     // ... deliver `message` ...
//!     Ok(())
//! }));
//! ```
//!
//! What the `Received:` line says, clause by clause (RFC 5321 §4.4 `Stamp`):
//! - `from`: the HELO/EHLO name when it is a domain or an address literal, then the client's
//!   address literal in parentheses (`TCP-info`); a name that is neither is not trusted as a
//!   domain: the address literal takes its place and the name follows in a comment. Over TLS a
//!   comment follows with the protocol version and cipher suite (`(using TLSv1.3 with ...)`).
//! - `by`: the name the application gives (its host name).
//! - `with`: `SMTP` after HELO, `ESMTP` after EHLO, with RFC 3848's `S` for TLS and `A` for
//!   an authenticated client (`ESMTPSA`), or RFC 6531 §3.7.3's `UTF8SMTP*` for a transaction
//!   that asked for SMTPUTF8.
//! - `id`: the application's identifier for the message, when it gives one.
//! - `for`: the recipient, only when there is exactly one: naming several would tell each
//!   the others' (RFC 5321 §7.2).
//! - the date, in UTC (RFC 5322 §3.3).
//!
//! Client-supplied text is made safe first: nothing in it can end the header line or the
//! comment it is in.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::address::is_domain_or_address_literal;
use crate::thread::SmtpServerThread;

/// The `Received:` header field for the session's current transaction, ending in CRLF and
/// folded before `by` and `for` (see the [module](self) documentation). `by` is the receiving
/// host's name; `id` an identifier of the message, kept only if it is an RFC 5321 `Atom`
/// (letters, digits and ``!#$%&'*+-/=?^_`{|}~``, no dots);
/// `when` the time the message was received.
///
/// ```
/// use indy_smtp::trace;
/// use std::time::{Duration, UNIX_EPOCH};
/// # fn check(thread: &indy_smtp::SmtpServerThread) {
/// let when = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// let line = trace::received(thread, "mx.example.org", Some("a1b2"), when);
/// // "Received: from client.example ([192.0.2.1])\r\n\tby mx.example.org with ESMTP id a1b2\r\n
/// //  \tfor <bob@example.org>; Fri, 15 Jan 2027 08:00:00 +0000\r\n"
/// # }
/// ```
pub fn received(thread: &SmtpServerThread, by: &str, id: Option<&str>, when: SystemTime) -> String {
    let mut out = String::with_capacity(200);
    out.push_str("Received: from ");
    push_from_domain(&mut out, thread);
    if let Some(tls) = &thread.tls {
        out.push_str(" (using ");
        push_comment_text(&mut out, &tls.protocol_version);
        out.push_str(" with ");
        push_comment_text(&mut out, &tls.cipher_suite);
        out.push(')');
    }
    out.push_str("\r\n\tby ");
    push_line_safe(&mut out, by.trim());
    out.push_str(" with ");
    out.push_str(protocol(thread));
    if let Some(id) = id.filter(|id| !id.is_empty() && id.chars().all(is_atext)) {
        out.push_str(" id ");
        out.push_str(id);
    }
    if let [only] = thread.rcpt_list.as_slice() {
        out.push_str("\r\n\tfor <");
        push_line_safe(&mut out, &only.address);
        out.push('>');
    }
    out.push_str("; ");
    push_date(&mut out, when);
    out.push_str("\r\n");
    out
}

/// The `Return-Path:` header field of final delivery (RFC 5321 §4.4): the transaction's
/// reverse-path in angle brackets (`<>` for the null sender), ending in CRLF.
///
/// ```
/// # fn check(thread: &indy_smtp::SmtpServerThread) {
/// let line = indy_smtp::trace::return_path(thread); // "Return-Path: <alice@example.org>\r\n"
/// # }
/// ```
pub fn return_path(thread: &SmtpServerThread) -> String {
    let sender = thread
        .from
        .as_ref()
        .map_or("", |from| from.address.as_str());
    let mut out = String::with_capacity(18 + sender.len());
    out.push_str("Return-Path: <");
    push_line_safe(&mut out, sender);
    out.push_str(">\r\n");
    out
}

/// The `with` protocol of the session's transaction: RFC 5321 §4.4 `SMTP`/`ESMTP`, the RFC 3848
/// `S` (TLS) and `A` (authenticated) forms, and RFC 6531 §3.7.3's `UTF8SMTP` forms when the
/// MAIL command carried SMTPUTF8.
pub fn protocol(thread: &SmtpServerThread) -> &'static str {
    if !thread.ehlo {
        return "SMTP";
    }
    let utf8 = thread.from.as_ref().is_some_and(|from| from.smtputf8);
    match (utf8, thread.is_tls(), thread.logged_in) {
        (false, false, false) => "ESMTP",
        (false, false, true) => "ESMTPA",
        (false, true, false) => "ESMTPS",
        (false, true, true) => "ESMTPSA",
        (true, false, false) => "UTF8SMTP",
        (true, false, true) => "UTF8SMTPA",
        (true, true, false) => "UTF8SMTPS",
        (true, true, true) => "UTF8SMTPSA",
    }
}

/// `when` as an RFC 5322 §3.3 date-time in UTC, e.g. `Fri, 15 Jan 2027 08:00:00 +0000`.
/// A time before 1970 is written as the start of 1970.
pub fn date(when: SystemTime) -> String {
    let mut out = String::with_capacity(31);
    push_date(&mut out, when);
    out
}

/// RFC 5321 §4.4 `From-domain`: `Extended-Domain` with the client's address as `TCP-info`.
fn push_from_domain(out: &mut String, thread: &SmtpServerThread) {
    let literal = address_literal(thread.peer_addr.ip());
    let name = thread.helo_name.as_str();
    if is_domain_or_address_literal(name) {
        let _ = write!(out, "{name} ({literal})");
        return;
    }
    // `address-literal FWS "(" TCP-info ")"`; the name follows as a comment of its own.
    let _ = write!(out, "{literal} ({literal})");
    if !name.is_empty() {
        out.push_str(" (HELO ");
        push_comment_text(out, name);
        out.push(')');
    }
}

/// RFC 5321 §4.1.3 address literal; an IPv4-mapped IPv6 peer is written as IPv4.
fn address_literal(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    }
}

/// Appends at most 255 octets of client text (whole characters) for a comment:
/// [`push_line_safe`], with `(`, `)` and `\` quoted (RFC 5322 §3.2.2 `ctext`, `quoted-pair`)
/// so that it cannot end the comment either. Octets, not characters: 255 four-octet characters
/// would take the line past RFC 5322's 998 octets.
fn push_comment_text(out: &mut String, text: &str) {
    let mut octets = 0;
    for c in text.chars() {
        octets += c.len_utf8();
        if octets > 255 {
            break;
        }
        if matches!(c, '(' | ')' | '\\') {
            out.push('\\');
        }
        push_char_safe(out, c);
    }
}

/// Appends `text` with every control character and Unicode line or paragraph separator
/// replaced by `?`, so that it cannot end the header line.
fn push_line_safe(out: &mut String, text: &str) {
    for c in text.chars() {
        push_char_safe(out, c);
    }
}

fn push_char_safe(out: &mut String, c: char) {
    if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
        out.push('?');
    } else {
        out.push(c);
    }
}

/// RFC 5322 §3.2.3 atext (ASCII).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn push_date(out: &mut String, when: SystemTime) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = when.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (year, month, day) = civil_from_days(days);
    let time = secs % 86_400;
    let _ = write!(
        out,
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        time / 3600,
        time / 60 % 60,
        time % 60
    );
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
