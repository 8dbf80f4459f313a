//! The socket under a connection: plain TCP shared with the session registry, or TLS.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

/// The socket, plain or TLS.
pub(crate) enum Stream {
    Plain(SharedTcp),
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream<SharedTcp>>),
    /// Only while switching to TLS.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Gone,
}

impl Stream {
    pub(crate) fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(&s.0),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Some(&s.sock.0),
            Stream::Gone => None,
        }
    }
}

/// The session's socket, shared with the server's session registry (which shuts it down on
/// stop) without costing a second file descriptor per connection, as `try_clone` would.
pub(crate) struct SharedTcp(pub(crate) Arc<TcpStream>);

impl Read for SharedTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for SharedTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
            Stream::Gone => Err(gone()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
            Stream::Gone => Err(gone()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
            Stream::Gone => Ok(()),
        }
    }
}
