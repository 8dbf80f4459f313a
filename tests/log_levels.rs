//! What a client does is the client's doing, not the server's: no ERROR or WARN is logged for
//! a reset mid-DATA (in the modes that spool the message, Message here), for a TLS handshake
//! the client breaks off or garbles, or for the sessions a `stop()` ends. Its own test binary,
//! as it installs a process-wide logger; one test, so the scenarios' records do not mix.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::tls_client::{cert, server_config};
use common::{start, Client};
use indy_smtp::ReceiveMode;
use parking_lot::Mutex;

static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS
            .lock()
            .push((record.level(), record.args().to_string()));
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

/// The WARN and ERROR records logged since the last call.
fn take_loud() -> Vec<(log::Level, String)> {
    let mut records = RECORDS.lock();
    let loud = records
        .iter()
        .filter(|(level, _)| *level <= log::Level::Warn)
        .cloned()
        .collect();
    records.clear();
    loud
}

#[test]
fn client_faults_are_not_logged_as_server_errors() {
    log::set_logger(&LOGGER).expect("the only logger of this binary");
    log::set_max_level(log::LevelFilter::Info);
    a_reset_mid_data();
    tls_handshakes_broken_off_and_a_stop();
}

fn a_reset_mid_data() {
    let s = start(|srv| {
        srv.receive_mode = ReceiveMode::Message;
        srv.on_receive_message = Some(Box::new(|_, _| Ok(())));
        // Not called in Message mode (start() would warn about it).
        srv.on_receive_raw = None;
    });
    for _ in 0..4 {
        let mut c = Client::connect(s.addr);
        c.expect("EHLO client.example", 250);
        c.expect("MAIL FROM:<a@b.example>", 250);
        c.expect("RCPT TO:<c@d.example>", 250);
        c.expect("DATA", 354);
        let mut tcp: TcpStream = c.writer.try_clone().unwrap();
        let _ = tcp.write_all(&[b"Subject: x\r\n\r\n".as_slice(), &[b'y'; 300_000]].concat());
        // SO_LINGER 0: close sends an RST, as a client that crashed would.
        socket2::SockRef::from(&tcp)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(tcp);
        drop(c);
    }
    assert!(common::wait_until(|| s.handle.active_sessions() == 0));
    let loud = take_loud();
    assert!(loud.is_empty(), "{loud:?}");
}

/// Clients that close or reset in the middle of a STARTTLS handshake, or send plain text where
/// the ClientHello belongs, and a handshake still waiting when the server stops.
fn tls_handshakes_broken_off_and_a_stop() {
    let c = cert();
    let s = start(|srv| srv.tls = Some(server_config(&c)));
    let starttls = || {
        let mut client = Client::connect(s.addr);
        client.expect("EHLO client.example", 250);
        client.expect("STARTTLS", 220);
        client
    };
    let hello_start = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
    let mut closed = starttls();
    closed.send(&hello_start);
    drop(closed);
    let reset = starttls();
    socket2::SockRef::from(&reset.writer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(reset);
    let mut garbled = starttls();
    garbled.send(b"EHLO client.example\r\n");
    drop(garbled);
    assert!(common::wait_until(|| s.handle.active_sessions() == 0));
    let mut waiting = starttls();
    waiting.send(&hello_start);
    s.handle.stop();
    drop(waiting);
    let loud = take_loud();
    assert!(loud.is_empty(), "{loud:?}");
}
