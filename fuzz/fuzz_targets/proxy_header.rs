//! Fuzzes the PROXY protocol (HAProxy v1 and v2) header reader and the `proxy::Network` blocks.
//!
//! The header parsers (`proxy::read_header`, `parse_v1`, `parse_v2`) are crate-private and
//! `read_header` reads a `TcpStream` (it peeks), so they are fuzzed the way a proxy reaches
//! them: through the public API, a server on 127.0.0.1 with `proxy_protocol` trusting
//! 127.0.0.0/8, started once. Each input is one connection that sends a header, then a
//! sentinel `XSENT <n>\r\nQUIT\r\n` (`n` a fresh number per input), in one write or in
//! fuzzer-chosen chunks with pauses between them (so the server's peek sees a part of the
//! header: the byte-at-a-time and partial-signature paths). A byte-level reference model of
//! the specification (framing: the v2 signature and length, the first LF within 107 bytes for
//! v1; then the fields) says what the server must do:
//! - refused (malformed, over-long v1 line, incomplete at EOF): the connection is closed with
//!   no byte sent and no command seen;
//! - accepted: the greeting, then exactly the command lines `XSENT <n>` and `QUIT` (so the
//!   reader consumed the header and not one byte more or less), each seen with the header's
//!   source as `peer_addr` and its destination as `local_addr` (LOCAL / UNKNOWN / other
//!   families: the TCP connection's own addresses).
//! Accepted v1 addresses re-serialize to the header text when it is canonical, and in any case
//! to a header the model parses to the same addresses; v2 addresses re-serialize to the bytes
//! of the address block.
//!
//! Input: byte 0 = flags, byte 1 = chunking seed (and where the Network text ends), rest =
//! payload. Flags bits 0-1: the payload
//! is the header raw (0), mapped onto v1 tokens (1), a v2 header built from it (2), a canonical
//! v1 header built from it plus a mapped tail (3). Bit 2: deliver in chunks. Bit 3: a refused
//! header is sent alone and the write side shut (EOF inside the header) instead of with the
//! sentinel. Bit 4: the Network text is mapped onto a CIDR alphabet. Bit 7: Network only (no
//! connection; fast).
//!
//! Network: `FromStr` against a reference (address, then `/` and decimal digits, at most the
//! family's bit count; an IPv4-mapped block with prefix >= 96 is the IPv4 block), `Display`
//! re-parses to itself, and `contains` agrees with a mask compare on 128-bit addresses with
//! IPv4 as IPv4-mapped, for addresses near the block in all three spellings (v4, mapped v6,
//! plain v6).
#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indy_smtp::proxy::{Network, ProxyProtocol};
use indy_smtp::{ServerHandle, SmtpServer};
use libfuzzer_sys::fuzz_target;

const SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_MAX: usize = 107;

#[rustfmt::skip]
const V1_TOKENS: &[&[u8]] = &[
    b"PROXY ", b"TCP4 ", b"TCP6 ", b"UNKNOWN", b"PROXY", b"TCP4", b"TCP6", b" ", b" ", b"\r\n",
    b"\r\n", b"\r", b"\n", b"0", b"1", b"2", b"5", b"7", b"9", b"25", b"255", b"256", b"01",
    b"65535", b"65536", b"0", b".", b".", b".", b":", b":", b"::", b"ffff", b"::ffff:", b"a", b"f",
    b"g", b"-", b"+", b"\0", b"\t", b"\xff", b"\xc3\xa9", b"192.0.2.1", b"203.0.113.7",
    b"2001:db8::1", b"::1", b"%eth0", b"/", b"x",
];

#[rustfmt::skip]
const CIDR_TOKENS: &[&str] = &[
    "0", "1", "2", "3", "7", "8", "9", "10", "12", "16", "24", "25", "31", "32", "33", "64", "95",
    "96", "97", "104", "120", "127", "128", "129", "255", "256", "00", "0032", ".", ".", ":", ":",
    "::", "/", "/", "ffff", "::ffff:", "a", "f", "10.0.0.0", "192.0.2.1", "2001:db8::", " ", "+",
    "-", "%", "x", "é",
];

// ---------------------------------------------------------------------------------------------
// The reference model.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Closed without a reply (malformed, or ends before the header does).
    Refused,
    /// The connection's own addresses stand; the header is `.0` bytes long.
    Local(usize),
    /// Source, destination, header length.
    Proxied(SocketAddr, SocketAddr, usize),
}

/// What the specification says the server does with a connection that starts with `s`
/// (and then ends).
fn reference(s: &[u8]) -> Verdict {
    if s.is_empty() {
        return Verdict::Refused;
    }
    if SIG.starts_with(&s[..s.len().min(12)]) {
        if s.len() < 16 {
            return Verdict::Refused;
        }
        let len = 16 + usize::from(u16::from_be_bytes([s[14], s[15]]));
        if s.len() < len {
            return Verdict::Refused;
        }
        return reference_v2(&s[..len]);
    }
    if !b"PROXY ".starts_with(&s[..s.len().min(6)]) {
        return Verdict::Refused;
    }
    match s.iter().take(V1_MAX).position(|&b| b == b'\n') {
        Some(end) => reference_v1(&s[..=end]),
        None => Verdict::Refused,
    }
}

fn reference_v2(h: &[u8]) -> Verdict {
    let len = h.len();
    if &h[..12] != SIG || h[12] >> 4 != 2 {
        return Verdict::Refused;
    }
    let body = &h[16..];
    match h[12] & 0x0f {
        0 => return Verdict::Local(len),
        1 => {}
        _ => return Verdict::Refused,
    }
    let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    match h[13] {
        0x11 if body.len() >= 12 => {
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    body[at],
                    body[at + 1],
                    body[at + 2],
                    body[at + 3],
                ))
            };
            Verdict::Proxied(
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
                len,
            )
        }
        0x21 if body.len() >= 36 => {
            let ip = |at: usize| {
                let o: [u8; 16] = body[at..at + 16].try_into().unwrap();
                IpAddr::V6(Ipv6Addr::from(o))
            };
            Verdict::Proxied(
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
                len,
            )
        }
        0x11 | 0x21 => Verdict::Refused,
        f if f >> 4 <= 3 && f & 0x0f <= 2 => Verdict::Local(len),
        _ => Verdict::Refused,
    }
}

/// §2.1: "PROXY" SP ("TCP4" / "TCP6") SP src SP dst SP sport SP dport CRLF, or
/// "PROXY UNKNOWN" and anything up to the CRLF.
fn reference_v1(line: &[u8]) -> Verdict {
    let len = line.len();
    let Some(body) = line.strip_suffix(b"\r\n") else {
        return Verdict::Refused;
    };
    // The server decodes the line as UTF-8 before it looks at it (even after UNKNOWN, where
    // the specification says to ignore whatever comes: a proxy sends ASCII).
    let Ok(text) = std::str::from_utf8(body) else {
        return Verdict::Refused;
    };
    let Some(rest) = text.strip_prefix("PROXY ") else {
        return Verdict::Refused;
    };
    if rest == "UNKNOWN" || rest.starts_with("UNKNOWN ") {
        return Verdict::Local(len);
    }
    let (v6, rest) = if let Some(r) = rest.strip_prefix("TCP4 ") {
        (false, r)
    } else if let Some(r) = rest.strip_prefix("TCP6 ") {
        (true, r)
    } else {
        return Verdict::Refused;
    };
    let fields: Vec<&str> = rest.split(' ').collect();
    if fields.len() != 4 {
        return Verdict::Refused;
    }
    let ip = |t: &str| -> Option<IpAddr> {
        if v6 {
            t.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        } else {
            t.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        }
    };
    let port = |t: &str| -> Option<u16> {
        let ok = (1..=5).contains(&t.len())
            && t.bytes().all(|b| b.is_ascii_digit())
            && (t == "0" || !t.starts_with('0'));
        let value: u32 = if ok { t.parse().ok()? } else { return None };
        u16::try_from(value).ok()
    };
    match (
        ip(fields[0]),
        ip(fields[1]),
        port(fields[2]),
        port(fields[3]),
    ) {
        (Some(s), Some(d), Some(sp), Some(dp)) => {
            Verdict::Proxied(SocketAddr::new(s, sp), SocketAddr::new(d, dp), len)
        }
        _ => Verdict::Refused,
    }
}

// ---------------------------------------------------------------------------------------------
// The server.

#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    line: Option<String>,
    peer: SocketAddr,
    local: SocketAddr,
}

struct Fixture {
    _handle: ServerHandle,
    addr: SocketAddr,
}

static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
static NONCE: AtomicU64 = AtomicU64::new(0);

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut server = SmtpServer::new();
        server.hostname = "fuzz.example".into();
        server.bindings = vec!["127.0.0.1:0".parse().unwrap()];
        let mut proxy = ProxyProtocol::trusting(["127.0.0.0/8".parse().unwrap()]);
        proxy.timeout = Duration::from_secs(3);
        server.proxy_protocol = Some(proxy);
        server.limits.command_timeout = Duration::from_secs(3);
        server.limits.max_bad_commands = 0;
        server.stop_timeout = Duration::from_millis(100);
        server.raw_stream_type = indy_smtp::RawStreamType::Memory;
        server.on_receive_raw = Some(Box::new(|_, _| Ok(())));
        server.on_connect = Some(Box::new(|thread| {
            SEEN.lock().unwrap().push(Seen {
                line: None,
                peer: thread.peer_addr,
                local: thread.local_addr,
            });
            Ok(())
        }));
        server.on_before_command_handler = Some(Box::new(|thread, line| {
            SEEN.lock().unwrap().push(Seen {
                line: Some(line.to_string()),
                peer: thread.peer_addr,
                local: thread.local_addr,
            });
        }));
        server.command_handlers.add("XSENT", |ctx, _| {
            ctx.reply(indy_smtp::Reply::new(250, "sentinel"))
        });
        let handle = server.start().expect("fuzz server starts");
        let addr = handle.local_addr();
        Fixture {
            _handle: handle,
            addr,
        }
    })
}

/// Sends `bytes` in the chunks `cuts` gives (offsets, ascending), pausing between chunks;
/// shuts the write side; returns what the server sent until it closed.
fn exchange(stream: &mut TcpStream, bytes: &[u8], cuts: &[usize], pause: Duration) -> Vec<u8> {
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        if cut <= at {
            continue;
        }
        if stream.write_all(&bytes[at..cut]).is_err() {
            // The server closed (a refused header); what it sent is still read below.
            break;
        }
        at = cut;
        if at < bytes.len() {
            std::thread::sleep(pause);
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                break
            }
            Err(e) => panic!("reading the server's answer: {e} (after {got:?})"),
        }
    }
    got
}

/// Up to three cut points in `0..=len`, from the seed byte and the payload.
fn cuts(seed: u8, payload: &[u8], len: usize) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    let count = 1 + usize::from(seed & 3) % 3;
    let mut out: Vec<usize> = (0..count)
        .map(|i| {
            let b = payload.get(i).copied().unwrap_or(seed);
            // Small offsets are the interesting ones (inside "PROXY " and the signature).
            if seed & 0x80 != 0 {
                usize::from(b) % 17
            } else {
                usize::from(b) * len / 256
            }
            .min(len)
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn proxy_connection(flags: u8, seed: u8, header: &[u8]) {
    let fixture = fixture();
    let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
    let sentinel = format!("XSENT {nonce}\r\nQUIT\r\n").into_bytes();
    let mut stream_bytes = header.to_vec();
    stream_bytes.extend_from_slice(&sentinel);
    let verdict = reference(&stream_bytes);
    // Accepted: send exactly the header (taking from the sentinel what the header needs of it,
    // which the model counted in) and then the whole sentinel. Refused: what the input gave.
    let send = match verdict {
        Verdict::Local(len) | Verdict::Proxied(_, _, len) => {
            let mut send = stream_bytes[..len].to_vec();
            send.extend_from_slice(&sentinel);
            send
        }
        Verdict::Refused if flags & 8 != 0 => header.to_vec(),
        Verdict::Refused => stream_bytes,
    };
    let header_len = match verdict {
        Verdict::Local(len) | Verdict::Proxied(_, _, len) => len,
        Verdict::Refused => send.len(),
    };
    SEEN.lock().unwrap().clear();
    let mut stream = TcpStream::connect(fixture.addr).expect("connect to the fuzz server");
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let own = stream.local_addr().unwrap();
    let cut_points = if flags & 4 != 0 {
        cuts(seed, header, header_len)
    } else {
        Vec::new()
    };
    let pause = Duration::from_micros(200 + u64::from(seed >> 4) * 50);
    let got = exchange(&mut stream, &send, &cut_points, pause);
    drop(stream);
    let seen = std::mem::take(&mut *SEEN.lock().unwrap());
    let show = String::from_utf8_lossy(&send);
    match verdict {
        Verdict::Refused => {
            assert!(
                got.is_empty(),
                "refused header {show:?} got a reply: {:?}",
                String::from_utf8_lossy(&got)
            );
            assert!(
                seen.iter().all(|s| s.line.is_none()
                    || !s
                        .line
                        .as_deref()
                        .unwrap()
                        .contains(&format!("XSENT {nonce}"))),
                "refused header {show:?} but the session went on: {seen:?}"
            );
            assert!(
                seen.is_empty(),
                "refused header {show:?} but the session started: {seen:?}"
            );
        }
        Verdict::Local(_) | Verdict::Proxied(..) => {
            let (peer, local) = match verdict {
                Verdict::Proxied(source, destination, _) => (source, destination),
                _ => (own, fixture.addr),
            };
            let text = String::from_utf8_lossy(&got);
            assert!(
                text.starts_with("220 ") && text.ends_with("\r\n"),
                "accepted header {show:?}: no greeting, got {text:?}"
            );
            let lines: Vec<Option<String>> = seen.iter().map(|s| s.line.clone()).collect();
            let want = [
                None,
                Some(format!("XSENT {nonce}")),
                Some("QUIT".to_string()),
            ];
            assert_eq!(
                lines, want,
                "accepted header {show:?} ({verdict:?}): the session saw other commands than the sentinel (reply {text:?})"
            );
            for s in &seen {
                assert_eq!(
                    (s.peer, s.local),
                    (peer, local),
                    "header {show:?} ({verdict:?}): wrong addresses for {:?}",
                    s.line
                );
            }
            assert!(text.contains("\r\n250 sentinel\r\n"), "{text:?}");
            assert!(text.contains("\r\n221 "), "{text:?}");
            if let Verdict::Proxied(source, destination, len) = verdict {
                round_trip(&send[..len], source, destination);
            }
        }
    }
}

/// Accepted addresses re-serialize to the header they came from.
fn round_trip(header: &[u8], source: SocketAddr, destination: SocketAddr) {
    if header.starts_with(SIG) {
        let mut block = Vec::new();
        for ip in [source.ip(), destination.ip()] {
            match ip {
                IpAddr::V4(v4) => block.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => block.extend_from_slice(&v6.octets()),
            }
        }
        block.extend_from_slice(&source.port().to_be_bytes());
        block.extend_from_slice(&destination.port().to_be_bytes());
        assert_eq!(
            &header[16..16 + block.len()],
            &block[..],
            "v2 address block"
        );
        let family = if source.is_ipv4() { 0x11 } else { 0x21 };
        assert_eq!(header[13], family);
        return;
    }
    assert_eq!(source.is_ipv4(), destination.is_ipv4());
    let proto = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    let again = format!(
        "PROXY {proto} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    );
    assert!(
        again.len() <= V1_MAX,
        "re-serialized v1 header too long: {again:?}"
    );
    assert_eq!(
        reference(again.as_bytes()),
        Verdict::Proxied(source, destination, again.len()),
        "{again:?}"
    );
    let text = String::from_utf8_lossy(header);
    let canonical = text
        .split(' ')
        .skip(2)
        .zip(again.split(' ').skip(2))
        .all(|(a, b)| {
            let a = a.trim_end_matches("\r\n");
            let b = b.trim_end_matches("\r\n");
            a == b
        });
    if canonical {
        assert_eq!(header, again.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Headers from the payload.

fn build_header(flags: u8, payload: &[u8]) -> Vec<u8> {
    match flags & 3 {
        0 => payload.to_vec(),
        1 => payload
            .iter()
            .flat_map(|&b| V1_TOKENS[usize::from(b) % V1_TOKENS.len()].iter().copied())
            .collect(),
        2 => {
            let at = |i: usize| payload.get(i).copied().unwrap_or(0);
            let mut h = SIG.to_vec();
            if at(0) & 0x80 != 0 {
                // A damaged signature.
                let i = usize::from(at(0) & 0x0f) % 12;
                h[i] ^= at(1) | 1;
            }
            h.push(match at(2) % 8 {
                0..=3 => 0x21,
                4 | 5 => 0x20,
                _ => at(3),
            });
            h.push(match at(4) % 10 {
                0..=2 => 0x11,
                3..=5 => 0x21,
                6 => 0x00,
                7 => 0x12,
                8 => 0x31,
                _ => at(5),
            });
            let body = payload.get(8..).unwrap_or(&[]);
            let len = if at(6) & 1 == 0 {
                body.len() as u16
            } else {
                u16::from_be_bytes([at(6) >> 4, at(7)])
            };
            h.extend_from_slice(&len.to_be_bytes());
            h.extend_from_slice(body);
            h
        }
        _ => {
            let at = |i: usize| payload.get(i).copied().unwrap_or(0);
            let v6 = at(0) & 1 != 0;
            let ip = |i: usize| -> String {
                if v6 {
                    let mut o = [0u8; 16];
                    for (k, b) in o.iter_mut().enumerate() {
                        // Mostly zeros, so that `::` compression and mapped forms come up.
                        let x = at(i + k);
                        *b = if x & 0x80 != 0 { x } else { 0 };
                    }
                    if at(0) & 2 != 0 {
                        o[..10].fill(0);
                        o[10] = 0xff;
                        o[11] = 0xff;
                    }
                    Ipv6Addr::from(o).to_string()
                } else {
                    Ipv4Addr::new(at(i), at(i + 1), at(i + 2), at(i + 3)).to_string()
                }
            };
            let port = |i: usize| u16::from_be_bytes([at(i), at(i + 1)]);
            let proto = if v6 { "TCP6" } else { "TCP4" };
            let mut h = format!(
                "PROXY {proto} {} {} {} {}\r\n",
                ip(1),
                ip(17),
                port(33),
                port(35)
            )
            .into_bytes();
            // A tail the header may be followed by, or not (it is before the sentinel).
            h.extend(
                payload
                    .get(37..)
                    .unwrap_or(&[])
                    .iter()
                    .flat_map(|&b| V1_TOKENS[usize::from(b) % V1_TOKENS.len()].iter().copied()),
            );
            h
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Network.

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) | 0xffff_0000_0000,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The reference block: a 128-bit address (IPv4 as IPv4-mapped) and prefix length.
fn reference_network(s: &str) -> Option<(u128, u32, IpAddr)> {
    let (addr, prefix) = match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => bits,
        Some(p) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let p = p.trim_start_matches('0');
            if p.len() > 3 {
                return None;
            }
            let v: u32 = if p.is_empty() { 0 } else { p.parse().unwrap() };
            if v > bits {
                return None;
            }
            v
        }
    };
    let prefix128 = if ip.is_ipv4() { prefix + 96 } else { prefix };
    Some((to_u128(ip), prefix128, ip))
}

fn mask(prefix: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    }
}

fn check_network(text: &str, ip_bytes: &[u8]) {
    let parsed = Network::from_str(text);
    let model = reference_network(text);
    let (net, (addr, prefix, _ip)) = match (parsed, model) {
        (Ok(net), Some(m)) => (net, m),
        (Err(_), None) => return,
        (parsed, model) => panic!("Network {text:?}: parsed {parsed:?}, reference {model:?}"),
    };
    // Display re-parses to the same block.
    let shown = net.to_string();
    assert_eq!(
        Network::from_str(&shown).as_ref(),
        Ok(&net),
        "{text:?} shown as {shown:?}"
    );
    let (shown_addr, shown_prefix) = shown.split_once('/').expect("Display has a prefix");
    let shown_ip: IpAddr = shown_addr.parse().unwrap();
    let shown_prefix: u32 = shown_prefix.parse().unwrap();
    let shown128 = if shown_ip.is_ipv4() {
        shown_prefix + 96
    } else {
        shown_prefix
    };
    assert_eq!(shown128, prefix, "{text:?} shown as {shown:?}: prefix");
    assert_eq!(
        to_u128(shown_ip) & mask(prefix),
        addr & mask(prefix),
        "{text:?} as {shown:?}"
    );
    // Addresses near the block: its address with bits flipped, in three spellings.
    let mut candidates = vec![addr];
    for (i, &b) in ip_bytes.iter().enumerate().take(16) {
        let flip = if i % 2 == 0 {
            // A bit just around the prefix boundary.
            (prefix + u32::from(b % 9)).saturating_sub(4).min(127)
        } else {
            u32::from(b) % 128
        };
        candidates.push(addr ^ (1u128 << (127 - flip)));
        candidates.push(u128::from_be_bytes({
            let mut o = [0u8; 16];
            for (k, x) in o.iter_mut().enumerate() {
                *x = ip_bytes.get(i + k).copied().unwrap_or(0);
            }
            o
        }));
    }
    for c in candidates {
        let v6 = Ipv6Addr::from(c);
        let mut spellings = vec![IpAddr::V6(v6)];
        if let Some(v4) = v6.to_ipv4_mapped() {
            spellings.push(IpAddr::V4(v4));
        }
        for ip in spellings {
            let want = (to_u128(ip) ^ addr) & mask(prefix) == 0;
            assert_eq!(
                net.contains(ip),
                want,
                "{text:?} (shown {shown:?}) contains {ip}"
            );
            let trusted = ProxyProtocol::trusting([net]);
            assert_eq!(trusted.trusts(ip), want);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (flags, seed, payload) = (data[0], data[1], &data[2..]);

    // Network: the payload up to the seed byte is the block's text, the rest the addresses.
    let (net_part, ip_part) = payload.split_at(usize::from(seed).min(payload.len()));
    let text: String = if flags & 0x10 != 0 {
        net_part
            .iter()
            .map(|&b| CIDR_TOKENS[usize::from(b) % CIDR_TOKENS.len()])
            .collect()
    } else {
        String::from_utf8_lossy(net_part).into_owned()
    };
    check_network(&text, ip_part);
    if flags & 0x80 != 0 {
        return;
    }

    let header = build_header(flags, payload);
    // The header's source address as a block too (`PROXY TCP4 <source> ...`).
    if let Some(word) = String::from_utf8_lossy(&header).split(' ').nth(2) {
        check_network(word, payload);
    }
    proxy_connection(flags, seed, &header);
});
