//! Fuzzes the trace header fields (RFC 5321 §4.4): `trace::received`,
//! `SmtpServerThread::received_header`, `trace::return_path` and `trace::protocol`, with
//! client-controlled HELO/EHLO argument, MAIL FROM address and recipients.
//!
//! An `SmtpServerThread` can only be had from a session (its constructor is crate-private), so
//! the target starts a server on 127.0.0.1 once, opens one connection and sends `XFUZZ`, whose
//! handler then runs, on that session's thread value, one job per input sent over a channel:
//! it sets the fields as the session would after `EHLO`/`HELO <arg>`, `MAIL FROM:...` and
//! `RCPT TO:...` (the argument through the public `command::parse_command_line`, the paths
//! through `address::parse_mail_from` / `parse_rcpt_to` with the session's SMTPUTF8 rules),
//! builds the fields and hands them back; the checks run on the fuzzing thread.
//!
//! Checked, for the `Received:` field:
//! - UTF-8; ends in exactly one CRLF; every other CR or LF is part of a CRLF followed by SP or
//!   TAB (folding), and no continuation line is blank; no NUL or other control character
//!   (TAB only as the folding white space), no U+2028/U+2029; so client text can start no
//!   new header field line. Every line is at most 998 octets (RFC 5322 §2.1.1) while `by`
//!   and `id` are the application's usual short values.
//! - RFC 5322 lexing of the unfolded value: comments balanced (and never nested: client
//!   parentheses are quoted-pairs), quoted strings and domain literals closed, angle brackets
//!   matched, exactly one `;` outside them, followed by an RFC 5322 date that `mailparse`
//!   reads back as the time given (1970-01-01 for a time before the epoch).
//! - The clauses: `from` Extended-Domain with `(TCP-info)` = the peer's address literal (IPv4
//!   for an IPv4-mapped peer); the HELO name itself only when it is an RFC 5321 Domain or
//!   address-literal by an independent grammar here (and then at most 255 octets), otherwise
//!   the address literal and a `(HELO ...)` comment whose unquoted text is the name's longest
//!   prefix of at most 255 octets, controls as `?`; then `(using V with C)` over TLS; `by`; `with` the
//!   protocol the flags call for; `id` only for an atom; `for <rcpt>` exactly when there is
//!   one recipient. `received_header` (now) differs from it only in the date.
//! - `Return-Path: <sender>` CRLF, controls as `?`, nothing else.
//!
//! Input: byte 0 = flags (bit 0 EHLO, bit 1 TLS, bit 2 logged in, bit 3 SMTPUTF8 offered,
//! bit 4 map the text onto an alphabet of tokens, bit 5 application `by`/`id` from the text
//! too (then only the line checks), bits 6-7 peer kind: IPv4, IPv6, IPv4-mapped, from bytes);
//! bytes 1-16 peer; 17-24 time (seconds, big-endian; the top bit: before the epoch); the rest
//! is text: `helo LF from LF rcpt LF rcpt ...` (and `by LF id` first with bit 5).
#![no_main]

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indy_smtp::address::{parse_mail_from, parse_rcpt_to};
use indy_smtp::command::parse_command_line;
use indy_smtp::{trace, ServerHandle, SmtpServer, SmtpServerThread, TlsInfo};
use libfuzzer_sys::fuzz_target;

const MAX_LINE: usize = 998;
const BY: &str = "mx.example.org";

#[rustfmt::skip]
const TOKENS: &[&str] = &[
    "a", "b", "z", "Z", "0", "1", "9", "255", "256", "-", ".", ".", "..", "@", "@", "[", "]",
    "IPv6:", "ipv6:", "x-tag:", ":", "::", "192.0.2.1", "001.2.3.4", "2001:db8::1",
    "::ffff:192.0.2.1", "(", ")", "\\", "\"", "\" \"", " ", " ", "\t", "\r", "\x01", "\x7f",
    "\u{85}", "\u{2028}", "\u{2029}", "\u{202e}", "é", "\u{1F600}",
    "\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}\u{1F600}", "))))))))", ";",
    ",", "<", ">", "<>", "\n", "\n", "\r\nX-Evil: 1", "\r\n\t", "Received:", "Postmaster",
    "example.org", "xn--e1afmkfd", "_", "=?utf-8?q?", "#", "~", "%", "SMTPUTF8",
];

/// One input's view of the session, set on the thread by the job.
struct Setup {
    ehlo: bool,
    helo_name: Option<String>,
    from_line: String,
    rcpt_lines: Vec<String>,
    utf8_offered: bool,
    logged_in: bool,
    tls: bool,
    peer: SocketAddr,
    by: String,
    id: Option<String>,
    when: SystemTime,
}

/// What the job hands back.
#[derive(Debug)]
struct Output {
    received: String,
    received_now: String,
    return_path: String,
    protocol: &'static str,
    helo_name: String,
    from: Option<String>,
    rcpts: Vec<String>,
    smtputf8: bool,
}

type Job = Box<dyn FnOnce(&mut SmtpServerThread) + Send>;

struct Fixture {
    _handle: ServerHandle,
    _client: TcpStream,
    jobs: Mutex<mpsc::Sender<Job>>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut server = SmtpServer::new();
        server.hostname = "fuzz.example".into();
        server.bindings = vec!["127.0.0.1:0".parse().unwrap()];
        server.raw_stream_type = indy_smtp::RawStreamType::Memory;
        server.on_receive_raw = Some(Box::new(|_, _| Ok(())));
        server.stop_timeout = Duration::from_millis(100);
        server.command_handlers.add("XFUZZ", move |ctx, _| {
            // Serves the fuzzing thread for as long as the process lives.
            loop {
                let job = rx.lock().unwrap().recv();
                match job {
                    Ok(job) => job(ctx.thread),
                    Err(_) => return Ok(()),
                }
            }
        });
        let handle = server.start().expect("fuzz server starts");
        let mut client = TcpStream::connect(handle.local_addr()).expect("connect");
        client.write_all(b"XFUZZ\r\n").unwrap();
        Fixture {
            _handle: handle,
            _client: client,
            jobs: Mutex::new(tx),
        }
    })
}

fn run(setup: Setup) -> Output {
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move |thread: &mut SmtpServerThread| {
        thread.reset_transaction();
        thread.helo = setup.helo_name.is_some();
        thread.ehlo = setup.ehlo && thread.helo;
        thread.helo_name = setup.helo_name.clone().unwrap_or_default();
        thread.logged_in = setup.logged_in;
        thread.username = if setup.logged_in {
            "user".into()
        } else {
            String::new()
        };
        thread.peer_addr = setup.peer;
        thread.tls = setup.tls.then(|| TlsInfo {
            protocol_version: "TLSv1_3".into(),
            cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
            sni: None,
        });
        // MAIL and RCPT as verbs/envelope.rs parses them.
        if thread.helo {
            let utf8_allowed = setup.utf8_offered && thread.ehlo;
            if let Ok(from) = parse_mail_from(&setup.from_line, utf8_allowed) {
                let utf8_allowed = from.smtputf8;
                thread.from = Some(from);
                for line in &setup.rcpt_lines {
                    if let Ok(rcpt) = parse_rcpt_to(line, utf8_allowed) {
                        thread.rcpt_list.push(rcpt);
                    }
                }
            }
        }
        let out = Output {
            received: trace::received(thread, &setup.by, setup.id.as_deref(), setup.when),
            received_now: thread.received_header(&setup.by, setup.id.as_deref()),
            return_path: trace::return_path(thread),
            protocol: trace::protocol(thread),
            helo_name: thread.helo_name.clone(),
            from: thread.from.as_ref().map(|f| f.address.clone()),
            rcpts: thread.rcpt_list.iter().map(|r| r.address.clone()).collect(),
            smtputf8: thread.from.as_ref().is_some_and(|f| f.smtputf8),
        };
        let _ = tx.send(out);
    });
    fixture()
        .jobs
        .lock()
        .unwrap()
        .send(job)
        .expect("session gone");
    rx.recv_timeout(Duration::from_secs(8))
        .expect("no answer from the session")
}

// ---------------------------------------------------------------------------------------------
// References.

fn clean(c: char) -> char {
    if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
        '?'
    } else {
        c
    }
}

/// RFC 5321 §4.1.2 `Domain` (ASCII: an EHLO argument is ASCII, RFC 6531 §3.3).
fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
        })
}

/// RFC 5321 §4.1.3 `IPv4-address-literal` body: Snum 3("." Snum), Snum = 1*3DIGIT <= 255.
fn is_ipv4_literal(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            (1..=3).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().unwrap() <= 255
        })
}

/// RFC 5321 §4.1.3 `IPv6-addr`: full (8 groups), comp (`::`, at most 6 groups in all), v4-full
/// (6 groups and IPv4), v4-comp (`::`, at most 4 groups, then IPv4). IPv6-hex = 1*4HEXDIG.
fn is_ipv6_literal(s: &str) -> bool {
    let hex = |g: &str| (1..=4).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_hexdigit());
    let groups = |t: &str| -> Option<usize> {
        if t.is_empty() {
            return Some(0);
        }
        let gs: Vec<&str> = t.split(':').collect();
        gs.iter().all(|g| hex(g)).then_some(gs.len())
    };
    // An IPv4 tail: the part after the last ':' has a '.'.
    let (head, v4) = match s.rfind(':') {
        Some(i) if s[i + 1..].contains('.') => (&s[..=i], Some(&s[i + 1..])),
        _ => (s, None),
    };
    if let Some(v4) = v4 {
        if !is_ipv4_literal(v4) {
            return false;
        }
    }
    // `head` ends with ':' when there is an IPv4 tail; `::` then may be that ':' and the one
    // before it.
    let head = if v4.is_some() {
        if head.ends_with("::") {
            head
        } else {
            &head[..head.len() - 1]
        }
    } else {
        head
    };
    let max = if v4.is_some() { 6 } else { 8 };
    match head.find("::") {
        Some(i) => {
            let (a, b) = (&head[..i], &head[i + 2..]);
            if b.contains("::") {
                return false;
            }
            match (groups(a), groups(b)) {
                // RFC 5321: comp has at most 6 groups, v4-comp at most 4.
                (Some(x), Some(y)) => x + y <= max - 2,
                _ => false,
            }
        }
        None => groups(head) == Some(max),
    }
}

/// RFC 5321 §4.1.3 `address-literal`.
fn is_address_literal(s: &str) -> bool {
    let Some(body) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    if is_ipv4_literal(body) {
        return true;
    }
    // "IPv6" is an ABNF string: case-insensitive (RFC 5234 §2.3).
    if body.len() >= 5 && body.is_char_boundary(5) && body[..5].eq_ignore_ascii_case("IPv6:") {
        return is_ipv6_literal(&body[5..]);
    }
    match body.split_once(':') {
        // General-address-literal = Standardized-tag ":" 1*dcontent; Standardized-tag = Ldh-str
        // (and "IPv6" is not a general tag: its content must be an IPv6 address).
        Some((tag, content)) => {
            !tag.is_empty()
                && !tag.eq_ignore_ascii_case("IPv6")
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && tag.as_bytes()[tag.len() - 1].is_ascii_alphanumeric()
                && !content.is_empty()
                && content.bytes().all(|b| matches!(b, 33..=90 | 94..=126))
        }
        None => false,
    }
}

/// An address literal whose dotted-quad part has a number with a leading zero.
fn leading_zero_v4(name: &str) -> bool {
    let body = name.trim_start_matches('[').trim_end_matches(']');
    let quad = body.rsplit(':').next().unwrap_or("");
    quad.contains('.') && quad.split('.').any(|p| p.len() > 1 && p.starts_with('0'))
}

fn address_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{v6}]"),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 5322 lexing of the unfolded field value.

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    /// Unquoted content.
    Comment(String),
    Quoted(String),
    Literal(String),
    /// Raw content between `<` and `>`.
    Angle(String),
    Semi,
}

fn lex(v: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = v.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                let mut depth = 0;
                let mut text = String::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(format!("unterminated comment in {v:?}"));
                    };
                    i += 1;
                    match c {
                        '\\' => {
                            let Some(&q) = chars.get(i) else {
                                return Err("quoted-pair at the end".into());
                            };
                            text.push(q);
                            i += 1;
                        }
                        '(' => {
                            depth += 1;
                            if depth > 1 {
                                return Err(format!("nested comment in {v:?}"));
                            }
                        }
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        c => text.push(c),
                    }
                }
                out.push(Tok::Comment(text));
            }
            ')' => return Err(format!("stray ')' in {v:?}")),
            '"' => {
                i += 1;
                let mut text = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated quoted string in {v:?}")),
                        Some('"') => break,
                        Some('\\') => {
                            text.push(*chars.get(i + 1).ok_or("quoted-pair at the end")?);
                            i += 2;
                            continue;
                        }
                        Some(&c) => text.push(c),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Quoted(text));
            }
            '[' => {
                let start = i + 1;
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                    if matches!(chars.get(i), Some('[' | '\\')) {
                        return Err(format!("'[' or '\\' in a domain literal in {v:?}"));
                    }
                }
                if i == chars.len() {
                    return Err(format!("unterminated domain literal in {v:?}"));
                }
                out.push(Tok::Literal(chars[start..i].iter().collect()));
                i += 1;
            }
            '<' => {
                let start = i + 1;
                let mut quoted = false;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated angle address in {v:?}")),
                        Some('\\') if quoted => i += 1,
                        Some('"') => quoted = !quoted,
                        Some('>') if !quoted => break,
                        _ => {}
                    }
                    i += 1;
                }
                out.push(Tok::Angle(chars[start..i].iter().collect()));
                i += 1;
            }
            '>' => return Err(format!("stray '>' in {v:?}")),
            ';' => {
                out.push(Tok::Semi);
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !" \t()\"[<>;".contains(chars[i]) {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// Line-level: the field is safe to put in front of a message.
fn check_lines(field: &str, name: &str, limit_length: bool) -> Vec<String> {
    assert!(
        field.starts_with(name),
        "{field:?} does not start with {name:?}"
    );
    assert!(field.ends_with("\r\n"), "{field:?} does not end in CRLF");
    assert!(
        !field.ends_with("\r\n\r\n"),
        "{field:?} ends in an empty line"
    );
    let body = &field[..field.len() - 2];
    let lines: Vec<&str> = body.split("\r\n").collect();
    for (n, line) in lines.iter().enumerate() {
        for (k, c) in line.chars().enumerate() {
            let folding = n > 0 && k == 0 && (c == ' ' || c == '\t');
            assert!(
                folding || !(c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
                "control {c:?} in line {n} of {field:?}"
            );
        }
        if n > 0 {
            assert!(
                line.starts_with([' ', '\t']),
                "line {n} of {field:?} starts a new header field"
            );
            assert!(
                line.chars().any(|c| c != ' ' && c != '\t'),
                "blank continuation line in {field:?}"
            );
        }
        if limit_length {
            assert!(
                line.len() <= MAX_LINE,
                "line {n} of {} octets (over {MAX_LINE}): {field:?}",
                line.len()
            );
        }
    }
    lines.iter().map(|l| l.to_string()).collect()
}

fn check(
    setup_by: &str,
    id: Option<&str>,
    app_text: bool,
    peer: SocketAddr,
    when: SystemTime,
    flags: u8,
    out: &Output,
) {
    let lines = check_lines(&out.received, "Received: from ", !app_text);
    let lines_now = check_lines(&out.received_now, "Received: from ", !app_text);
    let rp = check_lines(&out.return_path, "Return-Path: <", true);
    assert_eq!(rp.len(), 1);
    let sender: String = out
        .from
        .as_deref()
        .unwrap_or("")
        .chars()
        .map(clean)
        .collect();
    assert_eq!(out.return_path, format!("Return-Path: <{sender}>\r\n"));

    // received_header(now) differs only in the date.
    let before_date = |s: &str| s[..s.rfind("; ").unwrap()].to_string();
    assert_eq!(before_date(&out.received), before_date(&out.received_now));
    assert_eq!(lines.len(), lines_now.len());

    // The protocol.
    // The session sets `ehlo` only with a HELO name (the job leaves it unset without one).
    let ehlo = flags & 1 != 0 && !out.helo_name.is_empty();
    let want = if !ehlo {
        "SMTP".to_string()
    } else {
        let base = if out.smtputf8 { "UTF8SMTP" } else { "ESMTP" };
        format!(
            "{base}{}{}",
            if flags & 2 != 0 { "S" } else { "" },
            if flags & 4 != 0 { "A" } else { "" }
        )
    };
    assert_eq!(out.protocol, want);

    if app_text {
        return;
    }
    let unfolded = out.received["Received:".len()..out.received.len() - 2].replace("\r\n", "");
    let toks = lex(&unfolded).unwrap_or_else(|e| panic!("{e} (field {:?})", out.received));
    let semis = toks.iter().filter(|t| **t == Tok::Semi).count();
    assert_eq!(
        semis, 1,
        "not exactly one ';' outside comments: {:?}",
        out.received
    );

    // from
    let mut t = toks.iter();
    assert_eq!(t.next(), Some(&Tok::Word("from".into())));
    let name = &out.helo_name;
    let literal = address_literal(peer.ip());
    let valid = name.len() <= 255 && (is_domain(name) || is_address_literal(name));
    let first = t.next().unwrap();
    let first_text = match first {
        Tok::Word(w) => w.clone(),
        Tok::Literal(l) => format!("[{l}]"),
        other => panic!("from clause starts with {other:?}: {:?}", out.received),
    };
    // The name is written as the from-domain exactly when no `(HELO ...)` comment follows.
    let helo_comment = toks
        .iter()
        .any(|t| matches!(t, Tok::Comment(c) if c.starts_with("HELO ")));
    let lib_took_name = !name.is_empty() && !helo_comment;
    if lib_took_name {
        assert_eq!(first_text, *name, "{:?}", out.received);
        assert!(
            valid,
            "HELO {name:?} written as the from-domain but it is no RFC 5321 Domain or address-literal: {:?}",
            out.received
        );
    } else {
        assert_eq!(first_text, literal, "{:?}", out.received);
        // RFC 5321's Snum allows leading zeros (`[001.2.3.4]`), which Rust's address parsers
        // (and so the library) refuse: such a name goes in the comment, which is safe.
        assert!(
            !valid || leading_zero_v4(name),
            "valid HELO {name:?} was not used as the from-domain: {:?}",
            out.received
        );
    }
    assert_eq!(
        t.next(),
        Some(&Tok::Comment(literal.clone())),
        "TCP-info: {:?}",
        out.received
    );
    let mut next = t.next();
    if !lib_took_name && !name.is_empty() {
        let mut octets = 0;
        let want: String = name
            .chars()
            .take_while(|c| {
                octets += c.len_utf8();
                octets <= 255
            })
            .map(clean)
            .collect();
        assert_eq!(
            next,
            Some(&Tok::Comment(format!("HELO {want}"))),
            "{:?}",
            out.received
        );
        next = t.next();
    }
    if flags & 2 != 0 {
        assert_eq!(
            next,
            Some(&Tok::Comment(
                "using TLSv1_3 with TLS13_AES_256_GCM_SHA384".into()
            ))
        );
        next = t.next();
    }
    assert_eq!(next, Some(&Tok::Word("by".into())), "{:?}", out.received);
    assert_eq!(t.next(), Some(&Tok::Word(setup_by.trim().into())));
    assert_eq!(t.next(), Some(&Tok::Word("with".into())));
    assert_eq!(t.next(), Some(&Tok::Word(out.protocol.into())));
    let mut next = t.next();
    if let Some(id) = id {
        assert_eq!(next, Some(&Tok::Word("id".into())));
        assert_eq!(t.next(), Some(&Tok::Word(id.into())));
        next = t.next();
    }
    if let [only] = out.rcpts.as_slice() {
        assert_eq!(next, Some(&Tok::Word("for".into())), "{:?}", out.received);
        let want: String = only.chars().map(clean).collect();
        assert_eq!(t.next(), Some(&Tok::Angle(want)), "{:?}", out.received);
        next = t.next();
    }
    assert_eq!(next, Some(&Tok::Semi), "{:?}", out.received);

    // Folding: before "by" and before "for", nowhere else.
    assert!(lines[1].starts_with("\tby "), "{lines:?}");
    assert_eq!(
        lines.len(),
        2 + usize::from(out.rcpts.len() == 1),
        "{lines:?}"
    );

    // The date.
    let date = out
        .received
        .rsplit_once("; ")
        .unwrap()
        .1
        .trim_end_matches("\r\n");
    let secs = when.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let b = date.as_bytes();
    assert!(
        date.len() >= 31
            && b[3] == b','
            && date.ends_with(" +0000")
            && date[..3].chars().all(|c| c.is_ascii_alphabetic()),
        "date {date:?}"
    );
    if secs < 253_402_300_800 {
        assert_eq!(date.len(), 31, "date {date:?}");
        let parsed = mailparse::dateparse(date).unwrap_or_else(|e| panic!("date {date:?}: {e}"));
        assert_eq!(parsed, secs as i64, "date {date:?} for {secs}");
        assert_eq!(trace::date(when), date);
    }
}

fn text_of(flags: u8, rest: &[u8]) -> String {
    if flags & 0x10 != 0 {
        rest.iter()
            .map(|&b| TOKENS[usize::from(b) % TOKENS.len()])
            .collect()
    } else {
        String::from_utf8_lossy(rest).into_owned()
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 25 {
        return;
    }
    let flags = data[0];
    let peer_ip = match flags >> 6 {
        0 => IpAddr::V4(Ipv4Addr::new(data[1], data[2], data[3], data[4])),
        1 => {
            let mut o = [0u8; 16];
            o[..2].copy_from_slice(&[0x20, 0x01]);
            o[2..].copy_from_slice(&data[3..17]);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        2 => IpAddr::V6(Ipv4Addr::new(data[1], data[2], data[3], data[4]).to_ipv6_mapped()),
        _ => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&data[1..17]).unwrap())),
    };
    let peer = SocketAddr::new(peer_ip, 2525);
    let raw_time = u64::from_be_bytes(data[17..25].try_into().unwrap());
    let when = if raw_time >> 63 != 0 {
        UNIX_EPOCH - Duration::from_secs(raw_time & 0xffff_ffff)
    } else {
        // Up to about year 10000 mostly, sometimes far beyond.
        let secs = if raw_time & (1 << 62) != 0 {
            raw_time & ((1 << 50) - 1)
        } else {
            raw_time % 253_402_300_800
        };
        UNIX_EPOCH + Duration::from_secs(secs)
    };
    let text = text_of(flags, &data[25..]);
    let mut parts = text.split('\n');
    let app_text = flags & 0x20 != 0;
    let (by, id) = if app_text {
        let by = parts.next().unwrap_or("").to_string();
        let id = parts.next().map(str::to_string);
        (by, id)
    } else {
        (BY.to_string(), None)
    };
    // HELO/EHLO as the session takes it: the command line parsed, the argument as given.
    let ehlo = flags & 1 != 0;
    let helo_arg = parts.next().unwrap_or("");
    let verb = if ehlo { "EHLO" } else { "HELO" };
    let line = format!("{verb} {helo_arg}");
    let helo_name = if line.len() + 2 <= 2048 {
        parse_command_line(line.as_bytes())
            .ok()
            .map(|c| c.unparsed_params)
    } else {
        None
    };
    // An empty argument is refused by the session; a thread without HELO has none.
    let helo_name = helo_name.filter(|n| !n.is_empty());
    let path = |prefix: &str, p: &str| -> String {
        if p.starts_with('<') {
            format!("{prefix}{p}")
        } else {
            format!("{prefix}<{p}>")
        }
    };
    let utf8 = flags & 8 != 0;
    let from_line = path("FROM:", parts.next().unwrap_or(""));
    let from_line = if utf8 && !from_line.contains("SMTPUTF8") {
        format!("{from_line} SMTPUTF8")
    } else {
        from_line
    };
    let rcpt_lines: Vec<String> = parts.map(|p| path("TO:", p)).collect();
    let id_ok = id.clone().filter(|i| {
        !i.is_empty()
            && i.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c))
    });
    let setup = Setup {
        ehlo,
        helo_name,
        from_line,
        rcpt_lines,
        utf8_offered: utf8,
        logged_in: flags & 4 != 0,
        tls: flags & 2 != 0,
        peer,
        by: by.clone(),
        id,
        when,
    };
    let out = run(setup);
    check(&by, id_ok.as_deref(), app_text, peer, when, flags, &out);
});
