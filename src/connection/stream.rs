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
        self.socket().map(|s| &**s)
    }

    /// The TCP socket under the stream, plain or TLS.
    pub(crate) fn socket(&self) -> Option<&Arc<TcpStream>> {
        match self {
            Stream::Plain(s) => Some(&s.0),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Some(&s.sock.0),
            Stream::Gone => None,
        }
    }

    /// A read that does not wait: `None` when nothing has arrived yet. Under TLS the records
    /// the socket holds are taken in until one yields plaintext.
    pub(crate) fn read_now(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self {
            Stream::Plain(s) => crate::parking::recv_now(&s.0, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => tls_read_now(s, buf),
            Stream::Gone => Err(gone()),
        }
    }

    /// Writes what the socket takes without waiting; returns how much of `bytes` is done.
    /// Under TLS that is what rustls took in (all of it, unless its output buffer is full),
    /// and the records the socket could not take stay there: see
    /// [`output_pending`](Self::output_pending).
    pub(crate) fn write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => crate::parking::send_now(&s.0, bytes),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => {
                let taken = if bytes.is_empty() {
                    0
                } else {
                    s.conn.writer().write(bytes)?
                };
                let mut socket = NowSocket(&s.sock.0);
                while s.conn.wants_write() {
                    if s.conn.write_tls(&mut socket)? == 0 {
                        break;
                    }
                }
                Ok(taken)
            }
            Stream::Gone => Err(gone()),
        }
    }

    /// Writes `bytes` and every TLS record waiting, as long as the socket's write timeout
    /// lets each write wait. Unlike rustls's `complete_io` (which `StreamOwned` uses), a
    /// write that times out is an error at once: it never turns into a read of the client's
    /// next records, which would then sit in rustls where no wake-up reports them.
    pub(crate) fn write_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => {
                let mut rest = bytes;
                loop {
                    while !rest.is_empty() {
                        match s.conn.writer().write(rest)? {
                            0 => break,
                            n => rest = &rest[n..],
                        }
                    }
                    while s.conn.wants_write() {
                        s.conn.write_tls(&mut &*s.sock.0)?;
                    }
                    if rest.is_empty() {
                        return Ok(());
                    }
                }
            }
            Stream::Gone => Err(gone()),
        }
    }

    /// TLS records are waiting to be sent (the end of a reply, a session ticket, an alert).
    pub(crate) fn output_pending(&self) -> bool {
        match self {
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.conn.wants_write(),
            _ => false,
        }
    }
}

/// The TLS side of [`Stream::read_now`]. A clean close (close_notify) and a bare end of the
/// TCP stream both read as the end of input (`Some(0)`).
#[cfg(feature = "tls")]
fn tls_read_now(
    s: &mut crate::tls::TlsStream<SharedTcp>,
    buf: &mut [u8],
) -> io::Result<Option<usize>> {
    let mut ended = false;
    loop {
        // Records read earlier (with the handshake's last ones, say) may not be decrypted yet.
        s.conn
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        match s.conn.reader().read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Some(0)),
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            Err(_) if ended => return Ok(Some(0)),
            Err(_) => {}
        }
        match s.conn.read_tls(&mut NowSocket(&s.sock.0)) {
            Ok(n) => ended = n == 0,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// The socket read and written without waiting: `WouldBlock` when it has nothing, `Ok(0)`
/// when it takes nothing.
#[cfg(feature = "tls")]
struct NowSocket<'a>(&'a TcpStream);

#[cfg(feature = "tls")]
impl Read for NowSocket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::parking::recv_now(self.0, buf)?.ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }
}

#[cfg(feature = "tls")]
impl Write for NowSocket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::parking::send_now(self.0, buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
