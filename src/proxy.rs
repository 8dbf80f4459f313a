//! The PROXY protocol (HAProxy's, versions 1 and 2), for a server behind a TCP load balancer
//! or proxy that would otherwise see every client as the proxy's address.
//!
//! With [`SmtpServer::proxy_protocol`](crate::SmtpServer::proxy_protocol) set, every
//! connection must start with a PROXY header, sent by the proxy before any byte of the
//! client's: the session then runs with the client's address as
//! [`peer_addr`](crate::SmtpServerThread::peer_addr) (for the events, the logs, the trace
//! fields and `limits.max_connections_per_ip`) and the address the client connected to as
//! `local_addr`. The header is read before the greeting, before the TLS handshake of an
//! implicit-TLS port, and never past its end.
//!
//! As the protocol's specification asks, the server does not guess: a connection without a
//! valid header is closed at once, with no reply (the bytes came from the proxy, not from an
//! SMTP client), and a connection from an address outside
//! [`trusted`](ProxyProtocol::trusted) is refused with `421` before anything is read, so no
//! one but the proxy can claim an address. A `LOCAL` (v2) or `UNKNOWN` (v1) header, which a
//! proxy sends for its own health checks, keeps the proxy's addresses.
//!
//! ```
//! use indy_smtp::{proxy::ProxyProtocol, SmtpServer};
//!
//! let mut server = SmtpServer::new();
//! server.proxy_protocol = Some(ProxyProtocol::trusting(["10.0.0.0/8".parse().unwrap()]));
//! ```

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The v2 signature (§2.2 of the specification).
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header, CRLF included (§2.1).
const V1_MAX: usize = 107;
/// The fixed part of a v2 header: signature, version and command, family, length.
const V2_FIXED: usize = 16;

/// Where PROXY headers are accepted from, and how long the proxy has to send one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyProtocol {
    /// The proxies' addresses. A connection from anywhere else is refused with
    /// `421 <host> Service available only through its proxy` (RFC 5321 §3.1: a server may
    /// answer 421 instead of 220). Must not be empty.
    pub trusted: Vec<Network>,
    /// How long the proxy may take to send its header; 5 s. Checked after each read, so a
    /// proxy trickling its header is cut off within twice this time.
    pub timeout: Duration,
}

impl ProxyProtocol {
    /// PROXY headers from `trusted`, with the default 5 s timeout.
    pub fn trusting(trusted: impl IntoIterator<Item = Network>) -> ProxyProtocol {
        ProxyProtocol {
            trusted: trusted.into_iter().collect(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|network| network.contains(ip))
    }
}

/// An address block, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a block of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// Why a text is not a [`Network`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidNetwork(String);

impl fmt::Display for InvalidNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an address or address/prefix: {:?}", self.0)
    }
}

impl std::error::Error for InvalidNetwork {}

impl FromStr for Network {
    type Err = InvalidNetwork;

    fn from_str(s: &str) -> Result<Network, InvalidNetwork> {
        let invalid = || InvalidNetwork(s.chars().take(64).collect());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= bits)
                .ok_or_else(invalid)?,
            Some(_) => return Err(invalid()),
        };
        // An IPv4-mapped block (`::ffff:10.0.0.0/104`) is the IPv4 block it maps.
        match addr.to_canonical() {
            IpAddr::V4(v4) if addr.is_ipv6() && prefix >= 96 => Ok(Network {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            }),
            _ => Ok(Network { addr, prefix }),
        }
    }
}

impl Network {
    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts as its IPv4 one, in
    /// either).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V4(ip)) => {
                same_prefix(&net.octets(), &ip.to_ipv6_mapped().octets(), self.prefix)
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (whole, rest) = (usize::from(prefix / 8), prefix % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

/// What a PROXY header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProxyHeader {
    /// The client's address and the address it connected to.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// The proxy's own connection (v2 `LOCAL`, v1 `UNKNOWN`, or an address family other than
    /// TCP over IPv4/IPv6): the connection's addresses stand.
    Local,
}

/// Why a connection's PROXY header was refused.
#[derive(Debug)]
pub(crate) enum ProxyError {
    /// Neither a v1 nor a v2 header, or a malformed one.
    Invalid(&'static str),
    /// The header did not arrive in time.
    Timeout,
    /// The connection ended first.
    Closed,
    /// Reading failed.
    Io(io::Error),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Invalid(why) => write!(f, "invalid PROXY header: {why}"),
            ProxyError::Timeout => f.write_str("no PROXY header in time"),
            ProxyError::Closed => f.write_str("connection closed before its PROXY header"),
            ProxyError::Io(e) => write!(f, "reading the PROXY header: {e}"),
        }
    }
}

/// Parses a v1 header: `line` is the whole line, CRLF included (§2.1).
pub(crate) fn parse_v1(line: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let invalid = ProxyError::Invalid;
    let text = line
        .strip_suffix(b"\r\n")
        .and_then(|l| std::str::from_utf8(l).ok())
        .ok_or(invalid("v1 line does not end in CRLF"))?;
    let mut words = text.split(' ');
    if words.next() != Some("PROXY") {
        return Err(invalid("v1 line does not start with \"PROXY \""));
    }
    let v6 = match words.next() {
        Some("UNKNOWN") => return Ok(ProxyHeader::Local),
        Some("TCP4") => false,
        Some("TCP6") => true,
        _ => return Err(invalid("v1 protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    let fields: Vec<&str> = words.collect();
    let [source, destination, source_port, destination_port] = fields[..] else {
        return Err(invalid("v1 line needs two addresses and two ports"));
    };
    let address = |text: &str| -> Result<IpAddr, ProxyError> {
        let ip = if v6 {
            text.parse::<Ipv6Addr>().map(IpAddr::V6)
        } else {
            text.parse::<Ipv4Addr>().map(IpAddr::V4)
        };
        ip.map_err(|_| invalid("v1 address does not match its protocol"))
    };
    Ok(ProxyHeader::Proxied {
        source: SocketAddr::new(address(source)?, port(source_port)?),
        destination: SocketAddr::new(address(destination)?, port(destination_port)?),
    })
}

/// A v1 port: decimal digits only (no sign, no heading zero: §2.1), 0–65535.
fn port(text: &str) -> Result<u16, ProxyError> {
    let digits = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    digits
        .then(|| text.parse().ok())
        .flatten()
        .ok_or(ProxyError::Invalid(
            "v1 port is not a number from 0 to 65535",
        ))
}

/// Parses a v2 header: `header` is the whole header, its 16 fixed bytes and the `len` bytes
/// that follow (§2.2). TLVs after the addresses are ignored.
pub(crate) fn parse_v2(header: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let invalid = ProxyError::Invalid;
    if header.len() < V2_FIXED || !header.starts_with(V2_SIGNATURE) {
        return Err(invalid("no v2 signature"));
    }
    let (version_command, family) = (header[12], header[13]);
    let len = usize::from(u16::from_be_bytes([header[14], header[15]]));
    let body = &header[V2_FIXED..];
    if body.len() != len {
        return Err(invalid("v2 length does not match the header"));
    }
    if version_command >> 4 != 2 {
        return Err(invalid("v2 version is not 2"));
    }
    match version_command & 0x0f {
        0 => return Ok(ProxyHeader::Local),
        1 => {}
        _ => return Err(invalid("v2 command is neither LOCAL nor PROXY")),
    }
    match family {
        // TCP over IPv4: source and destination address, then the two ports.
        0x11 if len >= 12 => {
            let ip = |at: usize| IpAddr::from([body[at], body[at + 1], body[at + 2], body[at + 3]]);
            Ok(proxied(ip(0), ip(4), &body[8..12]))
        }
        0x21 if len >= 36 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&body[at..at + 16]);
                IpAddr::from(octets)
            };
            Ok(proxied(ip(0), ip(16), &body[32..36]))
        }
        0x11 | 0x21 => Err(invalid("v2 length too short for its addresses")),
        // §2.2: other families (high nibble) than UNSPEC, INET, INET6 and UNIX, and other
        // transports (low nibble) than UNSPEC, STREAM and DGRAM, must be rejected.
        _ if family >> 4 > 3 || family & 0x0f > 2 => Err(invalid("v2 family is not defined")),
        // UNSPEC, UNIX sockets, UDP: nothing this server can use; the spec lets the receiver
        // keep the connection's own addresses.
        _ => Ok(ProxyHeader::Local),
    }
}

fn proxied(source: IpAddr, destination: IpAddr, ports: &[u8]) -> ProxyHeader {
    ProxyHeader::Proxied {
        source: SocketAddr::new(source, u16::from_be_bytes([ports[0], ports[1]])),
        destination: SocketAddr::new(destination, u16::from_be_bytes([ports[2], ports[3]])),
    }
}

/// Reads a connection's PROXY header, and not one byte more: what follows is the client's
/// (a TLS ClientHello on an implicit-TLS port). Sets the socket's read timeout to `timeout`.
pub(crate) fn read_header(tcp: &TcpStream, timeout: Duration) -> Result<ProxyHeader, ProxyError> {
    let deadline = crate::config::deadline(Instant::now(), timeout);
    tcp.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .map_err(ProxyError::Io)?;
    let mut start = [0u8; V1_MAX];
    let seen = wait_for(deadline, || tcp.peek(&mut start))?;
    let seen = &start[..seen];
    if V2_SIGNATURE.starts_with(&seen[..seen.len().min(12)]) {
        let mut header = vec![0u8; V2_FIXED];
        read_exact_by(tcp, &mut header, deadline)?;
        let len = usize::from(u16::from_be_bytes([header[14], header[15]]));
        header.resize(V2_FIXED + len, 0);
        read_exact_by(tcp, &mut header[V2_FIXED..], deadline)?;
        return parse_v2(&header);
    }
    if !b"PROXY ".starts_with(&seen[..seen.len().min(6)]) {
        return Err(ProxyError::Invalid("neither a v1 nor a v2 header"));
    }
    // The whole line is usually in the first segment: one read takes it. Otherwise it is
    // read a byte at a time, so as not to read past its end.
    let mut line = match memchr::memchr(b'\n', seen) {
        Some(end) => {
            let mut line = vec![0u8; end + 1];
            read_exact_by(tcp, &mut line, deadline)?;
            return parse_v1(&line);
        }
        None if seen.len() == V1_MAX => {
            return Err(ProxyError::Invalid("v1 line longer than 107 bytes"))
        }
        None => Vec::with_capacity(V1_MAX),
    };
    let mut byte = [0u8; 1];
    while line.len() < V1_MAX {
        read_exact_by(tcp, &mut byte, deadline)?;
        line.push(byte[0]);
        if byte[0] == b'\n' {
            return parse_v1(&line);
        }
    }
    Err(ProxyError::Invalid("v1 line longer than 107 bytes"))
}

/// Fills `buf` from `tcp`, giving up at `deadline` (checked after each read).
fn read_exact_by(tcp: &TcpStream, buf: &mut [u8], deadline: Instant) -> Result<(), ProxyError> {
    let mut filled = 0;
    while filled < buf.len() {
        let mut reader = tcp;
        filled += wait_for(deadline, || reader.read(&mut buf[filled..]))?;
    }
    Ok(())
}

/// One blocking read or peek that returned data, within `deadline`.
fn wait_for(
    deadline: Instant,
    mut read: impl FnMut() -> io::Result<usize>,
) -> Result<usize, ProxyError> {
    loop {
        match read() {
            Ok(0) => return Err(ProxyError::Closed),
            Ok(n) if Instant::now() <= deadline => return Ok(n),
            Ok(_) => return Err(ProxyError::Timeout),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ProxyError::Timeout)
            }
            Err(e) => return Err(ProxyError::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests;
