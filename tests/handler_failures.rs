//! Handlers that fail (Indy 9 fix 10): a panic or an error of the handler's own is answered
//! `451 4.3.0`, reported to `on_exception`, and the session (and every other one) goes on;
//! `?` on an I/O error in a receive event is a temporary failure.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{expect_prefix, expect_raw, log, raw_cmd, server_with, Log};
use indy_smtp::{RcptAction, Reply};

// Issue 2 item 6 and Indy 9 fix 10: a panic in an event is answered 451 4.3.0, reported to
// on_exception, and touches no other session. The command that panicked is undone, and the
// transaction before it goes on: the recipients already accepted still get the message
// (RFC 5321 §4.2.5: a 451 to RCPT is one recipient's temporary failure).
#[test]
fn panicking_rcpt_handler() {
    let errors: Log<String> = log();
    let e2 = Arc::clone(&errors);
    let ts = server_with(move |s| {
        s.on_command_rcpt = Some(Box::new(|_, rcpt| {
            assert!(!rcpt.address.starts_with("boom"), "boom recipient");
            RcptAction::Accept
        }));
        s.on_exception = Some(Box::new(move |_, text| e2.lock().push(text.to_string())));
    });
    let mut other = ts.client();
    other.expect("EHLO other.example", 250);
    other.expect("MAIL FROM:<o@example.org>", 250);
    other.expect("RCPT TO:<p@example.net>", 250);

    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RCPT TO:<ok@example.net>", 250);
    expect_raw(
        &mut c,
        "RCPT TO:<boom@example.net>",
        "451 4.3.0 Local error in processing\r\n",
    );
    expect_raw(&mut c, "NOOP", "250 2.0.0 Ok\r\n");
    c.expect("RCPT TO:<b@example.net>", 250);
    c.expect("DATA", 354);
    c.send(b"\r\nafter\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);

    other.expect("DATA", 354);
    other.send(b"\r\nother\r\n.\r\n");
    assert_eq!(other.read_reply().0, 250);
    let mut fresh = ts.client();
    assert_eq!(fresh.greeting.0, 220);
    assert_eq!(
        fresh
            .send_mail("f@example.org", &["g@example.net"], b"\r\nnew\r\n")
            .0,
        250
    );

    let errors = errors.lock().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0], "handler panicked: boom recipient", "{errors:?}");
    let from: Vec<String> = ts.messages().into_iter().map(|m| m.from).collect();
    assert_eq!(from, ["a@example.org", "o@example.org", "f@example.org"]);
    assert_eq!(ts.messages()[0].rcpts, ["ok@example.net", "b@example.net"]);
}

// A MAIL whose handler panicked opens no transaction.
#[test]
fn panicking_mail_handler_opens_no_transaction() {
    let ts = server_with(|s| {
        s.on_command_mail = Some(Box::new(|_, mail| {
            assert!(!mail.address.starts_with("boom"), "boom sender");
            indy_smtp::MailAction::Accept
        }));
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<boom@example.org>", 451);
    assert_eq!(&raw_cmd(&mut c, "RCPT TO:<b@example.net>")[..4], "503 ");
    c.expect("MAIL FROM:<a@example.org>", 250);
}

// A handler wrapping the built-in MAIL or RCPT that fails after the built-in said 250 (a
// post-accept hook that panics or returns an error): the client holds that 250, so the
// sender or recipient stands (RFC 5321 §4.1.1.2, §4.1.1.3). Dropping it would leave a
// recipient told 250 without the message, or turn every later RCPT into a permanent 503.
#[test]
fn a_handler_failing_after_its_250_keeps_what_it_accepted() {
    let ts = server_with(|s| {
        let mail = indy_smtp::CommandHandlers::builtin("MAIL").unwrap();
        s.command_handlers.add("MAIL", move |ctx, cmd| {
            mail(ctx, cmd)?;
            panic!("post-accept hook of MAIL");
        });
        let rcpt = indy_smtp::CommandHandlers::builtin("RCPT").unwrap();
        s.command_handlers.add("RCPT", move |ctx, cmd| {
            rcpt(ctx, cmd)?;
            match cmd.unparsed_params.as_str() {
                p if p.contains("late@") => panic!("post-accept hook of RCPT"),
                p if p.contains("audit@") => Err(std::io::Error::other("audit log").into()),
                _ => Ok(()),
            }
        });
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RCPT TO:<ok@example.net>", 250);
    c.expect("RCPT TO:<late@example.net>", 250);
    c.expect("RCPT TO:<audit@example.net>", 250);
    c.expect("DATA", 354);
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    let rcpts = &ts.messages()[0].rcpts;
    assert_eq!(
        rcpts,
        &["ok@example.net", "late@example.net", "audit@example.net"]
    );
}

// The same for a BDAT chunk that is not the last: its 250 says the chunk is kept (RFC 3030
// §2), so a wrapper failing after it leaves the transaction and the chunk in place.
#[test]
fn a_bdat_wrapper_failing_after_a_chunks_250_keeps_the_chunk() {
    let ts = server_with(|s| {
        let bdat = indy_smtp::CommandHandlers::builtin("BDAT").unwrap();
        s.command_handlers.add("BDAT", move |ctx, cmd| {
            bdat(ctx, cmd)?;
            match cmd.params.len() {
                1 => Err(std::io::Error::other("audit log").into()),
                _ => Ok(()),
            }
        });
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RCPT TO:<b@example.net>", 250);
    c.send(b"BDAT 12\r\nSubject: x\r\n");
    assert_eq!(c.read_reply().0, 250);
    c.send(b"BDAT 6 LAST\r\n\r\nbody");
    assert_eq!(c.read_reply().0, 250);
    assert_eq!(ts.messages()[0].data, b"Subject: x\r\n\r\nbody");
}

// A handler that adds a recipient and then returns an error of its own is undone like a
// panicking one: the client was told 451, so that recipient does not get the message.
#[test]
fn a_handler_error_before_any_reply_undoes_its_command() {
    let ts = server_with(|s| {
        s.command_handlers.add("RCPT", |ctx, cmd| {
            let args = cmd.unparsed_params.as_str();
            let rcpt = indy_smtp::address::parse_rcpt_to(args, false).unwrap();
            let failing = rcpt.address.starts_with("db@");
            ctx.thread.rcpt_list.push(rcpt);
            if failing {
                return Err(std::io::Error::other("database down").into());
            }
            ctx.reply(Reply::new(250, "ok"))
        });
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RCPT TO:<ok@example.net>", 250);
    c.expect("RCPT TO:<db@example.net>", 451);
    c.expect("DATA", 354);
    c.send(b"\r\nbody\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    assert_eq!(ts.messages()[0].rcpts, ["ok@example.net"]);
}

// Indy 9 fix 10 for errors: a command handler whose own I/O fails (`?` on a file) gets the
// client a 451 4.3.0 (RFC 5321 §4.2.2), is reported to on_exception, and keeps the session and
// its transaction; Indy 9 dropped the client without a reply. An error kind that also names a
// connection failure (a timeout of the handler's own) is the handler's too.
#[test]
fn command_handler_error_of_its_own_is_answered_451() {
    let errors: Log<String> = log();
    let e2 = Arc::clone(&errors);
    let ts = server_with(move |s| {
        s.command_handlers.add("XFILE", |ctx, _| {
            std::fs::read("/nonexistent/indy-smtp/help.txt")?;
            ctx.reply(Reply::new(250, "read"))
        });
        s.command_handlers.add("XSLOW", |_, _| {
            Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into())
        });
        s.on_exception = Some(Box::new(move |_, text| e2.lock().push(text.to_string())));
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    expect_raw(&mut c, "XFILE", "451 4.3.0 Local error in processing\r\n");
    expect_raw(&mut c, "XSLOW", "451 4.3.0 Local error in processing\r\n");
    c.expect("RCPT TO:<b@example.net>", 250);
    c.expect("DATA", 354);
    c.send(b"\r\nkept\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    let errors = errors.lock().clone();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("handler for XFILE failed: "),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("handler for XSLOW failed: "),
        "{errors:?}"
    );
    let msgs = ts.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].data, b"\r\nkept\r\n");
}

// A handler that has already answered and then fails (a wrapper around the built-in NOOP whose
// own audit step fails, a verb that panics after its reply) is reported, but the client gets
// no second reply: it would be read as the answer to its next command.
#[test]
fn a_handler_failing_after_its_reply_sends_no_second_one() {
    let errors: Log<String> = log();
    let e2 = Arc::clone(&errors);
    let ts = server_with(move |s| {
        let noop = indy_smtp::CommandHandlers::builtin("NOOP").unwrap();
        s.command_handlers.add("NOOP", move |ctx, cmd| {
            noop(ctx, cmd)?;
            std::fs::read("/nonexistent/indy-smtp/audit.log")?;
            Ok(())
        });
        s.command_handlers.add("XLATE", |ctx, _| {
            ctx.reply(Reply::new(250, "done"))?;
            panic!("after the reply");
        });
        s.on_exception = Some(Box::new(move |_, text| e2.lock().push(text.to_string())));
    });
    let mut c = ts.client();
    c.expect("EHLO client.example", 250);
    expect_raw(&mut c, "NOOP", "250 2.0.0 Ok\r\n");
    expect_raw(&mut c, "XLATE", "250 2.0.0 done\r\n");
    expect_raw(
        &mut c,
        "QUIT",
        "221 2.0.0 test.example closing connection\r\n",
    );
    let errors = errors.lock().clone();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("handler for NOOP failed: "),
        "{errors:?}"
    );
    assert_eq!(errors[1], "handler panicked: after the reply");
}

// `?` on an I/O error inside a receive event gives the client the temporary failure of RFC 5321
// §4.2.3 (451 4.3.0; 452 4.3.1 for a full disk), so it keeps the message and retries.
#[test]
fn receive_event_io_error_with_question_mark_is_a_temporary_failure() {
    let ts = server_with(|s| {
        let store = s.on_receive_raw.take().unwrap();
        s.on_receive_raw = Some(Box::new(move |thread, stream| {
            if thread.rcpt_addresses() == ["file@example.net"] {
                std::fs::File::open("/nonexistent/indy-smtp/spool")?;
            }
            store(thread, stream)
        }));
    });
    let mut c = ts.client();
    let (code, text) = c.send_mail("a@example.org", &["file@example.net"], b"\r\nx\r\n");
    assert_eq!(
        (code, text.as_str()),
        (
            451,
            "4.3.0 Requested action aborted: local error in processing"
        )
    );
    assert_eq!(
        c.send_mail("a@example.org", &["b@example.net"], b"\r\ny\r\n")
            .0,
        250
    );
    assert_eq!(ts.messages().len(), 1);
}

// The same for a panic inside on_receive_raw with a Memory stream: the data was read in full,
// so the session stays in step and goes on.
#[test]
fn panicking_receive_handler() {
    let errors = Arc::new(AtomicUsize::new(0));
    let e2 = Arc::clone(&errors);
    let ts = server_with(move |s| {
        let store = s.on_receive_raw.take().unwrap();
        s.on_receive_raw = Some(Box::new(move |thread, stream| {
            if thread.rcpt_addresses() == ["panic@example.net"] {
                panic!("receive handler failed");
            }
            store(thread, stream)
        }));
        s.on_exception = Some(Box::new(move |_, _| {
            e2.fetch_add(1, Ordering::SeqCst);
        }));
    });
    let mut c = ts.client();
    let (code, text) = c.send_mail("a@example.org", &["panic@example.net"], b"\r\nx\r\n");
    assert_eq!(
        (code, text.as_str()),
        (451, "4.3.0 Local error in processing")
    );
    expect_raw(&mut c, "NOOP", "250 2.0.0 Ok\r\n");
    expect_prefix(&mut c, "RCPT TO:<b@example.net>", "503 ");
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RCPT TO:<b@example.net>", 250);
    c.expect("DATA", 354);
    c.send(b"\r\nsecond\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    assert_eq!(errors.load(Ordering::SeqCst), 1);
    let msgs = ts.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].data, b"\r\nsecond\r\n");
}

// A panic while the handler reads the message live from the socket (Direct): the rest of the
// data cannot be skipped safely, so the client gets a 421 and the connection closes; the
// message is not delivered and the server goes on serving others.
#[test]
fn panicking_direct_receive_handler_ends_the_session_with_421() {
    let ts = server_with(|s| {
        s.raw_stream_type = indy_smtp::RawStreamType::Direct;
        s.on_receive_raw = Some(Box::new(|_, stream| {
            let mut first = [0u8; 4];
            std::io::Read::read_exact(stream, &mut first).map_err(indy_smtp::Reply::from)?;
            panic!("handler failed mid-message");
        }));
    });
    let mut c = ts.client();
    let (code, text) = c.send_mail(
        "a@example.org",
        &["b@example.net"],
        b"line one\r\nline two\r\n",
    );
    assert_eq!(code, 421, "{text}");
    assert!(c.is_closed());
    let mut other = ts.client();
    other.expect("NOOP", 250);
}
