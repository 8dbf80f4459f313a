//! Scale check: holds N idle connections (default 10,000) against a server after EHLO,
//! then sends NOOP on every one and checks that all answer 250; with `--server-pid` it reads
//! the server's RSS (VmRSS) and thread count (Threads) from /proc before and while holding.
//!
//! ```text
//! ulimit -n 65536          # both shells: the server and this program each need N+ descriptors
//! target/release/examples/smtpd --listen 127.0.0.1:2525 --discard &
//! cargo run --release --example hold -- --server 127.0.0.1:2525 --connections 10000 --server-pid $!
//! ```
//!
//! Loopback only (127.0.0.1 or ::1). Without a libc dependency it cannot call setrlimit
//! itself: it reads /proc/self/limits and, when the soft limit on open files is too low,
//! runs `prlimit --pid <self> --nofile=<hard>:<hard>` (util-linux) to raise it to the hard
//! limit, and warns if that is still not enough. Every socket has a timeout; the connects
//! are spread over worker threads, each one going through its share in phases (connect all,
//! read the greetings, EHLO all, read the replies), so a server that takes connections in a
//! burst is measured as such.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::{Command, ExitCode};
use std::thread;
use std::time::{Duration, Instant};

struct Opts {
    server: SocketAddr,
    connections: usize,
    server_pid: Option<u32>,
    workers: usize,
    timeout: Duration,
    hold: Duration,
}

const USAGE: &str =
    "usage: hold --server 127.0.0.1:PORT [--connections N (10000)] [--server-pid PID] \
[--workers W (16)] [--timeout SECS (10)] [--hold SECS (2)]";

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        server: SocketAddr::from(([127, 0, 0, 1], 2525)),
        connections: 10_000,
        server_pid: None,
        workers: 16,
        timeout: Duration::from_secs(10),
        hold: Duration::from_secs(2),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|_| format!("not a number: {s}"));
        match a.as_str() {
            "--server" => {
                let v = value()?;
                o.server = v
                    .to_socket_addrs()
                    .map_err(|e| format!("--server {v}: {e}"))?
                    .next()
                    .ok_or(format!("--server {v}: no address"))?;
            }
            "--connections" | "-n" => o.connections = num(value()?)? as usize,
            "--server-pid" => o.server_pid = Some(num(value()?)? as u32),
            "--workers" => o.workers = num(value()?)? as usize,
            "--timeout" => o.timeout = Duration::from_secs(num(value()?)?),
            "--hold" => o.hold = Duration::from_secs(num(value()?)?),
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
    if o.connections == 0 || o.connections > 100_000 || o.workers == 0 || o.workers > 256 {
        return Err("--connections must be 1..=100000 and --workers 1..=256".into());
    }
    if o.timeout.is_zero() || o.hold > Duration::from_secs(3600) {
        return Err("--timeout must be at least 1 s and --hold at most 3600 s".into());
    }
    Ok(o)
}

/// (soft, hard) limit on open files from /proc/self/limits; `None` = unlimited or unknown.
fn nofile_limits() -> (Option<u64>, Option<u64>) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Max open files") {
            let mut it = rest.split_whitespace().map(|v| v.parse::<u64>().ok());
            return (it.next().flatten(), it.next().flatten());
        }
    }
    (None, None)
}

/// Raises the soft RLIMIT_NOFILE to the hard one through `prlimit` if it is below `need`.
fn raise_nofile(need: u64) {
    let (soft, hard) = nofile_limits();
    if soft.is_none_or(|s| s >= need) {
        return;
    }
    let target = hard.map_or("unlimited".to_string(), |h| h.to_string());
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={target}:{target}"))
        .status();
    let (soft_now, _) = nofile_limits();
    match status {
        Ok(s) if s.success() => {
            eprintln!("hold: raised the open-file limit from {soft:?} to {soft_now:?}")
        }
        _ => eprintln!("hold: could not run prlimit to raise the open-file limit ({soft:?})"),
    }
    if soft_now.is_some_and(|s| s < need) {
        eprintln!("hold: warning: open-file limit {soft_now:?} < {need} needed; run `ulimit -n 65536` first");
    }
}

/// VmRSS (kB) and Threads of a process, from /proc/PID/status.
fn proc_status(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}

/// Reads one complete reply (RFC 5321 §4.2.1: the last line has a space after the code)
/// and returns its code.
fn read_reply(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16, String> {
    buf.clear();
    let mut chunk = [0u8; 1024];
    // Bounded: a reply over 64 KiB is not an SMTP server talking.
    while buf.len() < 64 * 1024 {
        let n = sock.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("closed after {:?}", String::from_utf8_lossy(buf)));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.ends_with(b"\r\n") {
            let body = &buf[..buf.len() - 2];
            let last = body.rsplit(|&b| b == b'\n').next().unwrap_or(body);
            if last.len() >= 4 && last[3] == b' ' {
                let code = std::str::from_utf8(&last[..3])
                    .ok()
                    .and_then(|c| c.parse().ok());
                return code.ok_or(format!("bad reply {:?}", String::from_utf8_lossy(buf)));
            }
        }
    }
    Err("reply too long".into())
}

/// What one worker got through.
#[derive(Default)]
struct Tally {
    held: Vec<TcpStream>,
    /// When this worker's connects were all done (before any greeting was read).
    connected: Option<Instant>,
    failures: usize,
    first_error: Option<String>,
}

impl Tally {
    fn fail(&mut self, e: String) {
        self.failures += 1;
        self.first_error.get_or_insert(e);
    }

    /// Writes `cmd` on every held socket, then reads every reply; keeps those answering
    /// with `want` (2xx for EHLO, exactly 250 for NOOP).
    fn round(&mut self, cmd: &[u8], want: impl Fn(u16) -> bool) {
        let mut buf = Vec::with_capacity(512);
        let mut sent = Vec::with_capacity(self.held.len());
        for mut s in std::mem::take(&mut self.held) {
            match s.write_all(cmd) {
                Ok(()) => sent.push(s),
                Err(e) => self.fail(format!("write: {e}")),
            }
        }
        for mut s in sent {
            match read_reply(&mut s, &mut buf) {
                Ok(code) if want(code) => self.held.push(s),
                Ok(code) => self.fail(format!(
                    "{} answered {code}",
                    String::from_utf8_lossy(cmd).trim()
                )),
                Err(e) => self.fail(e),
            }
        }
    }
}

fn worker(o: &Opts, count: usize) -> Tally {
    let mut t = Tally::default();
    let mut buf = Vec::with_capacity(512);
    let mut opened = Vec::with_capacity(count);
    for _ in 0..count {
        match TcpStream::connect_timeout(&o.server, o.timeout) {
            Ok(s) => {
                let ok = s
                    .set_read_timeout(Some(o.timeout))
                    .and(s.set_write_timeout(Some(o.timeout)));
                match ok {
                    Ok(()) => opened.push(s),
                    Err(e) => t.fail(format!("setsockopt: {e}")),
                }
            }
            Err(e) => t.fail(format!("connect: {e}")),
        }
    }
    t.connected = Some(Instant::now());
    for mut s in opened {
        match read_reply(&mut s, &mut buf) {
            Ok(220) => t.held.push(s),
            Ok(code) => t.fail(format!("greeting {code}")),
            Err(e) => t.fail(format!("greeting: {e}")),
        }
    }
    t.round(b"EHLO hold.example.org\r\n", |c| (200..300).contains(&c));
    t
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("hold: {e}");
            return ExitCode::from(2);
        }
    };
    raise_nofile(o.connections as u64 + 64);
    let before = o.server_pid.and_then(proc_status);
    if let Some((rss, threads)) = before {
        println!("server before: VmRSS {rss} kB, {threads} threads");
    }
    let workers = o.workers.min(o.connections);
    let per = |i: usize| o.connections / workers + usize::from(i < o.connections % workers);
    let started = Instant::now();
    let mut tallies: Vec<Tally> = thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let o = &o;
                s.spawn(move || worker(o, per(i)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let open_secs = started.elapsed().as_secs_f64();
    let connect_secs = tallies
        .iter()
        .filter_map(|t| t.connected)
        .max()
        .map_or(0.0, |t| t.duration_since(started).as_secs_f64());
    let held: usize = tallies.iter().map(|t| t.held.len()).sum();
    println!(
        "held {held}/{} connections after EHLO: all connected in {connect_secs:.2} s, \
         greeted and EHLO answered in {open_secs:.2} s",
        o.connections
    );
    // Let the server settle (threads parked in read) before sampling it.
    thread::sleep(o.hold);
    let during = o.server_pid.and_then(proc_status);
    if let (Some((rss0, thr0)), Some((rss, threads))) = (before, during) {
        let per_conn = (rss.saturating_sub(rss0)) as f64 / held.max(1) as f64;
        println!(
            "server holding: VmRSS {rss} kB ({:.1} MB), {threads} threads (+{}); {per_conn:.1} KB per connection",
            rss as f64 / 1024.0,
            threads.saturating_sub(thr0)
        );
    }
    let started = Instant::now();
    thread::scope(|s| {
        for t in tallies.iter_mut() {
            s.spawn(move || t.round(b"NOOP\r\n", |c| c == 250));
        }
    });
    let answered: usize = tallies.iter().map(|t| t.held.len()).sum();
    println!(
        "NOOP answered 250 on {answered}/{} connections in {:.2} s",
        o.connections,
        started.elapsed().as_secs_f64()
    );
    let failures: usize = tallies.iter().map(|t| t.failures).sum();
    if failures > 0 {
        let first = tallies
            .iter()
            .find_map(|t| t.first_error.clone())
            .unwrap_or_default();
        eprintln!("hold: {failures} connections failed; first error: {first}");
    }
    // Closing is the QUIT: the sockets drop here; the server sees end of stream.
    drop(tallies);
    if answered == o.connections {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
