//! Server lifecycle over real loopback sockets (issue 2 items 3 and 6, issue 3 limits):
//! start-up errors, connection limits, graceful stop, the session thread's fields, the thread
//! stack size and many concurrent `lettre` clients.
mod common;

use std::collections::HashSet;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{start, Client, TestServer};
use indy_smtp::{Error, ReceiveMode, Reply, ServerHandle, SmtpServer};
use lettre::{Message, SmtpTransport, Transport};
use parking_lot::Mutex;

/// A loopback address nothing listens on right now.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// True when nothing listens on `addr`: we can bind it ourselves.
fn not_listening(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

fn with_raw_handler(s: &mut SmtpServer) {
    s.on_receive_raw = Some(Box::new(|_, _| Ok(())));
}

// --- start() refuses a configuration that cannot work, before listening (issue 2 item 6) ---

/// Indy 9 raised EIdTCPServerError only after sending 354; here start() fails with the mode,
/// even when the events of the other modes are assigned.
#[test]
fn start_without_the_receive_handler_of_the_mode_fails() {
    for mode in [
        ReceiveMode::Raw,
        ReceiveMode::Message,
        ReceiveMode::MessageParsed,
    ] {
        let addr = free_addr();
        let mut s = SmtpServer::new();
        s.bindings = vec![addr];
        s.receive_mode = mode;
        if mode != ReceiveMode::Raw {
            with_raw_handler(&mut s);
        }
        if mode != ReceiveMode::Message {
            s.on_receive_message = Some(Box::new(|_, _| Ok(())));
        }
        if mode != ReceiveMode::MessageParsed {
            s.on_receive_message_parsed = Some(Box::new(|_, _| Ok(())));
        }
        match s.start() {
            Err(Error::NoReceiveHandler(m)) => assert_eq!(m, mode),
            other => panic!("{mode:?}: {other:?}"),
        }
        assert!(not_listening(addr), "{mode:?}: started listening anyway");
    }
}

/// auth_mode with nothing to check a login would accept everyone (an open relay by accident).
#[test]
fn start_auth_mode_without_credential_check_fails() {
    let addr = free_addr();
    let mut s = SmtpServer::new();
    s.bindings = vec![addr];
    s.auth_mode = true;
    with_raw_handler(&mut s);
    assert!(matches!(s.start(), Err(Error::NoCredentialCheck)));
    assert!(not_listening(addr));

    let mut s = SmtpServer::new();
    s.bindings = vec![free_addr()];
    s.auth_mode = true;
    s.check_user = Some(Box::new(|_, user, pass| user == "u" && pass == "p"));
    with_raw_handler(&mut s);
    s.start().expect("a check_user is enough").stop();

    // An AUTH put into the table in place of the built-in one checks logins itself.
    let mut s = SmtpServer::new();
    s.bindings = vec![free_addr()];
    s.auth_mode = true;
    s.command_handlers
        .add("AUTH", |ctx, _| ctx.reply(Reply::new(535, "no")));
    with_raw_handler(&mut s);
    s.start().expect("a replaced AUTH is enough").stop();
}

/// RFC 3207 §4: require_tls without a TLS configuration could never accept any mail.
#[test]
fn start_require_tls_or_tls_binding_without_tls_config_fails() {
    let mut s = SmtpServer::new();
    s.bindings = vec![free_addr()];
    s.require_tls = true;
    with_raw_handler(&mut s);
    assert!(matches!(s.start(), Err(Error::NoTlsConfig)));

    let mut s = SmtpServer::new();
    s.bindings = vec![free_addr()];
    s.tls_bindings = vec![free_addr()];
    with_raw_handler(&mut s);
    assert!(matches!(s.start(), Err(Error::NoTlsConfig)));
}

/// RFC 5321 §4.5.3.1.4: a server must take command lines of 512 octets; a smaller limit
/// would refuse ordinary commands, so `start()` refuses it.
#[test]
fn start_with_a_command_line_limit_under_512_fails() {
    let addr = free_addr();
    let mut s = SmtpServer::new();
    s.bindings = vec![addr];
    s.limits.max_line_length = 511;
    with_raw_handler(&mut s);
    assert!(matches!(s.start(), Err(Error::LineLimitTooSmall(511))));
    assert!(not_listening(addr));
    let mut s = SmtpServer::new();
    s.bindings = vec![free_addr()];
    s.limits.max_line_length = 512;
    with_raw_handler(&mut s);
    s.start().expect("512 is allowed").stop();
}

/// RFC 5321 §4.1.1: a verb is a keyword. A handler added under anything else (here with the
/// argument glued on) could never run, as such a line is answered 500 before any lookup; the
/// mistake is reported by `start()` instead of silently ignored.
#[test]
fn start_with_a_handler_no_command_can_name_fails() {
    for bad in ["MAIL FROM", "X_PING", ""] {
        let addr = free_addr();
        let mut s = SmtpServer::new();
        s.bindings = vec![addr];
        with_raw_handler(&mut s);
        s.command_handlers
            .add(bad, |ctx, _| ctx.reply(Reply::new(250, "x")));
        match s.start() {
            Err(Error::BadVerb(verb)) => assert_eq!(verb, bad),
            other => panic!("{bad:?}: expected BadVerb, got {other:?}"),
        }
        assert!(not_listening(addr));
    }
    let mut s = SmtpServer::new();
    s.bindings = vec![free_addr()];
    with_raw_handler(&mut s);
    s.command_handlers
        .add("x-ping2", |ctx, _| ctx.reply(Reply::new(250, "x")));
    s.start().expect("a keyword verb is fine").stop();
}

#[test]
fn start_on_an_address_in_use_fails_with_bind() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let free = free_addr();
    let mut s = SmtpServer::new();
    // The free address first: it must not stay bound when the second fails.
    s.bindings = vec![free, addr];
    with_raw_handler(&mut s);
    match s.start() {
        Err(Error::Bind { addr: a, source }) => {
            assert_eq!(a, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("{other:?}"),
    }
    assert!(not_listening(free), "the first binding was left open");
}

// --- Connection limits (Indy's MaxConnections; issue 3 per-IP limit; RFC 5321 §3.1 421) ---

/// Connects from `src` (any 127/8 address works on Linux loopback) and returns the first line.
fn connect_from(src: IpAddr, to: SocketAddr) -> (Client, String) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::new(src, 0).into())
        .expect("bind source address");
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .expect("connect");
    let mut c = Client::from_stream(socket.into());
    let line = c.read_line();
    (c, line)
}

/// True when the server closed the connection (EOF or reset) rather than leaving it open.
fn closed(c: &mut Client) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match c.reader.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn refused(c: &mut Client, first_line: &str) {
    // RFC 5321 §3.8: "421 <domain> ...", with no enhanced code before EHLO (RFC 2034 §3).
    assert!(
        first_line.starts_with("421 test.example Too many connections"),
        "expected 421, got {first_line:?}"
    );
    assert!(closed(c), "a refused connection stays open");
}

/// Connects until the server greets (sessions are counted out only after their thread ends).
fn admitted(addr: SocketAddr) -> Client {
    for _ in 0..200 {
        let mut c = Client::connect_silent(addr);
        let line = c.read_line();
        if line.starts_with("220 ") {
            c.greeting = (220, line);
            return c;
        }
        assert!(line.starts_with("421 "), "{line:?}");
        thread::sleep(Duration::from_millis(25));
    }
    panic!("no connection admitted after a session ended");
}

/// Two sessions work, the third gets 421 and is closed, a slot freed by QUIT is reused.
fn two_allowed_then_421(server: &TestServer) {
    let local = IpAddr::from([127, 0, 0, 1]);
    let mut c1 = server.client();
    let mut c2 = server.client();
    assert_eq!((c1.greeting.0, c2.greeting.0), (220, 220));
    let (mut c3, line) = connect_from(local, server.addr);
    refused(&mut c3, &line);
    assert_eq!(
        c1.send_mail("a@example.org", &["b@example.com"], b"one\r\n")
            .0,
        250
    );
    assert_eq!(
        c2.send_mail("a@example.org", &["b@example.com"], b"two\r\n")
            .0,
        250
    );
    c1.expect("QUIT", 221);
    assert!(closed(&mut c1));
    let mut c4 = admitted(server.addr);
    assert_eq!(
        c4.send_mail("a@example.org", &["b@example.com"], b"four\r\n")
            .0,
        250
    );
    let (mut c5, line) = connect_from(local, server.addr);
    refused(&mut c5, &line);
    c2.expect("NOOP", 250);
    assert_eq!(server.messages().len(), 3);
}

#[test]
fn max_connections_refuses_the_third_with_421() {
    let server = start(|s| s.max_connections = 2);
    two_allowed_then_421(&server);
}

#[test]
fn max_connections_per_ip_refuses_the_third_from_one_ip_only() {
    let server = start(|s| s.limits.max_connections_per_ip = 2);
    two_allowed_then_421(&server);
    // 127.0.0.1 is full; another address is still served.
    let (mut other, line) = connect_from(IpAddr::from([127, 0, 0, 2]), server.addr);
    assert!(line.starts_with("220 "), "{line:?}");
    other.expect("EHLO other.example", 250);
}

// --- Graceful stop (issue 2 item 6; RFC 5321 §3.8: 421 when the service shuts down) ---

/// Runs `stop` (or drop) on another thread and returns a channel that reports when it returned.
fn stop_in_thread(handle: ServerHandle, by_drop: bool) -> crossbeam_channel::Receiver<()> {
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        if by_drop {
            drop(handle);
        } else {
            handle.stop();
        }
        let _ = done_tx.send(());
    });
    done_rx
}

fn expect_shutting_down(c: &mut Client) {
    let (code, text) = c.read_reply();
    assert_eq!(code, 421, "{text}");
    assert!(text.starts_with("4.3.2 "), "{text}");
    assert!(closed(c), "not closed after 421");
}

/// A is idle: 421 4.3.2 and close at once. B is mid-DATA: it may finish (250), then gets 421.
#[test]
fn stop_closes_idle_sessions_and_lets_transactions_finish() {
    let TestServer {
        handle,
        addr,
        inbox,
    } = start(|_| {});
    let mut a = Client::connect(addr);
    a.expect("EHLO a.example", 250);
    let mut b = Client::connect(addr);
    b.expect("EHLO b.example", 250);
    b.expect("MAIL FROM:<b@example.org>", 250);
    b.expect("RCPT TO:<c@example.com>", 250);
    b.expect("DATA", 354);
    b.send(b"Subject: in flight\r\n\r\npart one\r\n");
    let done = stop_in_thread(handle, false);
    // A's 421 proves the stop is under way before B finishes.
    expect_shutting_down(&mut a);
    b.send(b"part two\r\n.\r\n");
    assert_eq!(b.read_reply().0, 250);
    expect_shutting_down(&mut b);
    done.recv_timeout(Duration::from_secs(20))
        .expect("stop() returned");
    let delivered = inbox.lock().clone();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].data,
        b"Subject: in flight\r\n\r\npart one\r\npart two\r\n"
    );
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "still accepting"
    );
}

/// A client stuck mid-DATA past stop_timeout is closed, nothing is delivered, stop() returns.
#[test]
fn stop_closes_a_stuck_transaction_after_stop_timeout() {
    let TestServer {
        handle,
        addr,
        inbox,
    } = start(|s| {
        s.stop_timeout = Duration::from_secs(1);
        // Far beyond the bounded wait below: only stop_timeout can end the session in time.
        s.limits.data_timeout = Duration::from_secs(300);
        s.limits.command_timeout = Duration::from_secs(300);
        s.limits.min_data_rate = 0;
    });
    let mut c = Client::connect(addr);
    c.expect("EHLO stuck.example", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RCPT TO:<b@example.com>", 250);
    c.expect("DATA", 354);
    c.send(b"Subject: stuck\r\n\r\npartial");
    let done = stop_in_thread(handle, false);
    done.recv_timeout(Duration::from_secs(60))
        .expect("stop() returned");
    // RFC 5321 §3.8: the server says 421 before it closes, even to a client mid-DATA.
    expect_shutting_down(&mut c);
    assert!(inbox.lock().is_empty(), "a partial message was delivered");
}

/// Outside a transaction nothing is in flight, so stop does not wait `stop_timeout` for a
/// client halfway through an AUTH exchange: it gets its 421 at once (the client's 10 s read
/// timeout is far below the minute of `stop_timeout` and `command_timeout`). A slow command
/// outside a transaction (a MAIL check taking a while) still sends its reply before the 421.
#[test]
fn stop_ends_an_auth_exchange_at_once_and_lets_a_slow_command_answer() {
    let checking = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Arc::clone(&checking);
    let TestServer { handle, addr, .. } = start(|s| {
        s.stop_timeout = Duration::from_secs(60);
        s.limits.command_timeout = Duration::from_secs(60);
        s.check_user = Some(Box::new(|_, _, _| false));
        s.on_command_mail = Some(Box::new(move |_, _| {
            started.store(true, std::sync::atomic::Ordering::SeqCst);
            thread::sleep(Duration::from_millis(1500));
            indy_smtp::MailAction::Accept
        }));
    });
    let mut auth = Client::connect(addr);
    auth.expect("EHLO auth.example", 250);
    auth.expect("AUTH LOGIN", 334);
    let mut slow = Client::connect(addr);
    slow.expect("EHLO slow.example", 250);
    slow.send(b"MAIL FROM:<a@example.org>\r\n");
    let under_way = || checking.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        common::wait_until(under_way),
        "the MAIL check did not start"
    );
    let done = stop_in_thread(handle, false);
    expect_shutting_down(&mut auth);
    assert_eq!(slow.read_reply().0, 250, "the slow MAIL lost its reply");
    expect_shutting_down(&mut slow);
    done.recv_timeout(Duration::from_secs(20))
        .expect("stop() returned well before stop_timeout");
}

/// Dropping the handle stops the server the same way (Indy's Active := False on free).
#[test]
fn dropping_the_handle_stops_the_server() {
    let TestServer { handle, addr, .. } = start(|_| {});
    let mut c = Client::connect(addr);
    c.expect("EHLO idle.example", 250);
    let done = stop_in_thread(handle, true);
    expect_shutting_down(&mut c);
    done.recv_timeout(Duration::from_secs(20))
        .expect("drop returned");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "still accepting"
    );
}

// --- SmtpServerThread (Indy's TIdSMTPServerThread) as the events see it (issue 2 item 3) ---

#[derive(Debug)]
struct Tag(u64);

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    session_id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    helo: String,
    tag: Option<u64>,
}

#[test]
fn thread_fields_and_app_data_reach_the_events() {
    let connects: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let receives: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let (on_connect, on_receive) = (Arc::clone(&connects), Arc::clone(&receives));
    let server = start(move |s| {
        s.on_connect = Some(Box::new(move |thread| {
            let tag = thread.session_id * 7 + 1;
            thread.data = Some(Box::new(Tag(tag)));
            let (session_id, peer, local) =
                (thread.session_id, thread.peer_addr, thread.local_addr);
            let helo = thread.helo_name.clone();
            on_connect.lock().push(Seen {
                session_id,
                peer,
                local,
                helo,
                tag: Some(tag),
            });
            Ok(())
        }));
        s.on_receive_raw = Some(Box::new(move |thread, stream| {
            let mut data = Vec::new();
            stream
                .read_to_end(&mut data)
                .map_err(|e| Reply::new(451, e.to_string()))?;
            let tag = thread
                .data
                .as_ref()
                .and_then(|d| d.downcast_ref::<Tag>())
                .map(|t| t.0);
            on_receive.lock().push(Seen {
                session_id: thread.session_id,
                peer: thread.peer_addr,
                local: thread.local_addr,
                helo: thread.helo_name.clone(),
                tag,
            });
            Ok(())
        }));
    });
    let mut clients = Vec::new();
    for name in ["one.example", "two.example"] {
        let mut c = server.client();
        c.expect(&format!("EHLO {name}"), 250);
        c.expect("MAIL FROM:<a@example.org>", 250);
        c.expect("RCPT TO:<b@example.com>", 250);
        c.expect("DATA", 354);
        c.send(b"hi\r\n.\r\n");
        assert_eq!(c.read_reply().0, 250);
        clients.push((name, c.writer.local_addr().unwrap()));
    }
    let (connects, receives) = (connects.lock(), receives.lock());
    assert_eq!((connects.len(), receives.len()), (2, 2));
    assert_ne!(receives[0].session_id, receives[1].session_id);
    for ((name, client_addr), (connect, receive)) in
        clients.iter().zip(connects.iter().zip(receives.iter()))
    {
        assert_eq!(receive.peer, *client_addr);
        assert_eq!(receive.local, server.addr);
        assert_eq!(receive.helo, *name);
        assert_eq!(connect.helo, "", "no HELO yet at connect time");
        assert_eq!(
            (connect.session_id, connect.peer, connect.local),
            (receive.session_id, receive.peer, receive.local)
        );
        assert_eq!(
            receive.tag, connect.tag,
            "the data slot set in on_connect is kept"
        );
    }
}

// --- Thread stack size (issue 2 item 3): the deepest handler path fits in 128 KiB ---

/// A message whose MIME tree is `depth` multipart levels deep (RFC 2046 §5.1 sets no limit).
fn nested_mime(depth: usize) -> Vec<u8> {
    let mut m =
        b"From: a@example.org\r\nTo: b@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
            .to_vec();
    for i in 0..depth {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(b"Content-Type: text/plain\r\n\r\ndeepest text\r\n");
    for i in (0..depth).rev() {
        m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
    }
    m
}

#[test]
fn small_thread_stack_parses_deeply_nested_mime() {
    let got: Arc<Mutex<Vec<indy_smtp::Message>>> = Arc::default();
    let sink = Arc::clone(&got);
    let server = start(move |s| {
        s.thread_stack_size = 128 * 1024;
        s.receive_mode = ReceiveMode::MessageParsed;
        s.on_receive_message_parsed = Some(Box::new(move |_, msg| {
            sink.lock().push(msg.clone());
            Ok(())
        }));
    });
    let wire = nested_mime(200);
    let mut c = server.client();
    assert_eq!(
        c.send_mail("a@example.org", &["b@example.com"], &wire).0,
        250
    );
    c.expect("NOOP", 250);
    let got = got.lock();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw(), wire);
    assert_eq!(got[0].subject.as_deref(), Some("deep"));
    assert_eq!(got[0].content_type.as_deref(), Some("multipart/mixed"));
    assert!(!got[0].text_bodies.is_empty() || !got[0].attachments.is_empty());
}

// --- Load: one thread per client (Indy's TIdTCPServer model), 50 lettre clients at once ---

#[test]
fn fifty_concurrent_lettre_clients_deliver_every_message() {
    let server = start(|_| {});
    let port = server.addr.port();
    let workers: Vec<_> = (0..50)
        .map(|i| {
            thread::spawn(move || {
                let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
                    .port(port)
                    .timeout(Some(Duration::from_secs(30)))
                    .build();
                for j in 0..5 {
                    let msg = Message::builder()
                        .from(format!("c{i}@example.org").parse().unwrap())
                        .to("sink@example.com".parse().unwrap())
                        .subject(format!("c{i} m{j}"))
                        .body(format!("message {j} of client {i}\r\n"))
                        .unwrap();
                    mailer.send(&msg).map_err(|e| format!("c{i} m{j}: {e}"))?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for w in workers {
        w.join()
            .expect("client thread")
            .expect("every send got 250");
    }
    let inbox = server.messages();
    assert_eq!(inbox.len(), 250);
    let subjects: HashSet<String> = inbox
        .iter()
        .filter_map(|m| {
            let text = String::from_utf8_lossy(&m.data);
            let line = text.lines().find(|l| l.starts_with("Subject: "))?;
            Some(line["Subject: ".len()..].to_string())
        })
        .collect();
    assert_eq!(subjects.len(), 250, "some messages lost or duplicated");
    assert!(inbox.iter().all(|m| m.rcpts == ["sink@example.com"]));
}

/// `SmtpServer` prints its settings and the names of the events that are set (a closure has
/// no `Debug`), so a configuration can be logged.
#[test]
fn server_debug_names_the_settings_and_assigned_events() {
    let mut s = SmtpServer::new();
    s.hostname = "mx.example".into();
    with_raw_handler(&mut s);
    let text = format!("{s:?}");
    assert!(text.starts_with("SmtpServer {"), "{text}");
    assert!(text.contains("hostname: \"mx.example\""), "{text}");
    assert!(text.contains("events: [\"on_receive_raw\"]"), "{text}");
}
