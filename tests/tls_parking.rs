//! Sessions inside TLS are parked like plain ones: an idle client, after STARTTLS or on an
//! implicit-TLS port, holds no thread, and wakes for its next command, for a command sent in
//! pieces, for its close and for the server's stop.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::tls_client::{cert, server_config, Cert, TlsClient};
use common::{start, threads_of_this_process, wait_until, Client, TestServer};

/// The thread-count test must not see the threads of the other tests of this binary.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// A server with STARTTLS and an implicit-TLS port on `c`; counts the sessions that ended.
fn tls_server(c: &Cert, ended: &Arc<AtomicUsize>) -> TestServer {
    let config = server_config(c);
    let ended = Arc::clone(ended);
    start(move |s| {
        s.tls = Some(config);
        s.tls_bindings = vec!["127.0.0.1:0".parse().unwrap()];
        s.stop_timeout = Duration::from_secs(2);
        s.on_disconnect = Some(Box::new(move |_| {
            ended.fetch_add(1, Ordering::SeqCst);
        }));
    })
}

/// A client past EHLO inside TLS: STARTTLS on the plain port, or the implicit-TLS port.
fn tls_session(server: &TestServer, c: &Cert, implicit: bool) -> TlsClient {
    let mut client = if implicit {
        let tcp = Client::connect_silent(server.handle.local_addrs()[1]).writer;
        let mut client = TlsClient::handshake(tcp, &[c]).expect("handshake");
        assert_eq!(client.read_reply().0, 220);
        client
    } else {
        let mut plain = Client::connect(server.addr);
        plain.expect("EHLO idle.example", 250);
        plain.expect("STARTTLS", 220);
        TlsClient::handshake(plain.writer, &[c]).expect("handshake")
    };
    client.expect("EHLO idle.example", 250);
    client
}

#[test]
fn idle_tls_sessions_hold_no_thread_and_still_answer() {
    let _serial = SERIAL.lock();
    const SESSIONS: usize = 120;
    let c = cert();
    let ended = Arc::new(AtomicUsize::new(0));
    let server = tls_server(&c, &ended);
    let before = threads_of_this_process();
    let mut clients: Vec<TlsClient> = (0..SESSIONS)
        .map(|i| tls_session(&server, &c, i % 2 == 0))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let gained = threads_of_this_process().saturating_sub(before);
    // At most the pool's parked threads plus the poller: far fewer than one per session.
    assert!(
        gained < 64,
        "{gained} threads for {SESSIONS} idle TLS sessions"
    );
    for client in &mut clients {
        client.expect("NOOP", 250);
    }
    // A whole transaction pipelined in one TLS write, after the session was parked.
    let first = &mut clients[0];
    let group = "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n";
    first.io.get_mut().write_all(group.as_bytes()).unwrap();
    let codes: Vec<u16> = (0..3).map(|_| first.read_reply().0).collect();
    assert_eq!(codes, [250, 250, 354]);
    first
        .io
        .get_mut()
        .write_all(b"Subject: t\r\n\r\nover TLS\r\n.\r\n")
        .unwrap();
    assert_eq!(first.read_reply().0, 250);
    assert_eq!(server.messages()[0].data, b"Subject: t\r\n\r\nover TLS\r\n");
    drop(clients);
    assert!(wait_until(|| ended.load(Ordering::SeqCst) == SESSIONS));
}

/// The client's first command in the same TCP write as its Finished: the server's handshake
/// reads it along, and the session must not park with it unread inside rustls.
#[test]
fn a_command_that_came_with_the_handshake_is_answered() {
    let _serial = SERIAL.lock();
    let c = cert();
    let ended = Arc::new(AtomicUsize::new(0));
    let server = tls_server(&c, &ended);
    for _ in 0..20 {
        let mut plain = Client::connect(server.addr);
        plain.expect("EHLO early.example", 250);
        plain.expect("STARTTLS", 220);
        let command = b"EHLO early.example\r\n";
        let mut client = TlsClient::handshake_then(plain.writer, command, &[&c]).unwrap();
        assert_eq!(client.read_reply().0, 250);
    }
}

#[test]
fn a_tls_command_in_pieces_waits_parked_and_completes() {
    let _serial = SERIAL.lock();
    let c = cert();
    let ended = Arc::new(AtomicUsize::new(0));
    let server = tls_server(&c, &ended);
    for implicit in [false, true] {
        let mut client = tls_session(&server, &c, implicit);
        let s = client.io.get_mut();
        s.write_all(b"NO").unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(b"OP\r\n").unwrap();
        s.flush().unwrap();
        assert_eq!(client.read_reply().0, 250);
    }
}

#[test]
fn parked_tls_sessions_end_on_close_and_on_stop() {
    let _serial = SERIAL.lock();
    let c = cert();
    let ended = Arc::new(AtomicUsize::new(0));
    let server = tls_server(&c, &ended);
    // A client that says close_notify and closes: its parked session ends.
    let mut leaving = tls_session(&server, &c, false);
    leaving.io.get_mut().conn.send_close_notify();
    leaving.io.get_mut().flush().unwrap();
    drop(leaving);
    assert!(wait_until(|| ended.load(Ordering::SeqCst) == 1));
    // The others hear the server's 421 inside TLS when it stops.
    let mut staying: Vec<TlsClient> = (0..4)
        .map(|i| tls_session(&server, &c, i % 2 == 1))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    server.handle.stop();
    for client in &mut staying {
        assert_eq!(client.read_reply().0, 421);
    }
    assert_eq!(ended.load(Ordering::SeqCst), 5);
}
