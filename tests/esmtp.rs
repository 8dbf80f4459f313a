//! ESMTP extensions over real sockets (issue 3): PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
//! BINARYMIME, DSN, LIMITS, parameter handling and MAIL/RCPT path syntax (CHUNKING is in
//! tests/chunking.rs).

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{codes, replies, start, Client};
use indy_smtp::address::Ret;
use indy_smtp::{MailAction, MailFrom, RcptAction, RcptTo, Reply};
use parking_lot::Mutex;

fn ehlo(c: &mut Client) -> String {
    c.expect("EHLO client.example", 250)
}

// ---- PIPELINING (RFC 2920 §3.1: replies in order; §3.2: DATA ends a batch) ----

#[test]
fn pipelined_envelope_replies_in_order_and_354_last() {
    let s = start(|_| {});
    let mut c = s.client();
    assert!(ehlo(&mut c).contains("PIPELINING"));
    c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<r1@x.example>\r\nRCPT TO:<r2@x.example>\r\nRCPT TO:<r3@x.example>\r\nDATA\r\n");
    let r = replies(&mut c, 5);
    assert_eq!(codes(&r), [250, 250, 250, 250, 354], "{r:?}");
    assert!(
        r[1].1.contains("r1@x.example") && r[3].1.contains("r3@x.example"),
        "{r:?}"
    );
    c.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    let m = s.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].rcpts, ["r1@x.example", "r2@x.example", "r3@x.example"]);
    assert_eq!(m[0].data, b"Subject: pipelined\r\n\r\nbody\r\n");
}

#[test]
fn bytes_after_data_in_the_same_write_are_message_data() {
    // RFC 2920 §3.1: nothing after DATA may be run as a command.
    let s = start(|_| {});
    let mut c = s.client();
    ehlo(&mut c);
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nQUIT\r\nRSET\r\n.\r\nNOOP\r\n");
    assert_eq!(codes(&replies(&mut c, 4)), [250, 250, 354, 250]);
    assert_eq!(
        c.read_reply().0,
        250,
        "the NOOP after the data runs as a command"
    );
    assert_eq!(s.messages()[0].data, b"QUIT\r\nRSET\r\n");
    assert_eq!(c.cmd("QUIT").0, 221);
}

#[test]
fn five_thousand_pipelined_noops_answered_in_order() {
    let s = start(|_| {});
    let mut c = s.client();
    ehlo(&mut c);
    let mut batch = b"NOOP\r\n".repeat(5000);
    batch.extend_from_slice(b"VRFY postmaster\r\n");
    // A writer thread, so neither side can block the other on full socket buffers.
    let mut w = c.writer.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&batch));
    for i in 0..5000 {
        let line = c.read_line();
        assert_eq!(line, "250 2.0.0 Ok\r\n", "reply {i}");
    }
    assert_eq!(
        c.read_reply().0,
        252,
        "the VRFY after the NOOPs is answered last"
    );
    writer.join().unwrap().unwrap();
    assert_eq!(c.cmd("QUIT").0, 221);
}

#[test]
fn replies_of_one_batch_are_flushed_together() {
    // RFC 2920 §3.1: the server flushes once the input runs dry, without waiting for more.
    let s = start(|_| {});
    let mut c = s.client();
    ehlo(&mut c);
    c.writer
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    c.send(b"NOOP\r\nRSET\r\nVRFY postmaster\r\nMAIL FROM:<a@b>\r\nNOOP\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.iter().filter(|&&b| b == b'\n').count() < 5 {
        match c.reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let codes: Vec<&str> = text.lines().map(|l| &l[..3]).collect();
    assert_eq!(codes, ["250", "250", "252", "250", "250"], "{text:?}");
}

/// RFC 2920 §3.2: replies to EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP, and to
/// unrecognized commands, MUST NOT be buffered. A client that breaks the grouping rule sends
/// `XWAIT` right behind them; its handler holds the session until released, so the earlier
/// reply can only arrive meanwhile if it was written at once. (The handler gives up after
/// 10 s, so a server that buffers fails the test instead of hanging it.)
#[test]
fn replies_to_group_ending_commands_are_not_held_back() {
    let (release, released) = crossbeam_channel::unbounded::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&finished);
    let s = start(move |srv| {
        srv.on_command_vrfy = None;
        srv.command_handlers.add("XWAIT", move |ctx, _| {
            let _ = released.recv_timeout(Duration::from_secs(10));
            done.store(true, Ordering::SeqCst);
            ctx.reply(indy_smtp::Reply::new(250, "released"))
        });
    });
    let mut c = s.client();
    for (first, code) in [
        ("EHLO client.example", 250),
        ("NOOP", 250),
        ("VRFY someone", 252),
        ("EXPN list", 502),
        ("XYZZY", 500),
        ("DATA", 503),
    ] {
        finished.store(false, Ordering::SeqCst);
        c.send(format!("{first}\r\nXWAIT\r\n").as_bytes());
        assert_eq!(c.read_reply().0, code, "reply to {first}");
        assert!(
            !finished.load(Ordering::SeqCst),
            "the reply to {first} waited for the next command"
        );
        release.send(()).unwrap();
        assert_eq!(c.read_reply(), (250, "2.0.0 released".to_string()));
    }
}

// ---- SIZE (RFC 1870 §4 keyword, §6.1 MAIL check, §6.2 over-limit data) ----

#[test]
fn size_advertised_and_declared_size_checked() {
    let s = start(|srv| srv.limits.max_message_size = 1000);
    let mut c = s.client();
    assert!(ehlo(&mut c).lines().any(|l| l == "SIZE 1000"));
    let t = c.expect("MAIL FROM:<a@b> SIZE=1001", 552);
    assert!(t.starts_with("5.3.4 "), "{t}");
    let t = c.expect("MAIL FROM:<a@b> SIZE=99999999999999999999", 552);
    assert!(t.starts_with("5.3.4 "), "{t}");
    c.expect("MAIL FROM:<a@b> SIZE=1000", 250);
}

#[test]
fn oversized_data_read_to_its_end_then_one_552() {
    let s = start(|srv| srv.limits.max_message_size = 1000);
    let mut c = s.client();
    let body = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(1500));
    let (code, text) = c.send_mail("a@b", &["c@d"], body.as_bytes());
    assert_eq!(code, 552);
    assert!(text.starts_with("5.3.4 "), "{text}");
    // Exactly one reply for the data: the next one answers the NOOP.
    assert_eq!(c.cmd("NOOP").0, 250);
    assert!(s.messages().is_empty());
    c.expect("MAIL FROM:<a@b>", 250);
    c.expect("RCPT TO:<c@d>", 250);
    c.expect("DATA", 354);
    c.send(b"small\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    assert_eq!(s.messages().len(), 1);
    assert_eq!(s.messages()[0].data, b"small\r\n");
}

// ---- 8BITMIME (RFC 6152) and BINARYMIME (RFC 3030 §3) ----

#[test]
fn eight_bit_mime_and_binarymime_only_with_bdat() {
    let s = start(|_| {});
    let mut c = s.client();
    let caps = ehlo(&mut c);
    assert!(caps.contains("8BITMIME") && caps.contains("BINARYMIME") && caps.contains("CHUNKING"));
    c.expect("MAIL FROM:<a@b> BODY=8BITMIME", 250);
    c.expect("RCPT TO:<c@d>", 250);
    c.expect("DATA", 354);
    c.send(b"caf\xc3\xa9 \xff\xfe\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    assert_eq!(s.messages()[0].data, b"caf\xc3\xa9 \xff\xfe\r\n");

    c.expect("MAIL FROM:<a@b> BODY=BINARYMIME", 250);
    c.expect("RCPT TO:<c@d>", 250);
    let t = c.expect("DATA", 503);
    assert!(t.starts_with("5.5.1"), "{t}");
    let chunk = b"\x00\x01\r\n.\r\n\xff bin";
    c.send(format!("BDAT {} LAST\r\n", chunk.len()).as_bytes());
    c.send(chunk);
    assert_eq!(c.read_reply().0, 250);
    assert_eq!(s.messages().len(), 2);
    assert_eq!(s.messages()[1].data, chunk);
}

// ---- SMTPUTF8 (RFC 6531 §3.4: UTF-8 only when the MAIL asked for it; §3.5: 553 5.6.7) ----

#[test]
fn utf8_addresses_need_the_smtputf8_parameter() {
    let s = start(|_| {});
    let mut c = s.client();
    assert!(ehlo(&mut c).contains("SMTPUTF8"));
    let t = c.expect("MAIL FROM:<d\u{f6}rte@b\u{fc}cher.example>", 553);
    assert!(t.starts_with("5.6.7"), "{t}");
    c.expect("MAIL FROM:<plain@example.com>", 250);
    let t = c.expect("RCPT TO:<\u{7528}\u{6237}@example.com>", 553);
    assert!(t.starts_with("5.6.7"), "{t}");
    c.expect("RSET", 250);
    c.expect("MAIL FROM:<d\u{f6}rte@b\u{fc}cher.example> SMTPUTF8", 250);
    c.expect("RCPT TO:<\u{7528}\u{6237}@\u{4f8b}\u{3048}.jp>", 250);
    c.expect("DATA", 354);
    c.send(b"x\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    let m = &s.messages()[0];
    assert_eq!(m.from, "d\u{f6}rte@b\u{fc}cher.example");
    assert_eq!(m.rcpts, ["\u{7528}\u{6237}@\u{4f8b}\u{3048}.jp"]);
}

/// RFC 5321 §4.2: reply text is printable US-ASCII, so an application's non-ASCII text goes
/// out with `?`; within a transaction whose MAIL declared SMTPUTF8 (RFC 6531) the replies
/// keep UTF-8, so the echo of a UTF-8 address stays readable.
#[test]
fn reply_text_is_ascii_outside_an_smtputf8_transaction() {
    let s = start(|srv| {
        srv.on_command_rcpt = Some(Box::new(|_, rcpt| {
            if rcpt.address.starts_with("refuse@") {
                RcptAction::Reply(Reply::new(550, "Gr\u{fc}\u{df}e"))
            } else {
                RcptAction::Accept
            }
        }));
    });
    let mut c = s.client();
    ehlo(&mut c);
    c.expect("MAIL FROM:<plain@example.com>", 250);
    c.send(b"RCPT TO:<refuse@example.com>\r\n");
    assert_eq!(c.read_line(), "550 5.0.0 Gr??e\r\n");
    c.expect("RSET", 250);
    c.send("MAIL FROM:<d\u{f6}rte@b\u{fc}cher.example> SMTPUTF8\r\n".as_bytes());
    assert_eq!(
        c.read_line(),
        "250 2.1.0 <d\u{f6}rte@b\u{fc}cher.example> Ok\r\n"
    );
    c.send(b"RCPT TO:<refuse@example.com>\r\n");
    assert_eq!(c.read_line(), "550 5.0.0 Gr\u{fc}\u{df}e\r\n");
    // RSET ends the transaction, and with it the UTF-8.
    c.expect("RSET", 250);
    c.expect("MAIL FROM:<plain@example.com>", 250);
    c.send(b"RCPT TO:<refuse@example.com>\r\n");
    assert_eq!(c.read_line(), "550 5.0.0 Gr??e\r\n");
}

#[test]
fn smtputf8_off_refuses_the_parameter() {
    let s = start(|srv| srv.extensions.smtputf8 = false);
    let mut c = s.client();
    assert!(!ehlo(&mut c).contains("SMTPUTF8"));
    let t = c.expect("MAIL FROM:<a@b> SMTPUTF8", 555);
    assert!(t.starts_with("5.5.4"), "{t}");
    c.expect("MAIL FROM:<d\u{f6}rte@b.example>", 553);
}

// ---- DSN (RFC 3461 §4: RET, ENVID on MAIL; NOTIFY, ORCPT on RCPT) ----

#[test]
fn dsn_parameters_reach_the_events() {
    let mails: Arc<Mutex<Vec<MailFrom>>> = Arc::default();
    let rcpts: Arc<Mutex<Vec<RcptTo>>> = Arc::default();
    let (m2, r2) = (Arc::clone(&mails), Arc::clone(&rcpts));
    let s = start(move |srv| {
        srv.on_command_mail = Some(Box::new(move |_, m| {
            m2.lock().push(m.clone());
            MailAction::Accept
        }));
        srv.on_command_rcpt = Some(Box::new(move |_, r| {
            r2.lock().push(r.clone());
            indy_smtp::RcptAction::Accept
        }));
    });
    let mut c = s.client();
    assert!(ehlo(&mut c).lines().any(|l| l == "DSN"));
    c.expect("MAIL FROM:<a@b> RET=HDRS ENVID=QQ+2B314159", 250);
    c.expect(
        "RCPT TO:<c@d> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+40d",
        250,
    );
    c.expect("RCPT TO:<e@f> NOTIFY=NEVER", 250);
    let m = mails.lock()[0].clone();
    assert_eq!(m.ret, Some(Ret::Hdrs));
    assert_eq!(m.envid.as_deref(), Some("QQ+314159"));
    let kw: Vec<(&str, Option<&str>)> = m
        .params
        .iter()
        .map(|p| (p.keyword.as_str(), p.value.as_deref()))
        .collect();
    assert_eq!(kw, [("RET", Some("HDRS")), ("ENVID", Some("QQ+2B314159"))]);
    let r = rcpts.lock().clone();
    let n = r[0].notify.unwrap();
    assert!(n.success && n.failure && !n.delay && !n.never);
    let orcpt = r[0].orcpt.clone().unwrap();
    assert_eq!(
        (orcpt.addr_type.as_str(), orcpt.address.as_str()),
        ("rfc822", "c@d")
    );
    assert!(r[1].notify.unwrap().never && r[1].orcpt.is_none());
}

#[test]
fn dsn_off_refuses_its_parameters() {
    let s = start(|srv| srv.extensions.dsn = false);
    let mut c = s.client();
    assert!(!ehlo(&mut c).lines().any(|l| l == "DSN"));
    for cmd in ["MAIL FROM:<a@b> RET=FULL", "MAIL FROM:<a@b> ENVID=x"] {
        assert!(c.expect(cmd, 555).starts_with("5.5.4"), "{cmd}");
    }
    c.expect("MAIL FROM:<a@b>", 250);
    for cmd in [
        "RCPT TO:<c@d> NOTIFY=NEVER",
        "RCPT TO:<c@d> ORCPT=rfc822;c@d",
    ] {
        assert!(c.expect(cmd, 555).starts_with("5.5.4"), "{cmd}");
    }
}

// ---- LIMITS (RFC 9422 §4: RCPTMAX, MAILMAX), off by default ----

#[test]
fn limits_off_by_default_and_mailmax_enforced_when_on() {
    let s = start(|_| {});
    let mut c = s.client();
    assert!(!ehlo(&mut c).contains("LIMITS"));

    let s = start(|srv| {
        srv.extensions.limits = true;
        srv.limits.max_recipients = 50;
        srv.limits.max_transactions = 2;
    });
    let mut c = s.client();
    assert!(ehlo(&mut c)
        .lines()
        .any(|l| l == "LIMITS RCPTMAX=50 MAILMAX=2"));
    for _ in 0..2 {
        c.expect("MAIL FROM:<a@b>", 250);
        c.expect("RSET", 250);
    }
    let (code, _) = c.cmd("MAIL FROM:<a@b>");
    assert!((400..600).contains(&code), "third MAIL answered {code}");

    // Unlimited values are not announced as limits.
    let s = start(|srv| {
        srv.extensions.limits = true;
        srv.limits.max_recipients = 0;
    });
    let mut c = s.client();
    assert!(ehlo(&mut c).lines().any(|l| l == "LIMITS"));
}

// ---- Parameters (RFC 5321 §4.1.1.11: unknown → 555 unless an event claims it) ----

#[test]
fn unknown_parameters_refused_unless_claimed() {
    let s = start(|srv| {
        srv.on_command_mail = Some(Box::new(|_, m| {
            m.claim("XCLAIMED");
            MailAction::Accept
        }))
    });
    let mut c = s.client();
    ehlo(&mut c);
    assert!(c.expect("MAIL FROM:<a@b> XFOO=1", 555).starts_with("5.5.4"));
    c.expect("MAIL FROM:<a@b> XCLAIMED=yes", 250);
    assert!(c.expect("RCPT TO:<c@d> XBAR", 555).starts_with("5.5.4"));
    c.expect("RCPT TO:<c@d>", 250);
}

// ---- Paths (RFC 5321 §4.1.2, §3.3; RFC 3463 §3.2: 5.1.7 sender, 5.1.3 recipient) ----

#[test]
fn path_forms_accepted() {
    let s = start(|_| {});
    let mut c = s.client();
    ehlo(&mut c);
    c.expect("MAIL FROM: <a@b.example>", 250);
    c.expect("RCPT TO:<postmaster>", 250);
    c.expect("RCPT TO:<\"john doe\"@example.com>", 250);
    c.expect("RCPT TO:<@relay.example:x@example.com>", 250);
    c.expect("DATA", 354);
    c.send(b"x\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    c.expect("MAIL FROM:<>", 250);
    c.expect("RCPT TO:<c@d>", 250);
    c.expect("DATA", 354);
    c.send(b"bounce\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    let m = s.messages();
    assert_eq!(m[0].from, "a@b.example");
    assert_eq!(
        m[0].rcpts,
        ["postmaster", "\"john doe\"@example.com", "x@example.com"]
    );
    assert_eq!(m[1].from, "", "null reverse-path");
}

#[test]
fn malformed_paths_get_501_with_a_reason() {
    let s = start(|srv| srv.limits.max_bad_commands = 100);
    let mut c = s.client();
    ehlo(&mut c);
    for arg in ["FROM:<a b@c>", "FROM:<a@>", "FROM:<a@@b>", "FROM:<a@b..c>"] {
        let t = c.expect(&format!("MAIL {arg}"), 501);
        assert!(t.starts_with("5.1.7 ") && t.len() > 12, "{arg}: {t}");
    }
    c.expect("MAIL FROM:<a@b>", 250);
    for arg in [
        "TO:<a b@c>",
        "TO:<@>",
        "TO:<a@[1.2.3.999]>",
        "TO:<\"open@c>",
    ] {
        let t = c.expect(&format!("RCPT {arg}"), 501);
        assert!(t.starts_with("5.1.3 ") && t.len() > 12, "{arg}: {t}");
    }
}

/// Tails after `FROM:` / `TO:` that no parser may accept.
#[rustfmt::skip]
const HOSTILE_TAILS: [&[u8]; 35] = [
    b"", b"<", b">", b"<<>>", b"<a@b", b"a@b>", b"<a@b>>", b"<@>", b"<a@>", b"<@b>", b"<a@@b>",
    b"<a b@c>", b"<\"unterminated@c>", b"<a@b..c>", b"<a@-b.c>", b"<a@[1.2.3.999]>",
    b"<a@[IPv6:::g]>", b"<a@[]>", b"<a@b> SIZE=", b"<a@b> SIZE=1 SIZE=2", b"<a@b> =x",
    b"<a@b> X=Y=Z", b"<a@b>SIZE=1", b"<a@b> \tSIZE=1", b"<a@b> ENVID=+ZZ", b"<a@b> NOTIFY=",
    b"<a@b> SIZE=100000000000000000000000", b"<a\x00b@c>", b"<a\rb@c>", b"<a\x1b@c>",
    b"<\xff\xfe@c>", b"<\xc3\xa9@c>", b"<@a,@b:c@d", b"<@a:>", b"<()@c>",
];

#[test]
fn forty_hostile_arguments_never_break_the_session() {
    let s = start(|srv| srv.limits.max_bad_commands = 1000);
    let mut c = s.client();
    ehlo(&mut c);
    let long_domain = format!("<a@{}.example>", "b".repeat(300));
    let long_local = format!("<{}@c>", "a".repeat(65));
    for (verb, kw, wrong) in [("MAIL", "FROM:", "TO:"), ("RCPT", "TO:", "FROM:")] {
        let mut args: Vec<Vec<u8>> = HOSTILE_TAILS
            .iter()
            .map(|t| [kw.as_bytes(), t].concat())
            .collect();
        args.push(format!("{kw}{long_domain}").into_bytes());
        args.push(format!("{kw}{long_local}").into_bytes());
        args.push(format!("{wrong}<a@b>").into_bytes());
        args.push(format!("{} :<a@b>", &kw[..kw.len() - 1]).into_bytes());
        args.push(b"<a@b>".to_vec());
        assert_eq!(args.len(), 40);
        for arg in &args {
            if verb == "RCPT" {
                c.expect("MAIL FROM:<ok@example.com>", 250);
            }
            let mut line = format!("{verb} ").into_bytes();
            line.extend_from_slice(arg);
            line.extend_from_slice(b"\r\n");
            c.send(&line);
            let (code, text) = c.read_reply();
            let shown = String::from_utf8_lossy(arg);
            assert!(
                (500..600).contains(&code),
                "{verb} {shown:?} answered {code} {text}"
            );
            assert!(text.len() > 6, "{verb} {shown:?}: no reason given ({text})");
            c.expect("RSET", 250);
            assert_eq!(c.cmd("NOOP").0, 250, "after {verb} {shown:?}");
        }
    }
    c.expect("MAIL FROM:<a@b>", 250);
    assert_eq!(c.cmd("RCPT TO:<c@d>").0, 250);
}
