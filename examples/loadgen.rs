//! An end-to-end SMTP load generator, so the server can be measured without Postfix's
//! `smtp-source`: N sessions (threads) each send M messages of S bytes, and the run prints
//! msgs/s, MB/s and the p50/p99/max latency of one message (MAIL to the final 250).
//!
//! ```text
//! cargo run --release --example smtpd -- --listen 127.0.0.1:2525 --discard &
//! cargo run --release --example loadgen -- --server 127.0.0.1:2525 \
//!     --sessions 10 --messages 500 --size 1024 [--pipelining] [--new-connection-per-message]
//! ```
//!
//! Loopback only (127.0.0.1 or ::1): it refuses any other address so that it cannot be
//! pointed at someone else's server. Every socket has a read and write timeout, and every
//! loop is bounded by the message count, so a stuck server fails the run instead of hanging.
//! Exit status 1 if any message was not accepted with a 2xx.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use indy_smtp::data::dot_stuff_into;

struct Opts {
    server: SocketAddr,
    sessions: usize,
    messages: usize,
    size: usize,
    pipelining: bool,
    conn_per_msg: bool,
    timeout: Duration,
}

const USAGE: &str =
    "usage: loadgen --server 127.0.0.1:PORT [--sessions N] [--messages M per session] \
[--size BYTES] [--pipelining] [--new-connection-per-message] [--timeout SECS]";

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        server: SocketAddr::from(([127, 0, 0, 1], 2525)),
        sessions: 10,
        messages: 500,
        size: 1024,
        pipelining: false,
        conn_per_msg: false,
        timeout: Duration::from_secs(30),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let num = |s: String, name: &str| {
            s.parse::<usize>()
                .map_err(|_| format!("{name}: not a number: {s}"))
        };
        match a.as_str() {
            "--server" => {
                let v = value("--server")?;
                o.server = v
                    .to_socket_addrs()
                    .map_err(|e| format!("--server {v}: {e}"))?
                    .next()
                    .ok_or(format!("--server {v}: no address"))?;
            }
            "--sessions" => o.sessions = num(value(&a)?, &a)?,
            "--messages" => o.messages = num(value(&a)?, &a)?,
            "--size" => o.size = num(value(&a)?, &a)?,
            "--timeout" => o.timeout = Duration::from_secs(num(value(&a)?, &a)? as u64),
            "--pipelining" => o.pipelining = true,
            "--new-connection-per-message" => o.conn_per_msg = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if !o.server.ip().is_loopback() {
        return Err(format!(
            "refusing {}: loopback addresses only (127.0.0.1, ::1)",
            o.server
        ));
    }
    if o.sessions == 0 || o.sessions > 10_000 || o.messages == 0 || o.messages > 10_000_000 {
        return Err("--sessions must be 1..=10000 and --messages 1..=10000000".into());
    }
    if o.size > 100 * 1024 * 1024 || o.timeout.is_zero() {
        return Err("--size must be at most 100 MiB and --timeout at least 1 s".into());
    }
    Ok(o)
}

/// A message of about `size` bytes (headers, then 76-column lines), dot-stuffed with its
/// terminating CRLF.CRLF (RFC 5321 §4.5.2, §4.1.1.4).
fn wire_message(size: usize, session: usize) -> Vec<u8> {
    let mut body = format!(
        "From: <loadgen@example.org>\r\nTo: <sink@example.com>\r\nSubject: loadgen session {session}\r\n\
         Message-ID: <{session}.loadgen@example.org>\r\n\r\n"
    )
    .into_bytes();
    let mut n = 0usize;
    while body.len() + 2 < size {
        let line_len = 74.min(size - body.len() - 2);
        body.extend((0..line_len).map(|i| b'a' + ((i + n) % 26) as u8));
        body.extend_from_slice(b"\r\n");
        n += 1;
    }
    let mut wire = Vec::with_capacity(body.len() + 8);
    dot_stuff_into(&body, &mut wire);
    wire
}

/// One client connection: a buffered reader and a writer on the same socket.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
}

impl Conn {
    fn open(addr: SocketAddr, timeout: Duration) -> Result<Conn, String> {
        let tcp =
            TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
        tcp.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let writer = tcp.try_clone().map_err(|e| e.to_string())?;
        let mut c = Conn {
            reader: BufReader::with_capacity(4096, tcp),
            writer,
            line: String::new(),
        };
        c.expect(2, "greeting")?;
        c.send(b"EHLO loadgen.example.org\r\n")?;
        c.expect(2, "EHLO")?;
        Ok(c)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.writer
            .write_all(bytes)
            .map_err(|e| format!("write: {e}"))
    }

    /// Reads one reply (all its lines, RFC 5321 §4.2.1) and checks its class digit.
    fn expect(&mut self, class: u8, what: &str) -> Result<(), String> {
        // A reply of more than 100 lines is not an SMTP server talking.
        for _ in 0..100 {
            self.line.clear();
            let n = self
                .reader
                .read_line(&mut self.line)
                .map_err(|e| format!("{what}: read: {e}"))?;
            let bytes = self.line.as_bytes();
            if n == 0 {
                return Err(format!("{what}: connection closed"));
            }
            if bytes.len() < 4 || bytes[0] != b'0' + class {
                return Err(format!(
                    "{what}: unexpected reply {:?}",
                    self.line.trim_end()
                ));
            }
            if bytes[3] != b'-' {
                return Ok(());
            }
        }
        Err(format!("{what}: endless multi-line reply"))
    }

    /// One mail transaction; returns once the final reply to the data is in.
    fn transaction(
        &mut self,
        envelope: &[u8],
        message: &[u8],
        pipelining: bool,
    ) -> Result<(), String> {
        if pipelining {
            // RFC 2920 §3.1: MAIL, RCPT and DATA in one write; DATA ends the group.
            self.send(envelope)?;
            self.expect(2, "MAIL")?;
            self.expect(2, "RCPT")?;
        } else {
            let mut lines = envelope.split_inclusive(|&b| b == b'\n');
            for what in ["MAIL", "RCPT"] {
                self.send(lines.next().unwrap_or_default())?;
                self.expect(2, what)?;
            }
            self.send(lines.next().unwrap_or_default())?;
        }
        self.expect(3, "DATA")?;
        self.send(message)?;
        self.expect(2, "end of data")
    }

    fn quit(mut self) {
        if self.send(b"QUIT\r\n").is_ok() {
            let _ = self.expect(2, "QUIT");
        }
    }
}

struct SessionResult {
    latencies_us: Vec<u32>,
    errors: usize,
    first_error: Option<String>,
}

fn session(o: &Opts, id: usize) -> SessionResult {
    let envelope = b"MAIL FROM:<loadgen@example.org>\r\nRCPT TO:<sink@example.com>\r\nDATA\r\n";
    let message = wire_message(o.size, id);
    let mut r = SessionResult {
        latencies_us: Vec::with_capacity(o.messages),
        errors: 0,
        first_error: None,
    };
    let fail = |r: &mut SessionResult, e: String| {
        r.errors += 1;
        r.first_error.get_or_insert(e);
    };
    let mut conn: Option<Conn> = None;
    for _ in 0..o.messages {
        let t0 = Instant::now();
        if conn.is_none() {
            match Conn::open(o.server, o.timeout) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    fail(&mut r, e);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        match c.transaction(envelope, &message, o.pipelining) {
            Ok(()) => {
                let us = t0.elapsed().as_micros();
                r.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                if o.conn_per_msg {
                    if let Some(c) = conn.take() {
                        c.quit();
                    }
                }
            }
            Err(e) => {
                // The session is out of step after an error: start a fresh one.
                fail(&mut r, e);
                conn = None;
            }
        }
    }
    if let Some(c) = conn {
        c.quit();
    }
    r
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)])
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let total = o.sessions * o.messages;
    println!(
        "loadgen: {} sessions x {} messages of {} bytes to {}{}{}",
        o.sessions,
        o.messages,
        o.size,
        o.server,
        if o.pipelining { ", pipelining" } else { "" },
        if o.conn_per_msg {
            ", new connection per message"
        } else {
            ""
        }
    );
    let started = Instant::now();
    let results: Vec<SessionResult> = thread::scope(|s| {
        let handles: Vec<_> = (0..o.sessions)
            .map(|id| {
                let o = &o;
                thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(s, move || session(o, id))
                    .expect("spawn session thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("session thread"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat: Vec<u32> = results
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let ok = lat.len();
    let errors: usize = results.iter().map(|r| r.errors).sum();
    let rate = ok as f64 / elapsed;
    println!(
        "{ok}/{total} messages accepted in {elapsed:.3} s: {rate:.0} msgs/s, {:.1} MB/s",
        rate * o.size as f64 / 1e6
    );
    println!(
        "latency per message{}: p50 {:.0} us, p99 {:.0} us, max {:.0} us",
        if o.conn_per_msg {
            " (connect to 250)"
        } else {
            " (MAIL to 250)"
        },
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0)
    );
    if errors > 0 {
        let first = results
            .iter()
            .find_map(|r| r.first_error.clone())
            .unwrap_or_default();
        eprintln!("loadgen: {errors} failed messages; first error: {first}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
