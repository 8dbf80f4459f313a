//! Review 9b: defects in the session 9 changes, over real sockets (127.0.0.1, byte-exact).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::tls_client::{cert, server_config, TlsClient};
use common::{read_raw_reply, start, wait_until, Client};
use indy_smtp::Reply;

fn ehlo(c: &mut Client) {
    c.send(b"EHLO client.example\r\n");
    let r = read_raw_reply(c);
    assert!(r.starts_with("250"), "{r:?}");
}

/// RFC 6531 §3.7.4.2: "If the SMTPUTF8 parameter is transmitted with the VRFY and EXPN
/// commands, it indicates the SMTP client can accept UTF-8 strings in replies from the VRFY
/// and EXPN commands" (curl sends `VRFY Användaren SMTPUTF8`). An `on_command_vrfy` answering
/// such a VRFY with the UTF-8 mailbox had it sent as `?`s: it is outside a transaction, and
/// a handler has no other way to write a reply.
#[test]
fn vrfy_and_expn_with_smtputf8_may_answer_in_utf8() {
    let s = start(|srv| {
        srv.on_command_vrfy = Some(Arc::new(|ctx, command| {
            let utf8 = command
                .params
                .iter()
                .any(|p| p.eq_ignore_ascii_case("SMTPUTF8"));
            let text = if utf8 {
                "J\u{f6}rg <j\u{f6}rg@b\u{fc}cher.example>"
            } else {
                "Cannot VRFY"
            };
            ctx.reply(Reply::new(if utf8 { 250 } else { 252 }, text))
        }));
        srv.on_command_expn = Some(Arc::new(|ctx, _| {
            ctx.reply(Reply::new(250, "J\u{f6}rg <j\u{f6}rg@b\u{fc}cher.example>"))
        }));
    });
    let mut c = s.client();
    ehlo(&mut c);
    c.send("VRFY J\u{f6}rg SMTPUTF8\r\n".as_bytes());
    assert_eq!(
        read_raw_reply(&mut c),
        "250 2.0.0 J\u{f6}rg <j\u{f6}rg@b\u{fc}cher.example>\r\n"
    );
    c.send(b"EXPN list SMTPUTF8\r\n");
    assert_eq!(
        read_raw_reply(&mut c),
        "250 2.0.0 J\u{f6}rg <j\u{f6}rg@b\u{fc}cher.example>\r\n"
    );
    // Without the parameter the client said nothing of UTF-8: US-ASCII.
    c.send(b"EXPN list\r\n");
    assert_eq!(
        read_raw_reply(&mut c),
        "250 2.0.0 J?rg <j?rg@b?cher.example>\r\n"
    );
}

/// The reply to the message ends an SMTPUTF8 transaction and belongs to it (the doc of
/// `Context::reply`: "within a transaction whose MAIL carried SMTPUTF8 ... UTF-8 is kept"),
/// but it went out after the transaction was reset: a receive event's refusal naming the
/// client's UTF-8 mailbox reached it as `?`s, for DATA and for BDAT LAST alike.
#[test]
fn the_reply_to_the_message_of_an_smtputf8_transaction_keeps_utf8() {
    let s = start(|srv| {
        srv.on_receive_raw = Some(Box::new(|thread, _| {
            let to = thread.rcpt_addresses()[0].to_string();
            Err(Reply::new(552, format!("Mailbox <{to}> is full")).with_enhanced("5.2.2"))
        }));
    });
    let mut c = s.client();
    ehlo(&mut c);
    let to = "d\u{f6}rte@b\u{fc}cher.example";
    c.send(format!("MAIL FROM:<{to}> SMTPUTF8\r\nRCPT TO:<{to}>\r\nDATA\r\n").as_bytes());
    for _ in 0..2 {
        assert!(read_raw_reply(&mut c).starts_with("250 "));
    }
    assert!(read_raw_reply(&mut c).starts_with("354"));
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n");
    assert_eq!(
        read_raw_reply(&mut c),
        format!("552 5.2.2 Mailbox <{to}> is full\r\n")
    );
    c.send(
        format!("MAIL FROM:<{to}> SMTPUTF8\r\nRCPT TO:<{to}>\r\nBDAT 4 LAST\r\nabcd").as_bytes(),
    );
    for _ in 0..2 {
        assert!(read_raw_reply(&mut c).starts_with("250 "));
    }
    assert_eq!(
        read_raw_reply(&mut c),
        format!("552 5.2.2 Mailbox <{to}> is full\r\n")
    );
}

/// `login_needs_tls_first` takes "ehlo_keyword() is None" for "no mechanism is offered in
/// cleartext", but with `on_command_auth` and the application's own `AUTH ...` line in
/// `extensions.extra`, ehlo_keyword() is None while AUTH *is* offered in cleartext: MAIL then
/// told the client to STARTTLS, though it can log in right there.
#[test]
fn auth_mode_with_the_applications_own_auth_line_asks_for_a_login_not_starttls() {
    let certificate = cert();
    let s = start(|srv| {
        srv.tls = Some(server_config(&certificate));
        srv.auth_mode = true;
        srv.extensions.extra.push("AUTH X-TOKEN".into());
        srv.on_command_auth = Some(Arc::new(|ctx, _| {
            ctx.thread.logged_in = true;
            ctx.reply(Reply::new(235, "ok"))
        }));
    });
    let mut c = s.client();
    let ehlo = c.expect("EHLO client.example", 250);
    assert!(ehlo.contains("AUTH X-TOKEN"), "{ehlo}");
    let (code, text) = c.cmd("MAIL FROM:<a@example.com>");
    assert_eq!(
        (code, text.as_str()),
        (530, "5.7.0 Authentication required"),
        "AUTH X-TOKEN is offered in cleartext"
    );
    assert_eq!(c.cmd("AUTH X-TOKEN abc").0, 235);
    c.expect("MAIL FROM:<a@example.com>", 250);
}

/// Refused (554) sessions with parking: the wait for QUIT is parked, pipelined commands sent
/// before the 554 was read each get their 503, and stop() answers a parked refused client
/// 421 and ends it once (on_disconnect).
#[test]
fn a_refused_session_parks_answers_pipelined_commands_and_stops() {
    let disconnects = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&disconnects);
    let s = start(move |srv| {
        srv.limits.max_bad_commands = 10;
        srv.on_connect = Some(Box::new(|_| Err(Reply::new(554, "blocked"))));
        srv.on_disconnect = Some(Box::new(move |_| {
            d.fetch_add(1, Ordering::SeqCst);
        }));
    });
    let mut c = Client::connect_silent(s.addr);
    c.send(b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    assert_eq!(c.read_line(), "554 blocked\r\n");
    for _ in 0..4 {
        let l = c.read_line();
        assert!(l.starts_with("503 "), "{l:?}");
    }
    let mut other = Client::connect_silent(s.addr);
    assert_eq!(other.read_line(), "554 blocked\r\n");
    std::thread::sleep(Duration::from_millis(100));
    s.handle.stop();
    assert!(c.read_line().starts_with("421 "));
    assert!(other.read_line().starts_with("421 "));
    assert!(c.is_closed() && other.is_closed());
    assert!(wait_until(|| disconnects.load(Ordering::SeqCst) == 2));
}

/// on_connect on an implicit-TLS listener: the 554 comes over TLS, then 503 until QUIT.
#[test]
fn a_refused_implicit_tls_session_waits_for_quit_over_tls() {
    let certificate = cert();
    let mut server = indy_smtp::SmtpServer::new();
    server.bindings = vec![];
    server.tls_bindings = vec!["127.0.0.1:0".parse().unwrap()];
    server.tls = Some(server_config(&certificate));
    server.on_receive_raw = Some(Box::new(|_, _| Ok(())));
    server.on_connect = Some(Box::new(|_| Err(Reply::new(554, "blocked"))));
    let handle = server.start().unwrap();
    let (mut tls, greeting) = TlsClient::connect_implicit(handle.local_addr(), &[&certificate]);
    assert_eq!(greeting, (554, "blocked".to_string()));
    assert_eq!(tls.cmd("EHLO x").0, 503);
    assert_eq!(tls.cmd("STARTTLS").0, 503);
    assert_eq!(tls.cmd("QUIT").0, 221);
    handle.stop();
}

/// stop_for_restart right after start, with parking off, with a pool of 0, and with a parked
/// session open: the server comes back each time and serves again (a new epoll set).
#[test]
fn stop_for_restart_in_every_threading_setup() {
    for (park, pool) in [(true, 0), (false, 4), (true, 32), (false, 0)] {
        let first = start(|srv| {
            srv.park_idle_sessions = park;
            srv.thread_pool_size = pool;
        });
        let addr = first.addr;
        let server = first.handle.stop_for_restart().expect("right after start");
        let handle = server.start().expect("second start");
        let mut idle = Client::connect(handle.local_addr());
        idle.expect("EHLO x", 250);
        std::thread::sleep(Duration::from_millis(50));
        let mut server = handle.stop_for_restart().expect("with a parked session");
        assert!(idle.read_reply().0 == 421);
        server.bindings = vec![addr];
        let handle = server.start().expect("third start");
        for _ in 0..3 {
            let mut c = Client::connect(handle.local_addr());
            let (code, text) = c.send_mail("a@b.example", &["c@d.example"], b"x\r\n");
            assert_eq!(code, 250, "{text}");
            c.expect("NOOP", 250);
        }
        handle.stop_for_restart().expect("after traffic");
    }
}
