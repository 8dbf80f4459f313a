//! A client that resets its connection mid-DATA is the client's doing, not the server's:
//! no ERROR or WARN is logged for it, in the modes that spool the message (Message here).
//! Its own test binary, as it installs a process-wide logger.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

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

#[test]
fn a_reset_mid_data_is_not_logged_as_a_server_error() {
    log::set_logger(&LOGGER).expect("the only logger of this binary");
    log::set_max_level(log::LevelFilter::Info);
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
    let loud: Vec<_> = RECORDS
        .lock()
        .iter()
        .filter(|(level, _)| *level <= log::Level::Warn)
        .cloned()
        .collect();
    assert!(loud.is_empty(), "{loud:?}");
}
