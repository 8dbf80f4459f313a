//! A bug met while a connection is admitted (here: a logger that panics on the session's
//! first log line) costs that one client, never a connection slot: the client is closed, the
//! counts go back down, and the server goes on admitting (max_connections_per_ip = 1 shows
//! it). Its own test binary, as it installs a process-wide logger.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{start, Client};

/// Panics on the first "connect from" record, then logs nothing.
struct PanicOnce(AtomicBool);

impl log::Log for PanicOnce {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let first = record.args().to_string().contains("connect from")
            && !self.0.swap(true, Ordering::SeqCst);
        if first {
            panic!("a bug while admitting");
        }
    }
    fn flush(&self) {}
}

static LOGGER: PanicOnce = PanicOnce(AtomicBool::new(false));

#[test]
fn a_panic_while_admitting_gives_the_slot_back() {
    log::set_logger(&LOGGER).expect("the only logger of this binary");
    log::set_max_level(log::LevelFilter::Info);
    let s = start(|srv| srv.limits.max_connections_per_ip = 1);
    let mut first = std::net::TcpStream::connect(s.addr).unwrap();
    first
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let _ = first.read_to_end(&mut got);
    assert!(got.is_empty(), "greeted after all: {got:?}");
    assert!(LOGGER.0.load(Ordering::SeqCst), "the logger never panicked");
    assert!(common::wait_until(|| s.handle.active_sessions() == 0));
    // The per-address slot is free again: the next client is greeted, not refused.
    let mut c = Client::connect(s.addr);
    assert_eq!(c.greeting.0, 220);
    c.expect("NOOP", 250);
}
