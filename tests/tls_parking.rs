//! Sessions inside TLS are parked like plain ones: an idle client, after STARTTLS or on an
//! implicit-TLS port, holds no thread, and wakes for its next command, for a command sent in
//! pieces, for its close and for the server's stop.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};

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

/// A client socket whose peer can queue little: a clamped MSS (the server's send buffer is
/// sized from it) and the smallest receive buffer.
fn narrow_socket(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    s.set_tcp_mss(536).unwrap();
    s.set_recv_buffer_size(1).unwrap();
    s.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let tcp: TcpStream = s.into();
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    tcp
}

type TlsStreamC = StreamOwned<ClientConnection, TcpStream>;

/// Sends `bytes` as one TLS record group, without reading.
fn send_plain(s: &mut TlsStreamC, bytes: &[u8]) {
    s.conn.writer().write_all(bytes).unwrap();
    let mut out = Vec::new();
    while s.conn.wants_write() {
        s.conn.write_tls(&mut out).unwrap();
    }
    s.sock.write_all(&out).unwrap();
}

/// The server's send queue and receive queue, and the client's receive queue, of the loopback
/// connection whose client end is `local` (from /proc/net/tcp; zeros once it is gone).
fn tcp_queues(local: u16) -> (u64, u64, u64) {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = format!(":{local:04X}");
    let (mut server, mut client) = (None, None);
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (tx, rx) = f[4].split_once(':').unwrap();
        let q = (
            u64::from_str_radix(tx, 16).unwrap(),
            u64::from_str_radix(rx, 16).unwrap(),
        );
        if f[1].ends_with(&port) {
            client = Some(q);
        } else if f[2].ends_with(&port) {
            server = Some(q);
        }
    }
    match (server, client) {
        (Some(s), Some(c)) => (s.0, s.1, c.1),
        _ => (0, 0, 0),
    }
}

fn wait_for(what: impl Fn() -> bool) {
    let start = Instant::now();
    while !what() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What the client receives until the server closes or 10 s pass (no error is a failure).
fn everything_received(s: TlsStreamC) -> String {
    let mut io = std::io::BufReader::new(s);
    let mut got = Vec::new();
    let _ = io.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

/// A TLS client that reads none of its replies: the server's flush stalls on it. A command
/// it sends meanwhile must not vanish into rustls (a flush that timed out went on to read
/// the socket, and the session then parked with the command where no wake-up reports it,
/// until it was told `421 4.4.2` for idling). Now the flush never reads: the session ends at
/// its write timeout (RFC 5321 §4.5.3.2), or answers the command; never the 421 for idling.
#[test]
fn a_command_sent_while_a_tls_flush_stalls_is_not_lost() {
    let _serial = SERIAL.lock();
    let c = cert();
    let config = server_config(&c);
    let server = start(move |s| {
        s.tls = Some(config);
        s.tls_bindings = vec!["127.0.0.1:0".parse().unwrap()];
        s.limits.command_timeout = Duration::from_secs(1);
    });
    let tcp = narrow_socket(server.handle.local_addrs()[1]);
    let local = tcp.local_addr().unwrap().port();
    let mut burst = b"EHLO stall.example\r\n".to_vec();
    let mut group = b"RSET\r\n".repeat(99);
    group.extend_from_slice(b"NOOP\r\n");
    burst.extend_from_slice(&group.repeat(30));
    burst.extend_from_slice(&b"RSET\r\n".repeat(2200));
    let mut s = TlsClient::handshake_then(tcp, &burst, &[&c])
        .unwrap()
        .io
        .into_inner();
    wait_for(|| tcp_queues(local).1 == 0);
    std::thread::sleep(Duration::from_millis(300));
    send_plain(&mut s, b"RSET\r\n");
    wait_for(|| tcp_queues(local).1 == 0);
    let got = everything_received(s);
    assert!(
        !got.contains("4.4.2"),
        "told it idled: {}",
        got.lines().last().unwrap_or("")
    );
}
