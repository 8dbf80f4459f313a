//! The PROXY protocol (v1 and v2) in front of real connections: the session takes the
//! client's address from the header, the per-IP limit counts clients rather than the proxy,
//! and a connection without a valid header, or from an untrusted address, is not served.
mod common;

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::{start, Client, TestServer};
use indy_smtp::proxy::ProxyProtocol;
use indy_smtp::{Error, SmtpServer};
use parking_lot::Mutex;

type Seen = Arc<Mutex<Vec<(SocketAddr, SocketAddr)>>>;

/// A server behind a proxy at `trusted`; records each MAIL's peer and local address.
fn behind_proxy(trusted: &str, configure: impl FnOnce(&mut SmtpServer)) -> (TestServer, Seen) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let server = start(|s| {
        let mut proxy = ProxyProtocol::trusting([trusted.parse().unwrap()]);
        proxy.timeout = Duration::from_secs(2);
        s.proxy_protocol = Some(proxy);
        s.on_command_mail = Some(Box::new(move |thread, _| {
            log.lock().push((thread.peer_addr, thread.local_addr));
            indy_smtp::MailAction::Accept
        }));
        configure(s);
    });
    (server, seen)
}

/// Connects, sends `header`, and reads the greeting.
fn via_proxy(server: &TestServer, header: &[u8]) -> Client {
    let mut client = Client::connect_silent(server.addr);
    client.send(header);
    client.greeting = client.read_reply();
    client
}

/// What the server sends until it closes the connection (within the client's 10 s timeout).
fn everything_until_closed(c: &mut Client) -> Vec<u8> {
    let mut got = Vec::new();
    c.reader.read_to_end(&mut got).expect("closed in time");
    got
}

fn v1(source: &str) -> Vec<u8> {
    let source: SocketAddr = source.parse().unwrap();
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    let destination = if source.is_ipv4() {
        "192.0.2.1"
    } else {
        "2001:db8::1"
    };
    let (ip, port) = (source.ip(), source.port());
    format!("PROXY {family} {ip} {destination} {port} 25\r\n").into_bytes()
}

fn v2_tcp6(source: &str, port: u16) -> Vec<u8> {
    let source: std::net::Ipv6Addr = source.parse().unwrap();
    let destination: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x21".to_vec();
    let tlv = [0x04, 0x00, 0x02, b'i', b'd'];
    header.extend_from_slice(&(36u16 + tlv.len() as u16).to_be_bytes());
    header.extend_from_slice(&source.octets());
    header.extend_from_slice(&destination.octets());
    header.extend_from_slice(&port.to_be_bytes());
    header.extend_from_slice(&25u16.to_be_bytes());
    header.extend_from_slice(&tlv);
    header
}

#[test]
fn v1_and_v2_headers_give_the_session_the_clients_address() {
    let (server, seen) = behind_proxy("127.0.0.1", |_| {});
    let mut c = via_proxy(&server, &v1("203.0.113.7:51234"));
    assert_eq!(c.greeting.0, 220);
    let (code, _) = c.send_mail("a@b.example", &["c@d.example"], b"Subject: 1\r\n\r\nx\r\n");
    assert_eq!(code, 250);
    let mut c = via_proxy(&server, &v2_tcp6("2001:db8::7", 4000));
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@b.example>", 250);
    let seen = seen.lock().clone();
    assert_eq!(
        seen,
        [
            (
                "203.0.113.7:51234".parse().unwrap(),
                "192.0.2.1:25".parse().unwrap()
            ),
            (
                "[2001:db8::7]:4000".parse().unwrap(),
                "[2001:db8::1]:25".parse().unwrap()
            ),
        ]
    );
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn a_header_in_pieces_and_the_command_after_it_are_both_read() {
    let (server, seen) = behind_proxy("127.0.0.1", |_| {});
    let mut c = Client::connect_silent(server.addr);
    let header = v1("198.51.100.9:1000");
    c.send(&header[..10]);
    std::thread::sleep(Duration::from_millis(50));
    c.send(&header[10..]);
    assert_eq!(c.read_reply().0, 220);
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@b.example>", 250);
    let peer = seen.lock()[0].0;
    assert_eq!(peer, "198.51.100.9:1000".parse::<SocketAddr>().unwrap());
}

#[test]
fn local_and_unknown_headers_keep_the_proxys_address() {
    let (server, seen) = behind_proxy("127.0.0.0/8", |_| {});
    for header in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00",
    ] {
        let mut c = via_proxy(&server, header);
        c.expect("EHLO client.example", 250);
        c.expect("MAIL FROM:<a@b.example>", 250);
    }
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|(peer, _)| peer.ip() == IpAddr::from([127, 0, 0, 1])));
}

#[test]
fn no_valid_header_closes_without_a_reply() {
    let (server, seen) = behind_proxy("127.0.0.1", |s| {
        if let Some(proxy) = &mut s.proxy_protocol {
            proxy.timeout = Duration::from_millis(300);
        }
    });
    let bad: [&[u8]; 4] = [
        b"EHLO client.example\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x13\x11\x00\x0c012345678901",
        &[b'P'; 200],
    ];
    for header in bad {
        let mut c = Client::connect_silent(server.addr);
        c.send(header);
        let what = String::from_utf8_lossy(header);
        assert_eq!(everything_until_closed(&mut c), b"", "{what:?}");
    }
    // Silence: closed at the timeout, with nothing sent.
    let mut c = Client::connect_silent(server.addr);
    assert_eq!(everything_until_closed(&mut c), b"");
    assert!(seen.lock().is_empty());
}

#[test]
fn an_untrusted_address_is_refused_before_its_header_is_read() {
    let (server, seen) = behind_proxy("10.0.0.0/8", |_| {});
    let mut c = via_proxy(&server, &v1("203.0.113.7:51234"));
    let text = "test.example Service available only through its proxy";
    assert_eq!(c.greeting, (421, text.to_string()));
    assert!(c.is_closed());
    assert!(seen.lock().is_empty());
}

#[test]
fn the_per_ip_limit_counts_clients_not_the_proxy() {
    let (server, _) = behind_proxy("127.0.0.1", |s| s.limits.max_connections_per_ip = 1);
    let mut first = via_proxy(&server, &v1("203.0.113.7:1"));
    let mut other = via_proxy(&server, &v1("203.0.113.8:1"));
    assert_eq!((first.greeting.0, other.greeting.0), (220, 220));
    let mut again = via_proxy(&server, &v1("203.0.113.7:2"));
    assert_eq!(again.greeting.0, 421, "{:?}", again.greeting);
    assert!(again.is_closed());
    // The first client leaves: its place is free again.
    first.expect("QUIT", 221);
    assert!(first.is_closed());
    assert!(common::wait_until(|| server.handle.active_sessions() == 1));
    let third = via_proxy(&server, &v1("203.0.113.7:3"));
    assert_eq!(third.greeting.0, 220);
    other.expect("NOOP", 250);
}

// A dual-stack proxy may write an IPv4 client in its IPv6-mapped form: it is the same client
// for the per-IP limit, and the session sees its IPv4 address.
#[test]
fn an_ipv4_mapped_source_is_the_ipv4_client() {
    let (server, seen) = behind_proxy("127.0.0.1", |s| s.limits.max_connections_per_ip = 1);
    let mut plain = via_proxy(&server, &v1("203.0.113.7:1"));
    plain.expect("EHLO client.example", 250);
    plain.expect("MAIL FROM:<a@b.example>", 250);
    let mut refused = via_proxy(&server, &v2_tcp6("::ffff:203.0.113.7", 2));
    assert_eq!(refused.greeting.0, 421, "{:?}", refused.greeting);
    assert!(refused.is_closed());
    plain.expect("QUIT", 221);
    assert!(plain.is_closed());
    assert!(common::wait_until(|| server.handle.active_sessions() == 0));
    let mut mapped = via_proxy(&server, &v2_tcp6("::ffff:203.0.113.7", 3));
    mapped.expect("EHLO client.example", 250);
    mapped.expect("MAIL FROM:<a@b.example>", 250);
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].0, "203.0.113.7:3".parse::<SocketAddr>().unwrap());
}

// A client on the proxy's own address (local submissions relayed by a proxy on the same
// host) is counted once, as itself: not also for the proxy's place while its header was read.
#[test]
fn a_client_on_the_proxys_address_is_counted_once() {
    let (server, seen) = behind_proxy("127.0.0.1", |s| s.limits.max_connections_per_ip = 1);
    let waiting = Client::connect_silent(server.addr); // its header still to come
    let mut c = via_proxy(&server, &v1("127.0.0.1:40000"));
    assert_eq!(c.greeting.0, 220, "{:?}", c.greeting);
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@b.example>", 250);
    assert_eq!(seen.lock().len(), 1);
    drop(waiting);
}

#[test]
fn an_empty_trusted_list_is_refused_at_start() {
    let mut server = SmtpServer::new();
    server.bindings = vec!["127.0.0.1:0".parse().unwrap()];
    server.on_receive_raw = Some(Box::new(|_, _| Ok(())));
    server.proxy_protocol = Some(ProxyProtocol::trusting([]));
    assert!(matches!(server.start(), Err(Error::NoTrustedProxy)));
}
