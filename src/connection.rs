//! The connection's byte I/O: a read buffer with bounded line reading, a reply buffer flushed
//! when the input runs dry (RFC 2920 §3.1: one write per batch of pipelined replies; the session
//! flushes at once after the commands §3.2 names), and the switch to TLS.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::deadline as deadline_after;
use crate::error::{Error, Result};
use crate::proxy::{ProxyError, ProxyHeader};
use crate::reply::Reply;

mod line;
mod stream;
use line::LineCutter;
pub(crate) use line::LineStatus;
pub(crate) use stream::{SharedTcp, Stream};

/// Buffer for command lines; grown for DATA, shrunk back when idle so that held connections
/// stay small (issue 5: at most 12 KB per idle connection). A new connection starts with
/// `FIRST_BUF`, enough for any usual command line or pipelined envelope; a read that fills
/// the buffer grows it to `COMMAND_BUF`, and so does DATA, so that a small message is read
/// in one system call.
const FIRST_BUF: usize = 512;
const COMMAND_BUF: usize = 4 * 1024;
const DATA_BUF: usize = 64 * 1024;
/// Replies buffered past this are written even if more input is waiting.
const MAX_PENDING_REPLIES: usize = 32 * 1024;

/// One client connection's buffers.
pub(crate) struct Connection {
    stream: Stream,
    rbuf: Vec<u8>,
    rpos: usize,
    rlen: usize,
    wbuf: Vec<u8>,
    /// Cuts lines out of `rbuf`, skipping the tail of an over-long one.
    lines: LineCutter,
    /// How long a read may wait, as the session asked (command or DATA timeout).
    read_timeout: Option<Duration>,
    /// The read timeout set on the socket. It may be shorter than `read_timeout`: a read that
    /// times out early is resumed until the real deadline, so switching between the command
    /// and DATA timeouts costs no system call (issue 5: system calls per message).
    socket_read_timeout: Option<Duration>,
    /// The write timeout set on the socket (cached).
    write_timeout: Option<Duration>,
    /// Reading bulk data (DATA, BDAT): the buffer grows to `DATA_BUF` once a read fills it.
    bulk: bool,
    /// The last read left nothing on the socket: it was shorter than the buffer. Edge-triggered
    /// epoll reports only data that arrives later, so a session parks only when this holds.
    drained: bool,
    /// Whether replies carry enhanced status codes (after EHLO, RFC 2034 §3).
    pub(crate) enhanced: bool,
    /// The code of the last reply written, for the bad-command counter.
    pub(crate) last_code: u16,
    /// Replies written so far, to tell whether a user handler answered at all.
    pub(crate) replies: u64,
    /// Inside message data: after a handler panic the stream position is unknown.
    pub(crate) in_data: bool,
    /// A read, write or socket option failed (or timed out, or met the end of input): an
    /// `Err` a handler returns is then the connection's, not one of its own (a file, a
    /// database), which the client is told of and survives.
    pub(crate) failed: bool,
}

impl Connection {
    pub(crate) fn new(tcp: Arc<TcpStream>) -> Connection {
        Connection::from_stream(Stream::Plain(SharedTcp(tcp)))
    }

    pub(crate) fn from_stream(stream: Stream) -> Connection {
        Connection {
            stream,
            rbuf: Vec::new(),
            rpos: 0,
            rlen: 0,
            wbuf: Vec::new(),
            lines: LineCutter::default(),
            read_timeout: None,
            socket_read_timeout: None,
            write_timeout: None,
            bulk: false,
            drained: true,
            enhanced: false,
            last_code: 0,
            replies: 0,
            in_data: false,
            failed: false,
        }
    }

    /// Sets the socket read and write timeouts; a system call is made only for a value that
    /// changes.
    pub(crate) fn set_read_timeout(&mut self, timeout: Duration) -> Result<()> {
        let result = self.set_timeouts(timeout);
        self.noted(result)
    }

    fn set_timeouts(&mut self, timeout: Duration) -> Result<()> {
        self.set_data_read_timeout(timeout)?;
        let timeout = Some(timeout.max(Duration::from_millis(1)));
        if self.write_timeout != timeout {
            if let Some(tcp) = self.stream.tcp() {
                tcp.set_write_timeout(timeout)?;
            }
            self.write_timeout = timeout;
        }
        Ok(())
    }

    /// Sets only the read timeout, for message data: no reply is written while it is read,
    /// so the write timeout stays the command timeout. No system call: `fill` applies it.
    pub(crate) fn set_data_read_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.read_timeout = Some(timeout.max(Duration::from_millis(1)));
        Ok(())
    }

    /// Writes from now on wait at most `wait` (the socket's timeout; best effort).
    pub(crate) fn limit_write_wait(&mut self, wait: Duration) {
        let wait = Some(wait.max(Duration::from_millis(1)));
        if let Some(tcp) = self.stream.tcp() {
            if tcp.set_write_timeout(wait).is_ok() {
                self.write_timeout = wait;
            }
        }
    }

    /// Bytes received and not yet consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.rbuf[self.rpos..self.rlen]
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.rpos = (self.rpos + n).min(self.rlen);
    }

    /// Makes sure input is buffered: flushes pending replies first when it has to block
    /// (RFC 2920 §3.1), then reads. `ConnectionClosed` at end of stream.
    pub(crate) fn fill(&mut self) -> Result<()> {
        self.fill_by(None)
    }

    /// `fill` that gives up at `deadline` (default: `read_timeout` from now).
    fn fill_by(&mut self, deadline: Option<Instant>) -> Result<()> {
        let result = self.try_fill_by(deadline);
        self.noted(result)
    }

    /// Marks the connection failed when `result` is an error.
    fn noted<T>(&mut self, result: Result<T>) -> Result<T> {
        self.failed |= result.is_err();
        result
    }

    /// Marks the connection failed for a reason found above it (the client is too slow for
    /// the minimum data rate), and returns the error.
    pub(crate) fn fail(&mut self, error: Error) -> Error {
        self.failed = true;
        error
    }

    fn try_fill_by(&mut self, deadline: Option<Instant>) -> Result<()> {
        if self.rpos < self.rlen {
            return Ok(());
        }
        self.flush()?;
        let deadline =
            deadline.or_else(|| self.read_timeout.map(|t| deadline_after(Instant::now(), t)));
        self.prepare_read();
        let n = self.read_by(deadline)?;
        self.took(n)
    }

    /// Empties the buffer for the next read. It grows only after a read filled it: a small
    /// message fits in the command buffer, so no 64 KiB buffer is allocated and zeroed per
    /// message.
    fn prepare_read(&mut self) {
        let filled = self.rlen > 0 && self.rlen == self.rbuf.len();
        self.rpos = 0;
        self.rlen = 0;
        self.release_bulk_buffer();
        let grow_to = if self.bulk { DATA_BUF } else { COMMAND_BUF };
        if self.rbuf.is_empty() {
            self.rbuf.resize(FIRST_BUF, 0);
        } else if filled && self.rbuf.len() < grow_to {
            if self.bulk {
                // Nothing is buffered: the command buffer is swapped for a cached bulk one.
                self.rbuf = crate::buffers::take(grow_to);
            }
            self.rbuf.resize(grow_to, 0);
        }
    }

    fn took(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::ConnectionClosed);
        }
        self.rlen = n;
        // Under TLS a short read says nothing about the socket (rustls reads records ahead):
        // only a read that found it empty does (`fill_now`).
        self.drained = n < self.rbuf.len() && matches!(self.stream, Stream::Plain(_));
        Ok(())
    }

    /// Reads what has arrived without waiting (the buffer must be empty). False when nothing
    /// had.
    pub(crate) fn fill_now(&mut self) -> Result<bool> {
        let result = self.try_fill_now();
        self.noted(result)
    }

    fn try_fill_now(&mut self) -> Result<bool> {
        self.prepare_read();
        match self.read_now()? {
            Some(n) => self.took(n).map(|()| true),
            None => {
                self.drained = true;
                Ok(false)
            }
        }
    }

    /// The last read may have left data on the socket (see `drained`).
    pub(crate) fn maybe_more(&self) -> bool {
        !self.drained
    }

    /// One read into the buffer, waiting until `deadline` at most. The socket keeps whatever
    /// timeout it has when that is not much longer than the time left; an early timeout is
    /// resumed with the rest of the time.
    fn read_by(&mut self, deadline: Option<Instant>) -> Result<usize> {
        loop {
            if let Some(deadline) = deadline {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .filter(|d| !d.is_zero())
                    .ok_or(Error::Timeout)?;
                // 50 ms of slack: a deadline recomputed a moment later must not cost a call.
                let too_long = match self.socket_read_timeout {
                    Some(t) => t > left + Duration::from_millis(50),
                    None => true,
                };
                if too_long {
                    self.set_socket_read_timeout(left)?;
                }
            }
            if crate::parking::serves_parked_sessions() {
                // This thread serves the parked sessions: before it blocks on one client, the
                // role passes to another thread.
                if let Some(n) = self.read_now()? {
                    return Ok(n);
                }
                crate::parking::before_blocking();
            }
            match self.stream.read(&mut self.rbuf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if deadline.is_some()
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                {
                    // The socket's timeout was shorter than the time left: wait out the rest
                    // (with the full remainder, so an idle session wakes at most once more).
                    self.socket_read_timeout = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A read that does not wait: `None` when nothing has arrived.
    fn read_now(&mut self) -> Result<Option<usize>> {
        self.stream.read_now(&mut self.rbuf).map_err(Error::from)
    }

    /// Whether the session may wait for its next input parked: nothing is buffered here
    /// (what rustls holds, `fill_now` finds before the session parks: see `drained`). The
    /// beginning of a line, or the rest of an over-long one being skipped, may be pending:
    /// `take_line` goes on with it.
    pub(crate) fn can_park(&self) -> bool {
        self.rpos == self.rlen && self.stream.socket().is_some()
    }

    /// The socket, for parking.
    pub(crate) fn socket(&self) -> Option<&Arc<TcpStream>> {
        self.stream.socket()
    }

    fn set_socket_read_timeout(&mut self, timeout: Duration) -> Result<()> {
        let timeout = timeout.max(Duration::from_millis(1));
        if let Some(tcp) = self.stream.tcp() {
            tcp.set_read_timeout(Some(timeout))?;
        }
        self.socket_read_timeout = Some(timeout);
        Ok(())
    }

    /// Bulk data (DATA, BDAT) follows: the read buffer grows to `DATA_BUF` as soon as a read
    /// fills it.
    pub(crate) fn use_data_buffer(&mut self) {
        self.bulk = true;
        if self.rbuf.len() < COMMAND_BUF {
            // Once per connection: the command buffer is kept at this size afterwards.
            self.rbuf.resize(COMMAND_BUF, 0);
        }
    }

    /// Gives the bulk buffer back, so an idle session holds little memory. Commands the
    /// client pipelined after the data (RFC 2920 §3.1) move to a small buffer; more than a
    /// command buffer of them stay until they are read (then `release_bulk_buffer`).
    pub(crate) fn use_command_buffer(&mut self) {
        self.bulk = false;
        let unread = self.rlen - self.rpos;
        if self.rbuf.len() <= COMMAND_BUF || unread > COMMAND_BUF {
            return;
        }
        let small = if unread == 0 {
            Vec::new()
        } else {
            let mut small = vec![0u8; unread.max(FIRST_BUF)];
            small[..unread].copy_from_slice(&self.rbuf[self.rpos..self.rlen]);
            small
        };
        crate::buffers::give_back(std::mem::replace(&mut self.rbuf, small));
        self.rpos = 0;
        self.rlen = unread;
    }

    /// Gives back a data buffer the session no longer reads data into (one kept by a long run
    /// of commands pipelined after the data), so an idle session holds little memory. The
    /// buffer must be empty.
    pub(crate) fn release_bulk_buffer(&mut self) {
        if !self.bulk && self.rbuf.len() > COMMAND_BUF && self.rpos == self.rlen {
            crate::buffers::give_back(std::mem::take(&mut self.rbuf));
            self.rpos = 0;
            self.rlen = 0;
        }
    }

    /// Reads one line into `out` (without CRLF or LF). At most `max` octets including the
    /// line end are kept (RFC 5321 §4.5.3.1.4); a longer line is reported as soon as the
    /// limit is passed, and its remainder is skipped on the next call without being stored.
    pub(crate) fn read_line(&mut self, max: usize, out: &mut Vec<u8>) -> Result<LineStatus> {
        self.read_line_since(max, out, Instant::now())
    }

    /// [`read_line`](Self::read_line) for a wait that began at `started` (when the session
    /// was parked, say): the read timeout counts from then.
    pub(crate) fn read_line_since(
        &mut self,
        max: usize,
        out: &mut Vec<u8>,
        started: Instant,
    ) -> Result<LineStatus> {
        out.clear();
        self.finish_line(max, out, started)
    }

    /// Reads the rest of a line whose beginning `take_line` left in `out`, waiting for it.
    pub(crate) fn finish_line(
        &mut self,
        max: usize,
        out: &mut Vec<u8>,
        started: Instant,
    ) -> Result<LineStatus> {
        // The timeout bounds the whole line, not each read: a client trickling a byte at a time
        // must not hold the session forever (RFC 5321 §4.5.3.2.7 is a per-command timeout).
        let deadline = self.read_timeout.map(|t| deadline_after(started, t));
        loop {
            if let Some(status) = self.take_line(max, out) {
                return Ok(status);
            }
            self.fill_by(deadline)?;
        }
    }

    /// Moves the buffered input into `out` up to the end of a line, without reading: `None`
    /// when the buffer ran out first, with the line's beginning in `out` (a parked session
    /// keeps it there, so a client sending a command in pieces holds no thread). At most
    /// `max` octets including the line end are kept (RFC 5321 §4.5.3.1.4).
    pub(crate) fn take_line(&mut self, max: usize, out: &mut Vec<u8>) -> Option<LineStatus> {
        let avail = &self.rbuf[self.rpos..self.rlen];
        let (used, status) = self.lines.take(avail, max, out);
        self.rpos += used;
        status
    }

    /// Queues a reply; it goes out when the input runs dry or on `flush`.
    pub(crate) fn reply(&mut self, reply: &Reply) -> Result<()> {
        self.reply_text(reply, false)
    }

    /// [`reply`](Self::reply), keeping UTF-8 in its text when `utf8` (an SMTPUTF8 transaction).
    pub(crate) fn reply_text(&mut self, reply: &Reply, utf8: bool) -> Result<()> {
        reply.write_to(&mut self.wbuf, self.enhanced, utf8);
        self.last_code = reply.code();
        self.replies += 1;
        if self.wbuf.len() > MAX_PENDING_REPLIES {
            self.flush()?;
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> Result<()> {
        let result = self.try_flush();
        self.noted(result)
    }

    fn try_flush(&mut self) -> Result<()> {
        let pending = |c: &Self| !c.wbuf.is_empty() || c.stream.output_pending();
        if pending(self) && crate::parking::serves_parked_sessions() {
            // A client that does not read its replies must not stall the parked sessions:
            // what the socket cannot take at once goes out after the poller role passed on.
            let sent = self.stream.write_now(&self.wbuf)?;
            self.wbuf.drain(..sent);
            if pending(self) {
                crate::parking::before_blocking();
            }
        }
        if pending(self) {
            let result = self.stream.write_out(&self.wbuf);
            self.wbuf.clear();
            result?;
        }
        if self.wbuf.capacity() > MAX_PENDING_REPLIES * 2 {
            self.wbuf = Vec::new();
        }
        Ok(())
    }

    /// Drops every byte received but not yet read (RFC 3207 §4: nothing the client sent
    /// before the TLS handshake may be acted on afterwards).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn discard_input(&mut self) {
        self.rpos = 0;
        self.rlen = 0;
        self.lines.reset();
    }

    /// Reads the connection's PROXY protocol header, before anything else is read (see
    /// [`crate::proxy`]).
    pub(crate) fn read_proxy_header(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<ProxyHeader, ProxyError> {
        let Some(tcp) = self.stream.tcp() else {
            return Err(ProxyError::Closed);
        };
        let result = crate::proxy::read_header(tcp, timeout);
        // The socket's read timeout is now the header's: later reads must know.
        self.socket_read_timeout = Some(timeout.max(Duration::from_millis(1)));
        result
    }

    /// Whether bytes are waiting in the buffer or on the socket right now.
    pub(crate) fn input_pending(&mut self, wait: Duration) -> Result<bool> {
        if self.rpos < self.rlen {
            return Ok(true);
        }
        let Some(tcp) = self.stream.tcp() else {
            return Ok(false);
        };
        let wait = wait.max(Duration::from_millis(1));
        tcp.set_read_timeout(Some(wait))?;
        self.socket_read_timeout = Some(wait);
        let mut probe = [0u8; 1];
        match tcp.peek(&mut probe) {
            Ok(n) => Ok(n > 0),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Flushes and closes both directions.
    pub(crate) fn close(&mut self) {
        let _ = self.flush();
        // RFC 8446 §6.1: send close_notify before closing the write side, so the client can
        // tell the end of the session from a truncation.
        #[cfg(feature = "tls")]
        if let Stream::Tls(s) = &mut self.stream {
            s.conn.send_close_notify();
            // As any reply: without waiting first, so a client that reads nothing does not
            // hold up the parked sessions (the poller role is passed on before a wait).
            let _ = self.flush();
        }
        if let Some(tcp) = self.stream.tcp() {
            let _ = tcp.shutdown(Shutdown::Both);
        }
    }

    /// Replaces the plain stream by a TLS one made by `upgrade` (which runs the handshake).
    #[cfg(feature = "tls")]
    pub(crate) fn upgrade_to_tls<F>(&mut self, upgrade: F) -> Result<()>
    where
        F: FnOnce(SharedTcp) -> io::Result<crate::tls::TlsStream<SharedTcp>>,
    {
        let result = self.try_upgrade_to_tls(upgrade);
        self.noted(result)
    }

    #[cfg(feature = "tls")]
    fn try_upgrade_to_tls<F>(&mut self, upgrade: F) -> Result<()>
    where
        F: FnOnce(SharedTcp) -> io::Result<crate::tls::TlsStream<SharedTcp>>,
    {
        self.flush()?;
        self.discard_input();
        match std::mem::replace(&mut self.stream, Stream::Gone) {
            Stream::Plain(tcp) => {
                let tls = upgrade(tcp).map_err(|e| Error::Tls(e.to_string()))?;
                self.stream = Stream::Tls(Box::new(tls));
                // The handshake set the socket's timeouts itself: the next read and the next
                // `set_read_timeout` set theirs again.
                self.socket_read_timeout = None;
                self.write_timeout = None;
                // The handshake's reads may have taken the client's first records with them
                // (a command sent right after its Finished): look before parking.
                self.drained = false;
                Ok(())
            }
            other => {
                self.stream = other;
                Err(Error::Tls("TLS is already active".into()))
            }
        }
    }

    /// The TLS session, when there is one.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(&self) -> Option<&rustls::ServerConnection> {
        match &self.stream {
            Stream::Tls(s) => Some(&s.conn),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
