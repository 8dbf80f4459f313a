//! Shared helpers for the socket tests: a server on 127.0.0.1:0 that records what it
//! receives, and a raw line-level client with timeouts.
#![allow(dead_code)]

pub mod lettre_client;
pub mod tls_client;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use indy_smtp::{RawStreamType, Reply, ServerHandle, SmtpServer};
use parking_lot::Mutex;

/// A message as the server's receive event saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub from: String,
    pub rcpts: Vec<String>,
    pub data: Vec<u8>,
}

/// A running test server and what it received.
pub struct TestServer {
    pub handle: ServerHandle,
    pub addr: SocketAddr,
    pub inbox: Arc<Mutex<Vec<Delivered>>>,
}

impl TestServer {
    pub fn messages(&self) -> Vec<Delivered> {
        self.inbox.lock().clone()
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }
}

/// A server with test-friendly settings (127.0.0.1:0, Memory raw stream recording into
/// `inbox`, short timeouts); `configure` adjusts it before start.
pub fn start(configure: impl FnOnce(&mut SmtpServer)) -> TestServer {
    let inbox: Arc<Mutex<Vec<Delivered>>> = Arc::default();
    let mut server = SmtpServer::new();
    server.hostname = "test.example".into();
    server.bindings = vec!["127.0.0.1:0".parse().unwrap()];
    server.raw_stream_type = RawStreamType::Memory;
    server.limits.command_timeout = Duration::from_secs(10);
    server.limits.data_timeout = Duration::from_secs(10);
    server.stop_timeout = Duration::from_secs(5);
    let sink = Arc::clone(&inbox);
    server.on_receive_raw = Some(Box::new(move |thread, stream| {
        let mut data = Vec::new();
        stream
            .read_to_end(&mut data)
            .map_err(|e| Reply::new(451, e.to_string()))?;
        sink.lock().push(Delivered {
            from: thread
                .from
                .as_ref()
                .map(|f| f.address.clone())
                .unwrap_or_default(),
            rcpts: thread
                .rcpt_addresses()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            data,
        });
        Ok(())
    }));
    configure(&mut server);
    let handle = server.start().expect("server starts");
    let addr = handle.local_addr();
    TestServer {
        handle,
        addr,
        inbox,
    }
}

/// A raw SMTP client: byte-exact writes, reply parsing, 10 s timeouts everywhere.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
    pub greeting: (u16, String),
}

impl Client {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> Client {
        let mut c = Client::connect_silent(addr);
        c.greeting = c.read_reply();
        c
    }

    /// Connects without reading anything.
    pub fn connect_silent(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        Client::from_stream(stream)
    }

    /// Wraps a connected stream (10 s timeouts), reading nothing.
    pub fn from_stream(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        Client {
            reader: BufReader::new(stream),
            writer,
            greeting: (0, String::new()),
        }
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Reads one reply: the code and the text lines joined by '\n' (code and separator
    /// stripped from each line). Panics on timeout or a malformed line.
    pub fn read_reply(&mut self) -> (u16, String) {
        read_reply_from(&mut self.reader)
    }

    /// Reads one reply line as raw text including CRLF (for byte-exact checks).
    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read line");
        line
    }

    /// Sends a command line (CRLF added) and reads the reply.
    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_reply()
    }

    /// Sends a command and asserts the reply code; returns the text.
    pub fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line);
        assert_eq!(got, code, "{line:?} answered {got} {text:?}");
        text
    }

    /// EHLO, MAIL, RCPTs, DATA with `body` dot-stuffed; returns the final reply.
    pub fn send_mail(&mut self, from: &str, rcpts: &[&str], body: &[u8]) -> (u16, String) {
        self.expect("EHLO client.example", 250);
        self.expect(&format!("MAIL FROM:<{from}>"), 250);
        for r in rcpts {
            self.expect(&format!("RCPT TO:<{r}>"), 250);
        }
        self.expect("DATA", 354);
        self.send(&indy_smtp::data::dot_stuff(body));
        self.read_reply()
    }

    /// True when the server has closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Reads one reply as it came over the wire: every line with its code, separator and CRLF
/// (for byte-exact checks of single- and multi-line replies).
pub fn read_raw_reply(c: &mut Client) -> String {
    let mut out = String::new();
    loop {
        let line = c.read_line();
        assert!(
            line.len() >= 5 && line.ends_with("\r\n"),
            "bad reply line {line:?} (after {out:?})"
        );
        out.push_str(&line);
        match line.as_bytes()[3] {
            b' ' => return out,
            b'-' => continue,
            _ => panic!("bad reply separator in {line:?}"),
        }
    }
}

/// Sends a command line (CRLF added) and returns its reply byte for byte.
pub fn raw_cmd(c: &mut Client, line: &str) -> String {
    c.send(format!("{line}\r\n").as_bytes());
    read_raw_reply(c)
}

/// Polls `cond` every 10 ms for up to 10 s; returns whether it became true.
pub fn wait_until(cond: impl Fn() -> bool) -> bool {
    for _ in 0..1000 {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// The next `n` replies.
pub fn replies(c: &mut Client, n: usize) -> Vec<(u16, String)> {
    (0..n).map(|_| c.read_reply()).collect()
}

/// The codes of `replies`.
pub fn codes(replies: &[(u16, String)]) -> Vec<u16> {
    replies.iter().map(|(code, _)| *code).collect()
}

/// Sends a command line and asserts its reply is exactly `want` (all lines, CRLFs included).
#[track_caller]
pub fn expect_raw(c: &mut Client, line: &str, want: &str) {
    assert_eq!(raw_cmd(c, line), want, "reply to {line:?}");
}

/// Sends a command line and asserts its reply starts with `prefix` (e.g. `"503 5.5.1 "`).
#[track_caller]
pub fn expect_prefix(c: &mut Client, line: &str, prefix: &str) {
    let raw = raw_cmd(c, line);
    assert!(
        raw.starts_with(prefix),
        "reply to {line:?}: want {prefix:?}..., got {raw:?}"
    );
}

/// Plays a dialogue, one step a line (leading blanks ignored): `C: text` sends `text` + CRLF;
/// the `S: text` lines after it are the exact reply expected (CRLF added to each, several
/// make one multi-line reply); `S^ text` only checks that the reply starts with `text`.
#[track_caller]
pub fn converse(c: &mut Client, script: &str) {
    let mut want: Option<(String, bool)> = None;
    let mut last_sent = String::new();
    let check = |c: &mut Client, want: &mut Option<(String, bool)>, sent: &str| {
        if let Some((text, prefix)) = want.take() {
            let got = read_raw_reply(c);
            if prefix {
                assert!(
                    got.starts_with(&text),
                    "after {sent:?}: want {text:?}..., got {got:?}"
                );
            } else {
                assert_eq!(got, text, "reply to {sent:?}");
            }
        }
    };
    for step in script
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty())
    {
        if let Some(line) = step.strip_prefix("C:") {
            check(c, &mut want, &last_sent);
            let line = line.strip_prefix(' ').unwrap_or(line);
            c.send(format!("{line}\r\n").as_bytes());
            last_sent = line.to_string();
        } else if let Some(text) = step.strip_prefix("S^ ") {
            assert!(want.is_none(), "S^ must be alone: {step:?}");
            want = Some((text.to_string(), true));
        } else if let Some(text) = step.strip_prefix("S: ") {
            let (acc, _) = want.get_or_insert_with(|| (String::new(), false));
            acc.push_str(text);
            acc.push_str("\r\n");
        } else {
            panic!("bad dialogue step {step:?}");
        }
    }
    check(c, &mut want, &last_sent);
}

/// Reads one SMTP reply from any buffered reader (plain or TLS): the code and the text lines
/// joined by '\n'. Panics on timeout, a closed connection or a malformed line.
pub fn read_reply_from(r: &mut impl BufRead) -> (u16, String) {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("read reply");
        assert!(
            n > 0,
            "connection closed while waiting for a reply (got {lines:?})"
        );
        assert!(
            line.ends_with("\r\n"),
            "reply line not CRLF-terminated: {line:?}"
        );
        let code: u16 = line[..3].parse().expect("reply code");
        let sep = line.as_bytes()[3];
        lines.push(line[4..line.len() - 2].to_string());
        if sep == b' ' {
            return (code, lines.join("\n"));
        }
        assert_eq!(sep, b'-', "bad reply separator in {line:?}");
    }
}

/// A shared list that event closures append to.
pub type Log<T> = Arc<Mutex<Vec<T>>>;

pub fn log<T>() -> Log<T> {
    Arc::default()
}

/// The threads of this test process now (from /proc/self/status).
pub fn threads_of_this_process() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: line")
}

/// [`start`] with room for many bad commands, for tests that send them on purpose.
pub fn server_with(configure: impl FnOnce(&mut SmtpServer)) -> TestServer {
    start(|s| {
        s.limits.max_bad_commands = 1000;
        configure(s);
    })
}
