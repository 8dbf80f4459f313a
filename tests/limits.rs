//! Limits, timeouts and hostile input over real sockets (issue 3): line length, recipients,
//! bad commands, RFC 5321 §4.5.3.2 timeouts, minimum data rate, pre-greeting talk, bare LF,
//! NUL / 8-bit bytes, HTTP probes, disconnects mid-DATA and the DATA text line limit.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{codes, replies, start, Client, TestServer};
use indy_smtp::{BareNewlinePolicy, SmtpServer};

fn ehlo(c: &mut Client) {
    c.expect("EHLO client.example", 250);
}

/// Polls `cond` for up to 10 s (a session ends asynchronously after the client left).
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// A test server that counts finished sessions.
fn start_counting(configure: impl FnOnce(&mut SmtpServer)) -> (TestServer, Arc<AtomicUsize>) {
    let ended = Arc::new(AtomicUsize::new(0));
    let e = Arc::clone(&ended);
    let s = start(move |srv| {
        srv.on_disconnect = Some(Box::new(move |_| {
            e.fetch_add(1, Ordering::SeqCst);
        }));
        configure(srv);
    });
    (s, ended)
}

/// Sends `bytes` one at a time every `gap` from a thread until `stop` is set or a write
/// fails; returns how many were written.
fn trickle(
    c: &Client,
    bytes: Vec<u8>,
    gap: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    let mut w = c.writer.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut sent = 0;
        for b in bytes {
            if stop.load(Ordering::SeqCst) || w.write_all(&[b]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(gap);
        }
        sent
    })
}

// ---- Command line length (RFC 5321 §4.5.3.1.4, §4.5.3.1.10 "500 Line too long") ----

#[test]
fn long_line_answered_before_its_newline_and_skipped() {
    let s = start(|srv| srv.limits.max_line_length = 512);
    let mut c = s.client();
    ehlo(&mut c);
    c.send(&[b'A'; 600]);
    // No LF sent yet: the reply must come anyway (read_reply has a 10 s timeout).
    let (code, text) = c.read_reply();
    assert_eq!((code, text.as_str()), (500, "5.5.6 Line too long"));
    c.send(b"more of the same line\r\nNOOP\r\nVRFY postmaster\r\n");
    assert_eq!(
        c.read_reply().0,
        250,
        "the tail of the long line gets no reply"
    );
    assert_eq!(c.read_reply().0, 252);
    // 510 octets + CRLF = 512: still fine.
    let ok = format!("NOOP {}", "x".repeat(505));
    assert_eq!(c.cmd(&ok).0, 250);
    assert_eq!(c.cmd(&format!("{ok}x")).0, 500);
}

#[test]
fn ten_megabyte_line_is_discarded_while_streaming() {
    let s = start(|srv| srv.limits.max_line_length = 512);
    let mut c = s.client();
    ehlo(&mut c);
    let mut w = c.writer.try_clone().unwrap();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let chunk = vec![b'Z'; 64 * 1024];
        for _ in 0..160 {
            w.write_all(&chunk)?;
        }
        w.write_all(b"\r\nNOOP\r\n")
    });
    let (code, text) = c.read_reply();
    assert_eq!((code, text.as_str()), (500, "5.5.6 Line too long"));
    assert_eq!(
        c.read_reply().0,
        250,
        "the session survives and answers the NOOP"
    );
    writer
        .join()
        .unwrap()
        .expect("the server kept reading the whole line");
    assert_eq!(c.cmd("QUIT").0, 221);
}

// ---- Recipients (RFC 5321 §4.5.3.1.8, §4.5.3.1.10: 452 4.5.3) ----

#[test]
fn fourth_recipient_over_a_limit_of_three() {
    let s = start(|srv| srv.limits.max_recipients = 3);
    let mut c = s.client();
    ehlo(&mut c);
    c.expect("MAIL FROM:<a@b>", 250);
    for i in 0..3 {
        c.expect(&format!("RCPT TO:<r{i}@x>"), 250);
    }
    let t = c.expect("RCPT TO:<r3@x>", 452);
    assert!(t.starts_with("4.5.3"), "{t}");
    c.expect("DATA", 354);
    c.send(b"x\r\n.\r\n");
    assert_eq!(c.read_reply().0, 250);
    assert_eq!(s.messages()[0].rcpts, ["r0@x", "r1@x", "r2@x"]);
}

// ---- Bad commands (N errors → 421 4.7.0 and close) ----

#[test]
fn too_many_bad_commands_close_the_session() {
    let s = start(|srv| srv.limits.max_bad_commands = 3);
    let mut c = s.client();
    ehlo(&mut c);
    c.expect("XYZZY", 500);
    c.expect("MAIL FROM:<a b@c>", 501);
    assert_eq!(c.cmd("PLUGH").0, 500);
    let (code, text) = c.read_reply();
    assert_eq!(code, 421);
    assert!(text.starts_with("4.7.0"), "{text}");
    assert!(c.is_closed());
}

/// RFC 2920 §3.1: MAIL, any number of RCPT and DATA may travel in one group. When the MAIL is
/// refused (here by SIZE, RFC 1870 §6), every RCPT and the DATA get 503; those are no fault of
/// the client and must not use up `max_bad_commands`, or the session would end mid-group.
#[test]
fn pipelined_group_after_a_refused_mail_is_not_counted_as_bad_commands() {
    let s = start(|srv| {
        srv.limits.max_bad_commands = 3;
        srv.limits.max_message_size = 1000;
    });
    let mut c = s.client();
    ehlo(&mut c);
    let mut group = String::from("MAIL FROM:<a@b.test> SIZE=5000\r\n");
    for i in 0..12 {
        group.push_str(&format!("RCPT TO:<r{i}@y.test>\r\n"));
    }
    group.push_str("DATA\r\n");
    c.send(group.as_bytes());
    let got = codes(&replies(&mut c, 14));
    assert_eq!(got[0], 552, "{got:?}");
    assert!(got[1..].iter().all(|&code| code == 503), "{got:?}");
    // The session is still there, and a real error still counts.
    c.expect("MAIL FROM:<a@b.test>", 250);
    c.expect("XYZZY", 500);
}

/// 0 means unlimited, as for the other counts: twenty bad commands and failed logins later
/// the session still answers.
#[test]
fn zero_bad_command_and_auth_failure_limits_mean_unlimited() {
    let s = start(|srv| {
        srv.limits.max_bad_commands = 0;
        srv.limits.max_auth_failures = 0;
        srv.check_user = Some(Box::new(|_, _, _| false));
    });
    let mut c = s.client();
    ehlo(&mut c);
    for _ in 0..20 {
        c.expect("XYZZY", 500);
        // AUTH PLAIN with the initial response "\0u\0p": refused by check_user.
        c.expect("AUTH PLAIN AHUAcA==", 535);
    }
    c.expect("NOOP", 250);
}

// ---- Timeouts (RFC 5321 §4.5.3.2: 421 4.4.2 and close) ----

#[test]
fn command_timeout_closes_with_421() {
    let s = start(|srv| srv.limits.command_timeout = Duration::from_secs(1));
    let mut c = s.client();
    ehlo(&mut c);
    let (code, text) = c.read_reply();
    assert_eq!(code, 421);
    assert!(text.starts_with("4.4.2"), "{text}");
    assert!(c.is_closed());
}

#[test]
fn command_trickled_a_byte_at_a_time_still_times_out() {
    // The command timeout bounds the whole line, or one byte per second would hold the
    // thread forever.
    let s = start(|srv| srv.limits.command_timeout = Duration::from_secs(1));
    let mut c = s.client();
    ehlo(&mut c);
    let stop = Arc::new(AtomicBool::new(false));
    let t = trickle(
        &c,
        b"NOOP ".repeat(20),
        Duration::from_millis(300),
        Arc::clone(&stop),
    );
    let (code, text) = c.read_reply();
    stop.store(true, Ordering::SeqCst);
    assert_eq!(code, 421, "{text}");
    assert!(text.starts_with("4.4.2"), "{text}");
    assert!(t.join().unwrap() < 100, "closed before the client finished");
}

#[test]
fn data_timeout_mid_data_closes_and_delivers_nothing() {
    let (s, ended) = start_counting(|srv| srv.limits.data_timeout = Duration::from_secs(1));
    let mut c = s.client();
    ehlo(&mut c);
    c.expect("MAIL FROM:<a@b>", 250);
    c.expect("RCPT TO:<c@d>", 250);
    c.expect("DATA", 354);
    c.send(b"Subject: half\r\n\r\nno end");
    let (code, text) = c.read_reply();
    assert_eq!(code, 421);
    assert!(text.starts_with("4.4.2"), "{text}");
    assert!(c.is_closed());
    wait_until("the session to end", || ended.load(Ordering::SeqCst) == 1);
    assert!(s.messages().is_empty());
}

// ---- Minimum data rate (Postfix smtpd_min_data_rate) ----

/// A server with a 1 s data timeout and a 1000 B/s minimum rate, and a client after DATA's 354.
fn in_data_at_min_rate() -> (TestServer, Client) {
    let s = start(|srv| {
        srv.limits.data_timeout = Duration::from_secs(1);
        srv.limits.min_data_rate = 1000;
    });
    let mut c = s.client();
    ehlo(&mut c);
    c.expect("MAIL FROM:<a@b>", 250);
    c.expect("RCPT TO:<c@d>", 250);
    c.expect("DATA", 354);
    (s, c)
}

/// The trickle's 421 4.4.2 (RFC 5321 §4.5.3.2) and how many bytes it sent before it.
fn cut_off(c: &mut Client, stop: &AtomicBool, trickle: std::thread::JoinHandle<usize>) -> usize {
    let (code, text) = c.read_reply();
    stop.store(true, Ordering::SeqCst);
    assert_eq!(code, 421, "{text}");
    assert!(text.starts_with("4.4.2"), "{text}");
    trickle.join().unwrap()
}

#[test]
fn trickling_data_is_cut_off() {
    let (s, mut c) = in_data_at_min_rate();
    let stop = Arc::new(AtomicBool::new(false));
    let mut body = vec![b'x'; 200];
    body.extend_from_slice(b"\r\n.\r\n");
    let t = trickle(&c, body, Duration::from_millis(100), Arc::clone(&stop));
    assert!(
        cut_off(&mut c, &stop, t) < 200,
        "cut off well before the end"
    );
    assert!(s.messages().is_empty());
}

/// Postfix's rule: the data's deadline is never more than one `data_timeout` away, so 100 KB
/// sent at once (100 s of credit at 1000 B/s) buys no long trickle afterwards. One byte every
/// 300 ms is cut off within about a second, not after the 100 s the old average allowed.
#[test]
fn a_fast_start_does_not_buy_a_long_trickle() {
    let (s, mut c) = in_data_at_min_rate();
    let mut fast = b"Subject: fast\r\n\r\n".to_vec();
    fast.extend(
        std::iter::repeat_n(b"0123456789abcdef0123456789abcdef\r\n".as_slice(), 3000).flatten(),
    );
    c.send(&fast);
    let stop = Arc::new(AtomicBool::new(false));
    let t = trickle(
        &c,
        vec![b'x'; 40],
        Duration::from_millis(300),
        Arc::clone(&stop),
    );
    let sent = cut_off(&mut c, &stop, t);
    assert!(sent < 20, "cut off within a few trickled bytes");
    assert!(s.messages().is_empty());
}

#[test]
fn trickling_bdat_chunk_is_cut_off() {
    let s = start(|srv| {
        srv.limits.data_timeout = Duration::from_secs(1);
        srv.limits.min_data_rate = 1000;
    });
    let mut c = s.client();
    ehlo(&mut c);
    c.expect("MAIL FROM:<a@b>", 250);
    c.expect("RCPT TO:<c@d>", 250);
    c.send(b"BDAT 200 LAST\r\n");
    let stop = Arc::new(AtomicBool::new(false));
    let t = trickle(
        &c,
        vec![b'y'; 200],
        Duration::from_millis(100),
        Arc::clone(&stop),
    );
    assert!(
        cut_off(&mut c, &stop, t) < 200,
        "cut off well before the end"
    );
    assert!(s.messages().is_empty());
}

// ---- Pre-greeting talk (RFC 5321 §4.3.1: the client waits for the 220) ----

#[test]
fn client_talking_before_the_greeting_is_refused() {
    let s = start(|srv| srv.limits.greeting_delay = Some(Duration::from_millis(500)));
    let mut c = Client::connect_silent(s.addr);
    c.send(b"EHLO eager.example\r\n");
    let (code, _) = c.read_reply();
    assert_eq!(code, 554);
    assert!(c.is_closed());
    let mut patient = s.client();
    assert_eq!(patient.greeting.0, 220);
    ehlo(&mut patient);
}

// ---- Bare LF in commands (RFC 5321 §2.3.8; the configured policy) ----

#[test]
fn bare_lf_in_commands_follows_the_policy() {
    let s = start(|_| {});
    let mut c = s.client();
    c.send(b"EHLO client.example\nNOOP\nVRFY postmaster\r\n");
    assert_eq!(c.read_reply().0, 250);
    assert_eq!(
        c.read_reply().0,
        250,
        "Normalize: a bare LF ends the command"
    );
    assert_eq!(c.read_reply().0, 252);

    let s = start(|srv| srv.bare_newline_policy = BareNewlinePolicy::Reject);
    let mut c = s.client();
    ehlo(&mut c);
    c.send(b"NOOP\n");
    assert_eq!(c.read_reply().0, 500, "Reject: a bare LF is refused");
    assert_eq!(c.cmd("NOOP").0, 250);
}

// ---- NUL, invalid UTF-8 and 8-bit bytes in commands (RFC 5321 §2.3.8, RFC 6531 §3.3) ----

#[test]
fn nul_and_eight_bit_bytes_get_an_error_and_the_session_lives() {
    let s = start(|_| {});
    let mut c = s.client();
    ehlo(&mut c);
    let hostile: [&[u8]; 6] = [
        b"NO\x00OP\r\n",
        b"\x00\r\n",
        b"HELO caf\xe9.example\r\n",
        b"\x80\x81\xfe\xff\r\n",
        b"VRFY \xc3\r\n",
        b"MAIL FROM:<j\xc3\xb6rg@example.com>\r\n",
    ];
    for line in hostile {
        c.send(line);
        let (code, text) = c.read_reply();
        assert!(
            (500..600).contains(&code),
            "{line:?} answered {code} {text}"
        );
        assert_eq!(c.cmd("NOOP").0, 250, "after {line:?}");
    }
}

// ---- HTTP probes: 421 and close ----

#[test]
fn http_request_is_answered_421_and_closed() {
    let s = start(|_| {});
    let mut c = s.client();
    c.send(b"GET / HTTP/1.1\r\nHost: mx.example\r\n\r\n");
    assert_eq!(c.read_reply().0, 421);
    assert!(c.is_closed());
    // After EHLO the reply carries exactly one enhanced status code.
    let mut c = s.client();
    ehlo(&mut c);
    let (code, text) = c.cmd("POST /form HTTP/1.0");
    assert_eq!(code, 421);
    assert!(
        text.starts_with("4.7.0 ") && !text[6..].starts_with("4."),
        "{text}"
    );
    assert!(c.is_closed());
}

// ---- Disconnect mid-DATA: nothing delivered, the server goes on ----

#[test]
fn disconnect_mid_data_delivers_nothing() {
    let (s, ended) = start_counting(|_| {});
    let mut c = s.client();
    ehlo(&mut c);
    c.expect("MAIL FROM:<a@b>", 250);
    c.expect("RCPT TO:<c@d>", 250);
    c.expect("DATA", 354);
    c.send(b"Subject: cut\r\n\r\nhalf a message\r\n.");
    drop(c);
    wait_until("the session to end", || ended.load(Ordering::SeqCst) == 1);
    assert!(s.messages().is_empty());
    let mut c = s.client();
    assert_eq!(c.send_mail("a@b", &["c@d"], b"whole\r\n").0, 250);
    assert_eq!(s.messages().len(), 1);
}

// ---- DATA text line limit (RFC 5321 §4.5.3.1.6: 1000 octets incl. CRLF) ----

#[test]
fn data_line_over_the_limit_refuses_the_message() {
    let s = start(|srv| srv.limits.max_data_line_length = Some(1000));
    let mut c = s.client();
    let fits = format!("Subject: ok\r\n\r\n{}\r\n", "a".repeat(998));
    assert_eq!(c.send_mail("a@b", &["c@d"], fits.as_bytes()).0, 250);
    c.expect("MAIL FROM:<a@b>", 250);
    c.expect("RCPT TO:<c@d>", 250);
    c.expect("DATA", 354);
    let long = format!("Subject: long\r\n\r\n{}\r\nafter\r\n.\r\n", "b".repeat(999));
    c.send(long.as_bytes());
    let (code, text) = c.read_reply();
    assert_eq!((code, text.as_str()), (550, "5.6.0 Line too long"));
    assert_eq!(
        c.cmd("NOOP").0,
        250,
        "one reply, read to the end, session goes on"
    );
    let m = s.messages();
    assert_eq!(m.len(), 1);
    assert!(m[0].data.starts_with(b"Subject: ok"));
}

/// `Duration::MAX` as a timeout means "never" (a deadline ten years away), not an `Instant`
/// overflow: the session, a second client and a graceful stop all work with it.
#[test]
fn maximal_timeouts_do_not_overflow() {
    let s = start(|srv| {
        srv.limits.command_timeout = Duration::MAX;
        srv.limits.data_timeout = Duration::MAX;
        srv.stop_timeout = Duration::MAX;
    });
    for _ in 0..2 {
        let mut c = s.client();
        let (code, _) = c.send_mail("a@b.example", &["r@x.example"], b"Subject: t\r\n\r\nhi\r\n");
        assert_eq!(code, 250);
    }
    assert_eq!(s.messages().len(), 2);
    // An idle session is answered and closed at once by the stop, however long the timeout.
    let mut idle = s.client();
    idle.expect("EHLO client.example", 250);
    s.handle.stop();
    assert_eq!(idle.read_reply().0, 421);
}

// Every reply text of `messages` fills in `%h`, those sent for a limit or a local error too.
#[test]
fn limit_and_error_texts_fill_in_the_host_name() {
    let ts = start(|s| {
        s.limits.max_message_size = 100;
        s.limits.max_line_length = 512;
        s.messages.line_too_long = "%h: line too long".into();
        s.messages.message_too_large = "%h: too big".into();
        s.messages.local_error = "%h: local error".into();
        s.command_handlers
            .add("XFAIL", |_, _| Err(std::io::Error::other("disk").into()));
    });
    let mut c = ts.client();
    ehlo(&mut c);
    let line = format!("NOOP {}", "x".repeat(600));
    let (code, text) = c.cmd(&line);
    assert_eq!(
        (code, text.as_str()),
        (500, "5.5.6 test.example: line too long")
    );
    let (code, text) = c.cmd("XFAIL");
    assert_eq!(
        (code, text.as_str()),
        (451, "4.3.0 test.example: local error")
    );
    c.expect("MAIL FROM:<a@b.example>", 250);
    c.expect("RCPT TO:<c@d.example>", 250);
    c.expect("DATA", 354);
    c.send(&[b"x".repeat(200).as_slice(), b"\r\n.\r\n"].concat());
    let (code, text) = c.read_reply();
    assert_eq!((code, text.as_str()), (552, "5.3.4 test.example: too big"));
}
