//! Elsewhere sessions are never parked: every session keeps its thread.

use super::*;

impl Parking {
    pub(crate) fn new() -> io::Result<Parking> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "parking needs epoll",
        ))
    }
    pub(super) fn register(&self, _: &TcpStream, _: u64) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
    pub(super) fn wait(&self, timeout: Duration) -> usize {
        thread::sleep(timeout);
        0
    }
    pub(super) fn wake_pollers(&self) {}
}

pub(crate) fn recv_now(_: &TcpStream, _: &mut [u8]) -> io::Result<Option<usize>> {
    Ok(None)
}

pub(crate) fn send_now(_: &TcpStream, _: &[u8]) -> io::Result<usize> {
    Ok(0)
}
