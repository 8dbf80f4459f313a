//! Raw-socket tests of the events (Indy's OnCommandX / OnConnect / ...): each one's accept,
//! reject and custom-reply path, AUTH LOGIN and `auth_mode`, the before/after command events,
//! and the order in which the events run (issue 2 items 2, 5, 6 and 9). Failing handlers are
//! in tests/handler_failures.rs.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{
    expect_prefix, expect_raw, log, raw_cmd, read_raw_reply, server_with, wait_until, Log,
    TestServer,
};
use indy_smtp::{CommandHandler, MailAction, RcptAction, Reply};

// Indy 9 fix 4: an accepted sender is stored in `thread.from` (Indy 9 lost it when
// OnCommandMAIL accepted); Reject is 550 5.7.1 (fix 5); a custom reply goes out as it is and
// the sender is kept only if it is 2xx (Indy's CustomError).
#[test]
fn on_command_mail_accept_reject_custom() {
    let seen: Log<Option<String>> = log();
    let seen2 = Arc::clone(&seen);
    let ts = server_with(move |s| {
        s.on_command_mail = Some(Box::new(|_, mail| match mail.address.split('@').next() {
            Some("spam") => MailAction::Reject,
            Some("fine") => MailAction::Reply(Reply::parse("250 2.1.0 sender fine").unwrap()),
            Some("bad") => {
                MailAction::Reply(Reply::parse("553 5.1.8 sender domain unknown").unwrap())
            }
            _ => MailAction::Accept,
        }));
        s.on_command_rcpt = Some(Box::new(move |thread, _| {
            seen2
                .lock()
                .push(thread.from.as_ref().map(|f| f.address.clone()));
            RcptAction::Accept
        }));
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    expect_raw(
        &mut c,
        "MAIL FROM:<spam@example.org>",
        "550 5.7.1 <spam@example.org> Address rejected\r\n",
    );
    expect_prefix(&mut c, "RCPT TO:<x@example.net>", "503 ");
    expect_raw(
        &mut c,
        "MAIL FROM:<bad@example.org>",
        "553 5.1.8 sender domain unknown\r\n",
    );
    expect_prefix(&mut c, "RCPT TO:<x@example.net>", "503 ");
    expect_raw(
        &mut c,
        "MAIL FROM:<fine@example.org>",
        "250 2.1.0 sender fine\r\n",
    );
    expect_prefix(&mut c, "RCPT TO:<x@example.net>", "250 ");
    c.expect("RSET", 250);
    assert_eq!(
        c.send_mail(
            "alice@example.org",
            &["bob@example.net"],
            b"Subject: t\r\n\r\nhi\r\n"
        )
        .0,
        250
    );
    assert_eq!(
        *seen.lock(),
        [
            Some("fine@example.org".to_string()),
            Some("alice@example.org".to_string())
        ]
    );
    let msgs = ts.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].from, "alice@example.org");
}

// RFC 5321 §4.1.1.11: an unknown MAIL parameter is 555 5.5.4 unless the application claims it.
#[test]
fn on_command_mail_claims_parameters() {
    let values: Log<String> = log();
    let v2 = Arc::clone(&values);
    let ts = server_with(move |s| {
        s.on_command_mail = Some(Box::new(move |_, mail| {
            if mail.address.starts_with("claim") {
                let value = mail.claim("xfoo").map(str::to_string);
                v2.lock().push(value.unwrap_or_default());
            }
            MailAction::Accept
        }));
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    expect_raw(
        &mut c,
        "MAIL FROM:<other@example.org> XFOO=1",
        "555 5.5.4 Unsupported parameter XFOO\r\n",
    );
    assert_eq!(
        &raw_cmd(&mut c, "RCPT TO:<x@example.net>")[..4],
        "503 ",
        "refused MAIL stored"
    );
    expect_raw(
        &mut c,
        "MAIL FROM:<claim@example.org> XFOO=1",
        "250 2.1.0 <claim@example.org> Ok\r\n",
    );
    assert_eq!(*values.lock(), ["1"]);
}

// Indy's OnCommandRCPT (Accept, ToForward, CustomError): 250 / 251 naming the address
// (RFC 5321 §3.4) / 550 5.1.1 / the custom line; called once per recipient, in order, and only
// 2xx recipients reach the envelope.
#[test]
fn on_command_rcpt_paths() {
    let calls: Log<String> = log();
    let c2 = Arc::clone(&calls);
    let ts = server_with(move |s| {
        s.on_command_rcpt = Some(Box::new(move |_, rcpt| {
            c2.lock().push(rcpt.address.clone());
            match rcpt.address.split('@').next() {
                Some("fwd") => RcptAction::Forward,
                Some("no") => RcptAction::Reject,
                Some("custom") => {
                    RcptAction::Reply(Reply::parse("550 5.1.1 no such user").unwrap())
                }
                Some("later") => {
                    RcptAction::Reply(Reply::new(450, "mailbox busy").with_enhanced("4.2.1"))
                }
                Some("nice") => {
                    RcptAction::Reply(Reply::parse("250 2.1.5 custom welcome").unwrap())
                }
                // RFC 5321 §4.2.1: 3xx is intermediate; the client waits for a final reply.
                Some("odd") => RcptAction::Reply(Reply::new(354, "go ahead")),
                _ => RcptAction::Accept,
            }
        }));
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    let cases = [
        ("ok@example.net", "250 2.1.5 <ok@example.net> Ok\r\n"),
        (
            "fwd@example.net",
            "251 2.1.5 User not local; will forward to <fwd@example.net>\r\n",
        ),
        (
            "no@example.net",
            "550 5.1.1 <no@example.net> Address rejected\r\n",
        ),
        ("custom@example.net", "550 5.1.1 no such user\r\n"),
        ("later@example.net", "450 4.2.1 mailbox busy\r\n"),
        ("nice@example.net", "250 2.1.5 custom welcome\r\n"),
        ("odd@example.net", "451 4.0.0 go ahead\r\n"),
    ];
    for (addr, want) in cases {
        assert_eq!(
            raw_cmd(&mut c, &format!("RCPT TO:<{addr}>")),
            want,
            "{addr}"
        );
    }
    c.expect("DATA", 354);
    c.send(b"Subject: t\r\n\r\nhi\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    let all: Vec<&str> = cases.iter().map(|(a, _)| *a).collect();
    assert_eq!(*calls.lock(), all, "one call per recipient, in order");
    let msgs = ts.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0].rcpts,
        ["ok@example.net", "fwd@example.net", "nice@example.net"]
    );
}

// Indy's OnReceiveRaw CustomError: the handler's Err(reply) is the answer to the data, and the
// transaction ends whatever the outcome (RFC 5321 §4.1.1.4; Indy 9 fix 6).
#[test]
fn on_receive_raw_refusal() {
    let ts = server_with(|s| {
        s.on_receive_raw = Some(Box::new(|_, stream| {
            let mut data = Vec::new();
            stream.read_to_end(&mut data).unwrap();
            Err(Reply::new(554, "spam detected").with_enhanced("5.7.1"))
        }));
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RCPT TO:<b@example.net>", 250);
    c.expect("DATA", 354);
    c.send(b"Subject: t\r\n\r\nbuy now\r\n.\r\n");
    assert_eq!(read_raw_reply(&mut c), "554 5.7.1 spam detected\r\n");
    expect_prefix(&mut c, "RCPT TO:<b@example.net>", "503 5.5.1 ");
    expect_prefix(&mut c, "DATA", "503 5.5.1 ");
    expect_prefix(&mut c, "MAIL FROM:<a@example.org>", "250 ");
}

// Indy's OnConnect; RFC 5321 §3.1: a server may answer 554 instead of the greeting and close.
// OnDisconnect runs once for that session too, and later clients are served normally.
#[test]
fn on_connect_refusal() {
    let connects = Arc::new(AtomicUsize::new(0));
    let disconnects = Arc::new(AtomicUsize::new(0));
    let (c2, d2) = (Arc::clone(&connects), Arc::clone(&disconnects));
    let ts = server_with(move |s| {
        s.on_connect = Some(Box::new(move |_| match c2.fetch_add(1, Ordering::SeqCst) {
            0 => Err(Reply::new(554, "no service for you").with_enhanced("5.7.1")),
            1 => Err(Reply::new(354, "a refusal that is none")),
            _ => Ok(()),
        }));
        s.on_disconnect = Some(Box::new(move |_| {
            d2.fetch_add(1, Ordering::SeqCst);
        }));
    });
    // RFC 5321 §3.1: after a 554 the server waits for QUIT, answering anything else 503.
    let mut c = common::Client::connect_silent(ts.addr);
    assert_eq!(c.read_line(), "554 no service for you\r\n");
    c.send(b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n");
    for _ in 0..2 {
        let line = c.read_line();
        assert!(line.starts_with("503 "), "{line:?}");
    }
    expect_prefix(&mut c, "QUIT", "221 ");
    assert!(c.is_closed());
    assert!(wait_until(|| disconnects.load(Ordering::SeqCst) == 1));
    // A 3xx (or 2xx) refusal would read as leave to go on: it goes out as 421.
    let mut c = common::Client::connect_silent(ts.addr);
    assert_eq!(c.read_line(), "421 a refusal that is none\r\n");
    assert!(c.is_closed());
    let mut c = ts.client();
    assert_eq!(c.greeting.0, 220);
    expect_prefix(&mut c, "QUIT", "221 ");
    assert!(wait_until(|| disconnects.load(Ordering::SeqCst) == 3));
    assert_eq!(connects.load(Ordering::SeqCst), 3);
}

// A refused client that never sends QUIT is closed after max_bad_commands commands (421),
// and RFC 7504's 521 closes at once, as a 421 does.
#[test]
fn a_refused_client_is_bounded_and_521_closes_at_once() {
    let connects = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connects);
    let ts = server_with(move |s| {
        s.limits.max_bad_commands = 3;
        s.on_connect = Some(Box::new(move |_| {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(Reply::new(554, "blocked"))
            } else {
                Err(Reply::new(521, "does not accept mail"))
            }
        }));
    });
    let mut c = common::Client::connect_silent(ts.addr);
    assert_eq!(c.read_line(), "554 blocked\r\n");
    c.send(b"NOOP\r\nNOOP\r\nNOOP\r\n");
    assert!(c.read_line().starts_with("503 "));
    assert!(c.read_line().starts_with("503 "));
    assert!(c.read_line().starts_with("421 "));
    assert!(c.is_closed());
    let mut c = common::Client::connect_silent(ts.addr);
    assert_eq!(c.read_line(), "521 does not accept mail\r\n");
    assert!(c.is_closed());
}

// Indy's OnDisconnect: exactly once per session, however it ends (QUIT, the client dropping
// the connection mid-transaction, the server closing after a 421).
#[test]
fn on_disconnect_once_per_session() {
    let ids: Log<u64> = log();
    let ids2 = Arc::clone(&ids);
    let ts = server_with(move |s| {
        s.on_disconnect = Some(Box::new(move |thread| ids2.lock().push(thread.session_id)));
    });
    let mut c = ts.client();
    c.expect("QUIT", 221);
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    drop(c);
    let mut c = ts.client();
    expect_prefix(&mut c, "GET / HTTP/1.1", "421 ");
    assert!(wait_until(|| ids.lock().len() >= 3), "got {:?}", ids.lock());
    ts.handle.stop();
    let mut got = ids.lock().clone();
    assert_eq!(got.len(), 3, "{got:?}");
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), 3, "a session was reported twice");
}

// Indy's OnBeforeCommandHandler / OnAfterCommandHandler: every command line the session reads
// (unknown and empty ones too) before its handler, and a call after it; message data and the
// lines a handler reads itself are not command lines.
#[test]
fn before_and_after_command_events_see_every_command_line() {
    let lines: Log<String> = log();
    let afters = Arc::new(AtomicUsize::new(0));
    let (l2, a2) = (Arc::clone(&lines), Arc::clone(&afters));
    let ts = server_with(move |s| {
        s.on_before_command_handler = Some(Box::new(move |_, line| l2.lock().push(line.into())));
        s.on_after_command_handler = Some(Box::new(move |_| {
            a2.fetch_add(1, Ordering::SeqCst);
        }));
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("XYZZY now", 500);
    c.expect("", 500);
    // An initial response is a password (PLAIN): the event sees `*` instead.
    let _ = raw_cmd(&mut c, "AUTH PLAIN AGFsaWNlAHNlY3JldA==");
    assert_eq!(
        c.send_mail("a@example.org", &["b@example.net"], b"\r\nNOOP\r\n")
            .0,
        250
    );
    c.expect("QUIT", 221);
    let want = [
        "EHLO client.example",
        "XYZZY now",
        "",
        "AUTH PLAIN *",
        "EHLO client.example",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<b@example.net>",
        "DATA",
        "QUIT",
    ];
    assert!(wait_until(|| afters.load(Ordering::SeqCst) == want.len()));
    assert_eq!(*lines.lock(), want);
}

/// `check_user` accepting alice/secret; `on_command_mail` records who is logged in.
fn auth_server(auth_mode: bool, who: &Log<(String, bool)>) -> TestServer {
    let who = Arc::clone(who);
    server_with(move |s| {
        s.auth_mode = auth_mode;
        s.check_user = Some(Box::new(|_, user, pass| {
            user == "alice" && pass == "secret"
        }));
        s.on_command_mail = Some(Box::new(move |thread, _| {
            who.lock().push((thread.username.clone(), thread.logged_in));
            MailAction::Accept
        }));
    })
}

// Issue 2 item 5, RFC 4954 §4 and draft-murchison-sasl-login: the LOGIN prompts, 235 2.7.0,
// and the user visible to later events.
#[test]
fn auth_login_success() {
    let who = log();
    let ts = auth_server(false, &who);
    let mut c = ts.client();
    assert_eq!(
        &raw_cmd(&mut c, "AUTH LOGIN")[..4],
        "503 ",
        "AUTH before EHLO"
    );
    c.expect("EHLO client.example", 250);
    expect_raw(&mut c, "AUTH LOGIN", "334 VXNlcm5hbWU6\r\n");
    expect_raw(&mut c, "YWxpY2U=", "334 UGFzc3dvcmQ6\r\n");
    expect_raw(
        &mut c,
        "c2VjcmV0",
        "235 2.7.0 Authentication successful\r\n",
    );
    assert_eq!(
        &raw_cmd(&mut c, "AUTH LOGIN")[..10],
        "503 5.5.1 ",
        "AUTH twice"
    );
    c.expect("MAIL FROM:<alice@example.org>", 250);
    assert_eq!(*who.lock(), [("alice".to_string(), true)]);
    // The user name as initial response (RFC 4954 §4).
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    expect_raw(&mut c, "auth login YWxpY2U=", "334 UGFzc3dvcmQ6\r\n");
    expect_raw(
        &mut c,
        "c2VjcmV0",
        "235 2.7.0 Authentication successful\r\n",
    );
}

// RFC 4954 §4, §6: failure 535 5.7.8, "*" cancels with 501, bad base64 is 501 5.5.2; none of
// them logs the client in.
#[test]
fn auth_login_failure_cancel_bad_base64() {
    let who = log();
    let ts = auth_server(false, &who);
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("AUTH LOGIN", 334);
    c.expect("YWxpY2U=", 334);
    expect_raw(
        &mut c,
        "d3Jvbmc=",
        "535 5.7.8 Authentication credentials invalid\r\n",
    );
    c.expect("AUTH LOGIN", 334);
    expect_raw(&mut c, "*", "501 5.7.0 Authentication cancelled\r\n");
    c.expect("AUTH LOGIN", 334);
    c.expect("YWxpY2U=", 334);
    expect_raw(&mut c, "*", "501 5.7.0 Authentication cancelled\r\n");
    c.expect("AUTH LOGIN", 334);
    expect_raw(
        &mut c,
        "!!not base64!!",
        "501 5.5.2 Invalid base64 data\r\n",
    );
    expect_raw(
        &mut c,
        "AUTH XFOO",
        "504 5.5.4 Unrecognized authentication type\r\n",
    );
    c.expect("MAIL FROM:<a@example.org>", 250);
    assert_eq!(*who.lock(), [(String::new(), false)]);
}

// Indy's AuthMode (RFC 4954 §6): MAIL is 530 5.7.0 until the client has logged in.
#[test]
fn auth_mode_refuses_mail_until_login() {
    let who = log();
    let ts = auth_server(true, &who);
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    expect_raw(
        &mut c,
        "MAIL FROM:<a@example.org>",
        "530 5.7.0 Authentication required\r\n",
    );
    c.expect("AUTH LOGIN", 334);
    c.expect("YWxpY2U=", 334);
    c.expect("d3Jvbmc=", 535);
    expect_raw(
        &mut c,
        "MAIL FROM:<a@example.org>",
        "530 5.7.0 Authentication required\r\n",
    );
    c.expect("AUTH LOGIN", 334);
    c.expect("YWxpY2U=", 334);
    c.expect("c2VjcmV0", 235);
    expect_raw(
        &mut c,
        "MAIL FROM:<a@example.org>",
        "250 2.1.0 <a@example.org> Ok\r\n",
    );
    assert_eq!(
        *who.lock(),
        [("alice".to_string(), true)],
        "refused MAILs reached the event"
    );
}

// Indy's OnCommandAUTH replaces the built-in exchange: it reads the client's lines and replies
// itself, and its login counts for auth_mode.
#[test]
fn on_command_auth_replaces_builtin() {
    let who = log();
    let who2 = Arc::clone(&who);
    let ts = server_with(move |s| {
        s.auth_mode = true;
        s.extensions.extra = vec!["AUTH X-SESAME".into()];
        let handler: CommandHandler = Arc::new(|ctx, cmd| {
            if cmd.params.first().map(String::as_str) != Some("X-SESAME") {
                return ctx.reply(Reply::new(504, "only X-SESAME").with_enhanced("5.5.4"));
            }
            ctx.reply(Reply::new(334, "c2F5IHRoZSB3b3Jk"))?;
            if ctx.read_line()? == "open sesame" {
                ctx.thread.logged_in = true;
                ctx.thread.username = "ali".into();
                ctx.reply(Reply::new(235, "welcome").with_enhanced("2.7.0"))
            } else {
                ctx.reply(Reply::new(535, "wrong word").with_enhanced("5.7.8"))
            }
        });
        s.on_command_auth = Some(handler);
        s.on_command_mail = Some(Box::new(move |thread, _| {
            who2.lock()
                .push((thread.username.clone(), thread.logged_in));
            MailAction::Accept
        }));
    });
    let mut c = ts.client();
    let ehlo = raw_cmd(&mut c, "EHLO client.example");
    assert!(ehlo.ends_with("250 AUTH X-SESAME\r\n"), "{ehlo:?}");
    assert_eq!(
        ehlo.matches("AUTH").count(),
        1,
        "built-in mechanisms offered: {ehlo:?}"
    );
    expect_prefix(&mut c, "MAIL FROM:<a@example.org>", "530 ");
    expect_raw(&mut c, "AUTH LOGIN", "504 5.5.4 only X-SESAME\r\n");
    expect_raw(&mut c, "AUTH X-SESAME", "334 c2F5IHRoZSB3b3Jk\r\n");
    expect_raw(&mut c, "open barley", "535 5.7.8 wrong word\r\n");
    expect_raw(&mut c, "AUTH X-SESAME", "334 c2F5IHRoZSB3b3Jk\r\n");
    expect_raw(&mut c, "open sesame", "235 2.7.0 welcome\r\n");
    c.expect("MAIL FROM:<a@example.org>", 250);
    assert_eq!(*who.lock(), [("ali".to_string(), true)]);
}

// indy-port.md "keep": the events run in Indy's order — connect, MAIL, RCPT per recipient,
// the receive event, disconnect — and all see the same session.
#[test]
fn event_order() {
    let events: Log<(String, u64)> = log();
    let ts = server_with(|s| {
        let e = Arc::clone(&events);
        s.on_connect = Some(Box::new(move |t| {
            e.lock().push(("connect".into(), t.session_id));
            Ok(())
        }));
        let e = Arc::clone(&events);
        s.on_command_mail = Some(Box::new(move |t, m| {
            e.lock().push((format!("mail {}", m.address), t.session_id));
            MailAction::Accept
        }));
        let e = Arc::clone(&events);
        s.on_command_rcpt = Some(Box::new(move |t, r| {
            e.lock().push((format!("rcpt {}", r.address), t.session_id));
            RcptAction::Accept
        }));
        let e = Arc::clone(&events);
        let store = s.on_receive_raw.take().unwrap();
        s.on_receive_raw = Some(Box::new(move |t, stream| {
            e.lock().push(("receive".into(), t.session_id));
            store(t, stream)
        }));
        let e = Arc::clone(&events);
        s.on_disconnect = Some(Box::new(move |t| {
            e.lock().push(("disconnect".into(), t.session_id))
        }));
    });
    let mut c = ts.client();
    assert_eq!(
        c.send_mail(
            "a@example.org",
            &["b@example.net", "c@example.net"],
            b"\r\nx\r\n"
        )
        .0,
        250
    );
    c.expect("QUIT", 221);
    assert!(wait_until(|| events.lock().len() >= 6));
    let got = events.lock().clone();
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "connect",
            "mail a@example.org",
            "rcpt b@example.net",
            "rcpt c@example.net",
            "receive",
            "disconnect"
        ]
    );
    assert!(
        got.iter().all(|(_, id)| *id == got[0].1),
        "events from different sessions: {got:?}"
    );
}
