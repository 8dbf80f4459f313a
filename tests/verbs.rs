//! Raw-socket tests of every built-in verb in every session state, the EHLO reply, the reply
//! texts, and the command-handler table (issue 2 item 9). Replies are checked byte for byte
//! where the RFCs fix them.

mod common;

use common::{converse, expect_prefix, raw_cmd, read_raw_reply, start, Client, TestServer};
use std::sync::Arc;

use indy_smtp::{Command, Context, Reply, SmtpMessages, SmtpServer};

/// A server that does not hang up on a long run of refused commands.
fn server_with(configure: impl FnOnce(&mut SmtpServer)) -> TestServer {
    start(|s| {
        s.limits.max_bad_commands = 1000;
        configure(s);
    })
}

fn server() -> TestServer {
    server_with(|_| {})
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum St {
    Fresh,
    Helo,
    Ehlo,
    Mail,
    Rcpt,
}

const STATES: [St; 5] = [St::Fresh, St::Helo, St::Ehlo, St::Mail, St::Rcpt];

/// A new session brought to `state` (MAIL and RCPT after EHLO).
fn open(ts: &TestServer, state: St) -> Client {
    let mut c = ts.client();
    assert_eq!(c.greeting.0, 220);
    match state {
        St::Fresh => {}
        St::Helo => {
            c.expect("HELO client.example", 250);
        }
        St::Ehlo | St::Mail | St::Rcpt => {
            c.expect("EHLO client.example", 250);
        }
    }
    if matches!(state, St::Mail | St::Rcpt) {
        c.expect("MAIL FROM:<a@example.org>", 250);
    }
    if state == St::Rcpt {
        c.expect("RCPT TO:<b@example.net>", 250);
    }
    c
}

/// True when `text` starts with an RFC 3463 status code and a space.
fn starts_with_enhanced(text: &str) -> bool {
    let Some((first, _)) = text.split_once(' ') else {
        return false;
    };
    let parts: Vec<&str> = first.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks the first line of a raw reply against `want`: `"503"` (code, and no enhanced code
/// may follow) or `"503 5.5.1"` (code and exactly that enhanced code).
fn check_first_line(raw: &str, want: &str, context: &str) {
    let (code, enhanced) = want.split_once(' ').unwrap_or((want, ""));
    assert_eq!(&raw[..3], code, "{context}: got {raw:?}");
    let text = &raw[4..];
    if enhanced.is_empty() {
        assert!(
            !starts_with_enhanced(text),
            "{context}: unexpected enhanced code in {raw:?}"
        );
    } else {
        assert!(
            text.starts_with(&format!("{enhanced} ")),
            "{context}: want {want}, got {raw:?}"
        );
    }
}

// RFC 5321 §4.1.4 (order of commands), §4.2.4 (502 for unimplemented verbs), §3.5.3 (VRFY 252),
// RFC 2034 §3 (enhanced codes only after EHLO, never on the EHLO reply or after HELO),
// indy-port.md "Indy 9 behaviour to fix" 1, 3 and 12.
#[test]
fn every_verb_in_every_state() {
    // Expected first reply line per state: code, and the enhanced code when there is one.
    const NOT_IMPL: [&str; 5] = ["502", "502", "502 5.5.1", "502 5.5.1", "502 5.5.1"];
    const OK: [&str; 5] = ["250", "250", "250 2.0.0", "250 2.0.0", "250 2.0.0"];
    const NO_ENH: [&str; 5] = ["250", "250", "250", "250", "250"];
    const NEED_TX: [&str; 5] = ["503", "503", "503 5.5.1", "554 5.5.1", "354"];
    //                                 before HELO, after HELO, after EHLO, after MAIL, after RCPT
    let table: &[(&str, [&str; 5])] = &[
        ("HELP", NOT_IMPL),
        ("SOML FROM:<a@example.org>", NOT_IMPL),
        ("SEND FROM:<a@example.org>", NOT_IMPL),
        ("SAML FROM:<a@example.org>", NOT_IMPL),
        (
            "VRFY postmaster",
            ["252", "252", "252 2.5.0", "252 2.5.0", "252 2.5.0"],
        ),
        ("EXPN staff", NOT_IMPL),
        ("TURN", NOT_IMPL),
        ("RSET", OK),
        ("DATA", NEED_TX),
        ("HELO client.example", NO_ENH),
        ("EHLO client.example", NO_ENH),
        (
            "MAIL FROM:<c@example.org>",
            ["503", "250", "250 2.1.0", "503 5.5.1", "503 5.5.1"],
        ),
        ("NOOP", OK),
        (
            "QUIT",
            ["221", "221", "221 2.0.0", "221 2.0.0", "221 2.0.0"],
        ),
        (
            "RCPT TO:<d@example.net>",
            ["503", "503", "503 5.5.1", "250 2.1.5", "250 2.1.5"],
        ),
        ("AUTH LOGIN", NOT_IMPL),
        (
            "BDAT 0 LAST",
            ["503", "503", "503 5.5.1", "554 5.5.1", "250 2.0.0"],
        ),
        ("STARTTLS", NOT_IMPL),
        (
            "XYZZY",
            ["500", "500", "500 5.5.2", "500 5.5.2", "500 5.5.2"],
        ),
    ];
    let ts = server();
    for (line, wants) in table {
        for (state, want) in STATES.iter().zip(wants) {
            let context = format!("{line} in {state:?}");
            let mut c = open(&ts, *state);
            let raw = raw_cmd(&mut c, line);
            check_first_line(&raw, want, &context);
            if raw.starts_with("354") {
                c.send(b"Subject: t\r\n\r\nbody\r\n.\r\n");
                assert_eq!(&read_raw_reply(&mut c)[..10], "250 2.0.0 ", "{context}");
            }
            if line.starts_with("QUIT") {
                assert!(c.is_closed(), "{context}: still open after 221");
            } else {
                // The session is still in step: a NOOP is answered next.
                assert_eq!(&raw_cmd(&mut c, "NOOP")[..3], "250", "{context}");
            }
        }
    }
}

// RFC 2034 §3: enhanced codes only once the client saw ENHANCEDSTATUSCODES in the EHLO reply;
// RFC 5321 §4.1.4 (order), §4.2.2 (501 5.5.4 for bad arguments), the default texts.
#[test]
fn replies_byte_exact_after_helo_and_after_ehlo() {
    let ts = server();
    let mut c = ts.client();
    assert_eq!(c.greeting.1, "test.example ESMTP indy-smtp ready");
    converse(
        &mut c,
        "C: MAIL FROM:<a@example.org>
         S: 503 Send HELO or EHLO first
         C: HELO client.example
         S: 250 test.example Hello client.example
         C: MAIL FROM:<a@example.org>
         S: 250 <a@example.org> Ok
         C: RCPT TO:<b@example.net>
         S: 250 <b@example.net> Ok
         C: RSET
         S: 250 Ok",
    );
    // The client's text is echoed verbatim: its `%h` is not the server's placeholder.
    let mut c = ts.client();
    converse(&mut c, "C: HELO %h%s\n S: 250 test.example Hello %h%s");
    let mut c = ts.client();
    converse(
        &mut c,
        "C: EHLO client.example
         S^ 250-
         C: RCPT TO:<b@example.net>
         S^ 503 5.5.1 
         C: DATA
         S^ 503 5.5.1 
         C: MAIL FROM:<a@example.org>
         S: 250 2.1.0 <a@example.org> Ok
         C: DATA
         S: 554 5.5.1 No valid recipients
         C: MAIL FROM:<x@example.org>
         S^ 503 5.5.1 
         C: RCPT TO:<b@example.net>
         S: 250 2.1.5 <b@example.net> Ok
         C: NOOP hello there
         S: 250 2.0.0 Ok
         C: DATA
         S: 354 Start mail input; end with <CRLF>.<CRLF>
         C: Subject: x
         C:
         C: hi
         C: .
         S: 250 2.0.0 Ok: queued
         C: VRFY bob
         S: 252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery
         C: EXPN staff
         S: 502 5.5.1 Command not implemented
         C: XYZZY
         S: 500 5.5.2 Command unrecognized",
    );
    for line in [
        "RSET now",
        "VRFY",
        "HELO",
        "EHLO",
        "MAIL",
        "MAIL FROM:a@b.example",
        "DATA x",
    ] {
        expect_prefix(&mut c, line, "501 5.5.4 ");
    }
    converse(
        &mut c,
        "C: MAIL FROM:<a@example.org>
         S^ 250 
         C: RCPT
         S^ 501 5.5.4 
         C: RSET
         S^ 250 
         C: HELO client.example
         S: 250 test.example Hello client.example
         C: NOOP
         S: 250 Ok
         C: QUIT
         S: 221 test.example closing connection",
    );
    assert!(c.is_closed());
    let msgs = ts.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].from, "a@example.org");
    assert_eq!(msgs[0].rcpts, ["b@example.net"]);
}

// RFC 5321 §4.1.4: a new EHLO/HELO or RSET ends the transaction (Indy 9 answered a second
// EHLO with 503); §4.1.1.2: one MAIL per transaction, a nested one leaves it as it was.
#[test]
fn transaction_resets_and_nested_mail() {
    let ts = server();
    for reset in ["EHLO client.example", "HELO client.example", "RSET"] {
        let mut c = open(&ts, St::Rcpt);
        c.expect(reset, 250);
        assert_eq!(c.cmd("RCPT TO:<b@example.net>").0, 503, "after {reset}");
        assert_eq!(c.cmd("DATA").0, 503, "after {reset}");
        assert_eq!(c.cmd("MAIL FROM:<n@example.org>").0, 250, "after {reset}");
    }
    let mut c = open(&ts, St::Rcpt);
    assert_eq!(c.cmd("MAIL FROM:<other@example.org>").0, 503);
    c.expect("RCPT TO:<c@example.net>", 250);
    c.expect("DATA", 354);
    c.send(b"\r\nx\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    let msgs = ts.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0].from, "a@example.org",
        "the nested MAIL changed the sender"
    );
    assert_eq!(msgs[0].rcpts, ["b@example.net", "c@example.net"]);
}

// RFC 5321 §4.1.1.1 / RFC 1869 §4.3: the EHLO reply, its greeting line and one keyword a line,
// no enhanced codes on it (RFC 2034 §3); verbs are case-insensitive (RFC 5321 §2.4).
#[test]
fn ehlo_reply_byte_exact() {
    let ts = server();
    converse(
        &mut ts.client(),
        "C: EHLO client.example
         S: 250-test.example Hello client.example
         S: 250-PIPELINING
         S: 250-SIZE 10485760
         S: 250-8BITMIME
         S: 250-ENHANCEDSTATUSCODES
         S: 250-SMTPUTF8
         S: 250-CHUNKING
         S: 250-BINARYMIME
         S: 250 DSN",
    );
    converse(
        &mut ts.client(),
        "C: ehlo client.example
         S^ 250-test.example Hello client.example
         C: mail From:<a@example.org>
         S: 250 2.1.0 <a@example.org> Ok
         C: Rcpt tO:<b@example.net>
         S: 250 2.1.5 <b@example.net> Ok
         C: dAtA
         S^ 354 
         C: .
         S^ 250 2.0.0 
         C: quit
         S^ 221 2.0.0 ",
    );
}

fn ehlo_keywords(ts: &TestServer) -> Vec<String> {
    let mut c = ts.client();
    let raw = raw_cmd(&mut c, "EHLO client.example");
    raw.lines().skip(1).map(|l| l[4..].to_string()).collect()
}

// indy-port.md fix 12: EHLO advertises only what is really on (Indy 9 listed a fixed set),
// and a switched-off extension is refused as well as hidden.
#[test]
fn ehlo_advertises_only_what_is_on() {
    type Switch = fn(&mut SmtpServer);
    let cases: &[(Switch, &[&str])] = &[
        (|s| s.extensions.pipelining = false, &["PIPELINING"]),
        (|s| s.extensions.size = false, &["SIZE 10485760"]),
        // RFC 6531 §3.1 item 8: no SMTPUTF8 without 8BITMIME.
        (
            |s| s.extensions.eight_bit_mime = false,
            &["8BITMIME", "SMTPUTF8"],
        ),
        (
            |s| s.extensions.enhanced_status_codes = false,
            &["ENHANCEDSTATUSCODES"],
        ),
        (|s| s.extensions.smtputf8 = false, &["SMTPUTF8"]),
        (
            |s| s.extensions.chunking = false,
            &["CHUNKING", "BINARYMIME"],
        ),
        (|s| s.extensions.binary_mime = false, &["BINARYMIME"]),
        (|s| s.extensions.dsn = false, &["DSN"]),
    ];
    let all = ehlo_keywords(&server());
    let extra = ["AUTH", "HELP", "STARTTLS", "LIMITS"];
    assert!(
        !all.iter().any(|k| extra.iter().any(|e| k.starts_with(e))),
        "{all:?}"
    );
    for (switch, gone) in cases {
        let got = ehlo_keywords(&server_with(*switch));
        let mut want = all.clone();
        want.retain(|k| !gone.contains(&k.as_str()));
        assert_eq!(got, want, "switching off {gone:?}");
    }
    // RFC 1870 §4: SIZE without a number when there is no fixed maximum.
    let ts = server_with(|s| s.limits.max_message_size = 0);
    assert!(ehlo_keywords(&ts).contains(&"SIZE".to_string()));
    // Switched off means refused too: BDAT unknown, and no enhanced codes after EHLO.
    let ts = server_with(|s| {
        s.extensions.chunking = false;
        s.extensions.enhanced_status_codes = false;
    });
    let mut c = open(&ts, St::Rcpt);
    converse(
        &mut c,
        "C: BDAT 0 LAST\nS: 500 Command unrecognized\nC: NOOP\nS: 250 Ok",
    );
    // AUTH only with a credential check (RFC 4954 §3), HELP only with its handler.
    let ts = server_with(|s| s.check_user = Some(Box::new(|_, _, _| true)));
    let kw = ehlo_keywords(&ts);
    assert_eq!(kw.last().map(String::as_str), Some("AUTH PLAIN LOGIN"));
    assert_eq!(kw.len(), all.len() + 1);
    let ts = server_with(|s| {
        let help = |ctx: &mut Context<'_>, _: &Command| ctx.reply(Reply::new(214, "See RFC 5321"));
        s.on_command_help = Some(Arc::new(help));
    });
    let kw = ehlo_keywords(&ts);
    assert_eq!(kw.last().map(String::as_str), Some("HELP"));
    assert_eq!(kw.len(), all.len() + 1);
    converse(
        &mut open(&ts, St::Ehlo),
        "C: HELP\nS: 214 2.0.0 See RFC 5321",
    );
}

// Indy's AllowEHLO = False: EHLO is refused with ehlo_not_supported (RFC 5321 §4.1.1.1: the
// client falls back to HELO), and HELO still works.
#[test]
fn allow_ehlo_false() {
    let ts = server_with(|s| s.allow_ehlo = false);
    converse(
        &mut ts.client(),
        "C: EHLO client.example
         S: 500 Command not recognized
         C: HELO client.example
         S: 250 test.example Hello client.example
         C: MAIL FROM:<a@example.org>
         S: 250 <a@example.org> Ok
         C: EHLO client.example
         S: 500 Command not recognized
         C: RCPT TO:<b@example.net>
         S: 250 <b@example.net> Ok",
    );
}

// indy-port.md "keep": SmtpMessages::indy9() puts Indy 9's texts on the wire.
#[test]
fn indy9_texts_on_the_wire() {
    let ts = server_with(|s| s.messages = SmtpMessages::indy9());
    let mut c = ts.client();
    assert_eq!(c.greeting.1, "Welcome to the INDY SMTP Server");
    converse(
        &mut c,
        "C: MAIL FROM:<a@example.org>
         S: 503 Polite people say HELO
         C: XYZZY
         S: 500 Syntax Error
         C: HELO x
         S: 250 Hello x
         C: MAIL FROM:<a@example.org>
         S: 250 a@example.org Address Okay
         C: RCPT TO:<b@example.net>
         S: 250 b@example.net Address Okay
         C: DATA
         S: 354 Start mail input; end with <CRLF>.<CRLF>
         C: .
         S: 250 Ok
         C: EXPN list
         S: 502 Syntax Error - Command not understood: list
         C: AUTH PLAIN AGFsaWNlAHMzY3JldA==
         S: 502 Syntax Error - Command not understood: 
         C: QUIT
         S: 221 Signing Off",
    );
    assert!(c.is_closed());
    let mut c = ts.client();
    let ehlo = raw_cmd(&mut c, "EHLO x");
    assert!(
        ehlo.starts_with("250-test.example\r\n250-PIPELINING\r\n"),
        "{ehlo:?}"
    );
    converse(
        &mut c,
        "C: NOOP
         S: 250 2.0.0 Ok
         C: QUIT
         S: 221 2.0.0 Signing Off",
    );
}

// Indy's CommandHandlers: a verb can be added, replaced or removed.
#[test]
fn command_handlers_add_replace_remove() {
    let ts = server_with(|s| {
        let h = &mut s.command_handlers;
        h.add("XCLIENT", |ctx, cmd| {
            let n = cmd.params.len();
            let text = format!("{} got {n}: {}", cmd.verb, cmd.unparsed_params);
            ctx.reply(Reply::new(250, text))
        });
        h.add("noop", |ctx, _| {
            ctx.reply(Reply::new(250, "custom").with_enhanced("2.0.0"))
        });
        assert!(h.remove("EXPN"));
    });
    let mut c = ts.client();
    converse(
        &mut c,
        "C: xclient ADDR=192.0.2.1 NAME=x
         S: 250 XCLIENT got 2: ADDR=192.0.2.1 NAME=x
         C: NOOP
         S: 250 custom
         C: EXPN staff
         S: 500 Command unrecognized
         C: EHLO client.example
         S^ 250-
         C: NOOP
         S: 250 2.0.0 custom
         C: EXPN staff
         S: 500 5.5.2 Command unrecognized",
    );
    // The other verbs still work.
    assert_eq!(
        c.send_mail("a@example.org", &["b@example.net"], b"\r\nx\r\n")
            .0,
        250
    );
}

// Indy's CommandHandlersEnabled = False: every verb goes to OnNoCommandHandler, else 500.
#[test]
fn command_handlers_disabled() {
    let ts = server_with(|s| s.command_handlers_enabled = false);
    let mut c = ts.client();
    for line in ["EHLO client.example", "HELO client.example", "NOOP", "QUIT"] {
        converse(&mut c, &format!("C: {line}\nS: 500 Command unrecognized"));
    }
    let ts = server_with(|s| {
        s.command_handlers_enabled = false;
        s.on_no_command_handler = Some(Arc::new(|ctx, cmd| {
            ctx.reply(Reply::new(250, format!("nobody handles {}", cmd.verb)))
        }));
    });
    converse(
        &mut ts.client(),
        "C: mail FROM:<a@example.org>
         S: 250 nobody handles MAIL
         C: QUIT
         S: 250 nobody handles QUIT",
    );
}

// indy-port.md fix 10 and the demo note: a handler that writes no reply must not leave the
// client waiting (Indy 9 did); it gets 451 4.3.0 and the session goes on.
#[test]
fn silent_handler_gets_451() {
    let ts = server_with(|s| {
        s.command_handlers.add("XSILENT", |_, _| Ok(()));
        s.on_command_help = Some(Arc::new(|_, _| Ok(())));
        s.on_command_vrfy = Some(Arc::new(|_, _| Ok(())));
    });
    converse(
        &mut ts.client(),
        "C: XSILENT
         S: 451 Local error in processing
         C: EHLO client.example
         S^ 250-
         C: XSILENT
         S: 451 4.3.0 Local error in processing
         C: HELP
         S: 451 4.3.0 Local error in processing
         C: VRFY bob
         S: 451 4.3.0 Local error in processing
         C: NOOP
         S: 250 2.0.0 Ok",
    );
}

// RFC 5321 §2.3.8 / §4.1.1: lines that are not commands (empty, NUL, not UTF-8, RFC 6531 §3.3)
// are 500 5.5.2 and the session goes on.
#[test]
fn malformed_lines_are_500() {
    let ts = server();
    let mut c = ts.client();
    c.send(b"\r\n");
    assert_eq!(
        read_raw_reply(&mut c),
        "500 Syntax error: empty command\r\n"
    );
    c.expect("EHLO client.example", 250);
    let empty = "500 5.5.2 Syntax error: empty command\r\n";
    let nul = "500 5.5.2 Syntax error: NUL byte in command\r\n";
    let utf8 = "500 5.5.2 Syntax error: command is not valid UTF-8\r\n";
    let cases: &[(&[u8], &str)] = &[
        (b"\r\n", empty),
        (b"   \r\n", empty),
        (b"NO\0OP\r\n", nul),
        (b"MAIL FROM:<a\0@example.org>\r\n", nul),
        (b"HELO \xff\xfe\r\n", utf8),
        (b"\xc3\x28\r\n", utf8),
        (
            b"HE:LO x\r\n",
            "500 5.5.2 Syntax error: malformed command verb\r\n",
        ),
    ];
    for (line, want) in cases {
        c.send(line);
        assert_eq!(read_raw_reply(&mut c), *want, "{line:?}");
    }
    converse(&mut c, "C: NOOP\nS: 250 2.0.0 Ok");
}

// An HTTP request on the SMTP port (browser, proxy probe) is answered 421 and closed, before
// or after EHLO; the enhanced code appears only after EHLO (RFC 2034 §3).
#[test]
fn http_request_gets_421_and_close() {
    let ts = server();
    let mut c = ts.client();
    let raw = raw_cmd(&mut c, "GET / HTTP/1.1");
    assert!(
        raw.starts_with("421 ") && !starts_with_enhanced(&raw[4..]),
        "{raw:?}"
    );
    assert!(c.is_closed());
    let mut c = open(&ts, St::Ehlo);
    let raw = raw_cmd(&mut c, "POST /submit HTTP/1.0");
    assert!(
        raw.starts_with("421 4.7.0 ") && !starts_with_enhanced(&raw[10..]),
        "{raw:?}"
    );
    assert!(c.is_closed());
    // HELP with such words is still a command.
    expect_prefix(&mut ts.client(), "HELP GET", "502 ");
}

// indy-port.md fix 1: client bytes are never echoed unescaped into a reply (no CR, LF,
// escape sequences or NUL that could forge reply lines or attack a terminal).
#[test]
fn replies_never_echo_control_characters() {
    let ts = server_with(|s| {
        s.messages = SmtpMessages::indy9();
        let echo = |ctx: &mut Context<'_>, cmd: &Command| {
            ctx.reply(Reply::new(250, cmd.unparsed_params.clone()))
        };
        s.command_handlers.add("XECHO", echo);
    });
    let mut c = ts.client();
    let lines: &[&[u8]] = &[
        b"HELO a\x1b[2Jb\x7fc\r\n",
        b"HELO a\rb\r\n",
        b"EXPN x\x1b]0;pwn\x07y\r\n",
        b"XECHO one\rtwo\x08three\r\n",
        b"XECHO 250 fake\r\n",
    ];
    for line in lines {
        c.send(line);
        let raw = read_raw_reply(&mut c);
        let body = raw.strip_suffix("\r\n").expect("CRLF");
        assert!(
            !body.bytes().any(|b| b < 0x20 || b == 0x7f),
            "control byte in {raw:?}"
        );
    }
    converse(
        &mut c,
        "C: HELO a\x1b[1mb
         S: 250 Hello a[1mb
         C: XECHO a\x1bb
         S: 250 a?b",
    );
}
