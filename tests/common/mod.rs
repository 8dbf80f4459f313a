//! Shared helpers for the socket tests: a server on 127.0.0.1:0 that records what it
//! receives, and a raw line-level client with timeouts.
#![allow(dead_code)]

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
            from: thread.from.as_ref().map(|f| f.address.clone()).unwrap_or_default(),
            rcpts: thread.rcpt_addresses().iter().map(|s| s.to_string()).collect(),
            data,
        });
        Ok(())
    }));
    configure(&mut server);
    let handle = server.start().expect("server starts");
    let addr = handle.local_addr();
    TestServer { handle, addr, inbox }
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
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        let writer = stream.try_clone().unwrap();
        Client { reader: BufReader::new(stream), writer, greeting: (0, String::new()) }
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Reads one reply: the code and the text lines joined by '\n' (code and separator
    /// stripped from each line). Panics on timeout or a malformed line.
    pub fn read_reply(&mut self) -> (u16, String) {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read reply");
            assert!(n > 0, "connection closed while waiting for a reply (got {lines:?})");
            assert!(line.ends_with("\r\n"), "reply line not CRLF-terminated: {line:?}");
            let code: u16 = line[..3].parse().expect("reply code");
            let sep = line.as_bytes()[3];
            lines.push((code, line[4..line.len() - 2].to_string()));
            if sep == b' ' {
                let text = lines.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("\n");
                return (code, text);
            }
            assert_eq!(sep, b'-', "bad reply separator in {line:?}");
        }
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
