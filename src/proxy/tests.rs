use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn proxied(source: &str, destination: &str) -> ProxyHeader {
    ProxyHeader::Proxied {
        source: addr(source),
        destination: addr(destination),
    }
}

fn invalid(result: Result<ProxyHeader, ProxyError>) -> bool {
    matches!(result, Err(ProxyError::Invalid(_)))
}

#[test]
fn v1_tcp4_tcp6_and_unknown() {
    let line = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 25\r\n";
    assert_eq!(
        parse_v1(line).unwrap(),
        proxied("203.0.113.7:51234", "192.0.2.1:25")
    );
    let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n";
    assert_eq!(
        parse_v1(line).unwrap(),
        proxied("[2001:db8::7]:65535", "[2001:db8::1]:0")
    );
    assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n").unwrap(), ProxyHeader::Local);
    let unknown = b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
    assert_eq!(parse_v1(unknown).unwrap(), ProxyHeader::Local);
}

#[test]
fn v1_malformed_lines_are_refused() {
    let bad: [&[u8]; 16] = [
        b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 25\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 25 9\r\n",
        b"PROXY TCP4 2001:db8::7 192.0.2.1 51234 25\r\n",
        b"PROXY TCP6 203.0.113.7 2001:db8::1 51234 25\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 25\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 +1 25\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 -1 25\r\n",
        b"PROXY TCP4  203.0.113.7 192.0.2.1 1 25\r\n",
        b"PROXY UDP4 203.0.113.7 192.0.2.1 1 25\r\n",
        b"PROXY tcp4 203.0.113.7 192.0.2.1 1 25\r\n",
        b"proxy TCP4 203.0.113.7 192.0.2.1 1 25\r\n",
        b"PROXY TCP4 203.0.113.\xff 192.0.2.1 1 25\r\n",
        b"PROXY\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 040000 25\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1 025\r\n",
    ];
    for line in bad {
        assert!(
            invalid(parse_v1(line)),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

/// A v2 header: signature, version 2 and `command`, `family`, then `body`.
fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.push(0x20 | command);
    header.push(family);
    header.extend_from_slice(&(body.len() as u16).to_be_bytes());
    header.extend_from_slice(body);
    header
}

#[test]
fn v2_proxy_local_and_other_families() {
    let mut v4 = vec![203, 0, 113, 7, 192, 0, 2, 1];
    v4.extend_from_slice(&51234u16.to_be_bytes());
    v4.extend_from_slice(&25u16.to_be_bytes());
    assert_eq!(
        parse_v2(&v2(1, 0x11, &v4)).unwrap(),
        proxied("203.0.113.7:51234", "192.0.2.1:25")
    );
    // TLVs after the addresses are skipped.
    let mut with_tlv = v4.clone();
    with_tlv.extend_from_slice(&[0x04, 0x00, 0x03, b'a', b'b', b'c']);
    assert_eq!(
        parse_v2(&v2(1, 0x11, &with_tlv)).unwrap(),
        proxied("203.0.113.7:51234", "192.0.2.1:25")
    );
    let source: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let destination: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let mut v6 = source.octets().to_vec();
    v6.extend_from_slice(&destination.octets());
    v6.extend_from_slice(&[0xff, 0xff, 0x00, 0x19]);
    assert_eq!(
        parse_v2(&v2(1, 0x21, &v6)).unwrap(),
        proxied("[2001:db8::7]:65535", "[2001:db8::1]:25")
    );
    assert_eq!(parse_v2(&v2(0, 0x00, &[])).unwrap(), ProxyHeader::Local);
    assert_eq!(parse_v2(&v2(0, 0x11, &v4)).unwrap(), ProxyHeader::Local);
    assert_eq!(parse_v2(&v2(1, 0x00, &[])).unwrap(), ProxyHeader::Local);
    assert_eq!(
        parse_v2(&v2(1, 0x31, &[0; 216])).unwrap(),
        ProxyHeader::Local
    );
    assert_eq!(parse_v2(&v2(1, 0x12, &v4)).unwrap(), ProxyHeader::Local);
}

#[test]
fn v2_malformed_headers_are_refused() {
    let v4 = [203, 0, 113, 7, 192, 0, 2, 1, 0, 1, 0, 25];
    assert!(
        invalid(parse_v2(&v2(1, 0x11, &v4[..11]))),
        "short IPv4 block"
    );
    assert!(
        invalid(parse_v2(&v2(1, 0x21, &[0; 35]))),
        "short IPv6 block"
    );
    assert!(invalid(parse_v2(&v2(2, 0x11, &v4))), "command 2");
    let mut version_1 = v2(1, 0x11, &v4);
    version_1[12] = 0x11;
    assert!(invalid(parse_v2(&version_1)), "version 1");
    let mut long = v2(1, 0x11, &v4);
    long.push(0);
    assert!(invalid(parse_v2(&long)), "more bytes than its length");
    let mut signature = v2(1, 0x11, &v4);
    signature[11] = b'X';
    assert!(invalid(parse_v2(&signature)), "bad signature");
    assert!(invalid(parse_v2(&V2_SIGNATURE[..])), "no fixed part");
    for family in [0x41, 0x13, 0xff, 0x03] {
        assert!(invalid(parse_v2(&v2(1, family, &v4))), "family {family:#x}");
    }
}

#[test]
fn networks_parse_and_contain() {
    let net = |s: &str| s.parse::<Network>().unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(net("10.0.0.0/8").contains(ip("10.255.1.2")));
    assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
    assert!(net("192.0.2.128/25").contains(ip("192.0.2.200")));
    assert!(!net("192.0.2.128/25").contains(ip("192.0.2.127")));
    assert!(net("192.0.2.7").contains(ip("192.0.2.7")));
    assert!(!net("192.0.2.7").contains(ip("192.0.2.8")));
    assert!(net("0.0.0.0/0").contains(ip("198.51.100.1")));
    assert!(
        net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")),
        "IPv4-mapped"
    );
    assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
    assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
    assert!(!net("2001:db8::/32").contains(ip("10.0.0.1")));
    assert!(net("::1").contains(ip("::1")));
    // IPv4-mapped blocks and addresses are their IPv4 ones, on either side.
    assert!(net("::ffff:127.0.0.1").contains(ip("127.0.0.1")));
    assert!(net("::ffff:10.0.0.0/104").contains(ip("10.9.8.7")));
    assert!(!net("::ffff:10.0.0.0/104").contains(ip("11.0.0.1")));
    assert_eq!(net("::ffff:10.0.0.0/104").to_string(), "10.0.0.0/8");
    assert!(
        net("::/0").contains(ip("192.0.2.1")),
        "all of IPv6 maps IPv4 too"
    );
    assert!(!net("2001:db8::/32").contains(ip("192.0.2.1")));
    assert!(net("::ffff:0:0/96").contains(ip("::ffff:192.0.2.1")));
    assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
    for bad in [
        "",
        "10.0.0.0/",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/+8",
        "10/8",
        "x",
        "1.2.3.4/ 8",
    ] {
        assert!(bad.parse::<Network>().is_err(), "{bad:?}");
    }
}

#[test]
fn a_timeout_too_long_to_add_is_not_a_panic() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    std::io::Write::write_all(&mut client, b"PROXY UNKNOWN\r\nEHLO x\r\n").unwrap();
    let header = read_header(&server, Duration::MAX).unwrap();
    assert_eq!(header, ProxyHeader::Local);
    let mut rest = [0u8; 8];
    let n = (&server).read(&mut rest).unwrap();
    assert_eq!(
        &rest[..n],
        b"EHLO x\r\n",
        "nothing after the header was taken"
    );
}
