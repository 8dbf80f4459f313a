//! Reading DATA from the connection: the live reader (`RawStreamType::Direct`), the spool for
//! the other stream types, and the `RawStream` handed to `on_receive_raw`.

use std::fs::File;
use std::io::{self, BufRead, Cursor, Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use crate::connection::Connection;
use crate::data::{BareNewlinePolicy, DataDecoder, Pieces};
use crate::error::{Error, Result};

/// Largest single copy of message data. glibc copies more than about 2 KiB with `rep movsb`,
/// which runs at under 3 GB/s on AMD EPYC when source and destination are not aligned alike
/// (measured: 1.9 GB/s against 35 GB/s for 2 KiB pieces); the socket buffer and the caller's
/// buffer are aligned however they happen to be, so `Read::read` on a `DataReader` copies in
/// pieces this size (issue 5: CPU per MB received). `BufRead` hands out the read buffer itself.
const COPY_CHUNK: usize = 2048;

/// How a message's data ended, once it was read to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataStatus {
    /// Complete and within every limit.
    Complete,
    /// Larger than `max_message_size` (RFC 1870 §6: 552 5.3.4).
    TooLarge,
    /// A bare CR or LF under `BareNewlinePolicy::Reject` (550 5.6.11).
    BareNewline,
    /// A text line longer than `max_data_line_length` (RFC 5321 §4.5.3.1.6); answered with
    /// RFC 5321 §4.5.3.1.10's "500 Line too long".
    LineTooLong,
}

/// The deadline of message data (DATA or a BDAT chunk), as Postfix's `smtpd_min_data_rate`
/// keeps it: it starts `block_timeout` (RFC 5321 §4.5.3.2.5) away, every `min_rate` octets
/// received move it one second later, and it is never more than `block_timeout` away. The
/// cap is what stops a client from banking time: without it, 9 MB sent fast at a 500 B/s
/// minimum would buy five hours of one byte every three minutes.
/// (The limits are passed to each call, not kept: a `DataReader` holds them already.)
#[derive(Clone, Copy, Debug)]
pub(crate) struct DataDeadline {
    deadline: Instant,
    /// Octets already credited.
    credited: u64,
}

impl DataDeadline {
    pub(crate) fn new(block_timeout: Duration, now: Instant) -> DataDeadline {
        DataDeadline {
            deadline: crate::config::deadline(now, block_timeout),
            credited: 0,
        }
    }

    /// How long the next read may wait, `bytes` octets into the data at `now`, with
    /// `min_rate` bytes per second (0 = off: each read may wait `block_timeout`);
    /// `Err(Timeout)` when the client is already too slow.
    pub(crate) fn next_wait(
        &mut self,
        (block_timeout, min_rate): (Duration, u64),
        bytes: u64,
        now: Instant,
    ) -> Result<Duration> {
        if min_rate == 0 {
            return Ok(block_timeout);
        }
        let earned = bytes.saturating_sub(self.credited);
        self.credited = bytes;
        let nanos = u128::from(earned % min_rate) * 1_000_000_000 / u128::from(min_rate);
        let credit = Duration::from_secs(earned / min_rate)
            .saturating_add(Duration::from_nanos(nanos as u64));
        let cap = crate::config::deadline(now, block_timeout);
        self.deadline = self
            .deadline
            .checked_add(credit)
            .map_or(cap, |later| later.min(cap));
        match self.deadline.checked_duration_since(now) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(Error::Timeout),
        }
    }
}

/// The limits a DATA read enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DataLimits {
    pub(crate) policy: BareNewlinePolicy,
    /// 0 = unlimited.
    pub(crate) max_size: u64,
    pub(crate) max_line: Option<usize>,
    pub(crate) block_timeout: Duration,
    /// Bytes per second; 0 = off.
    pub(crate) min_rate: u64,
}

/// Reads the message after DATA's 354 from the connection: dot-unstuffed, ending at exactly
/// CRLF.CRLF (RFC 5321 §4.1.1.4), with the size, line and bare-newline limits applied.
/// `on_receive_raw` reads it directly with `RawStreamType::Direct`.
///
/// Through [`BufRead`] the message comes straight out of the connection's read buffer, with no
/// copy: `fill_buf` returns up to a block of it at a time, and less where the decoder dropped a
/// byte (a stuffed dot) or put one in (a CR before a bare LF).
pub struct DataReader<'c> {
    conn: &'c mut Connection,
    decoder: DataDecoder,
    limits: DataLimits,
    /// The block decoded last, as pieces of the connection's buffered input: the message is
    /// handed out from the read buffer itself, not copied (issue 5: CPU per MB received).
    pieces: Pieces,
    /// The piece being handed out, and how much of it has been.
    piece: usize,
    offset: usize,
    /// Buffered input that block took: consumed when the next block is decoded.
    used: usize,
    status: DataStatus,
    deadline: DataDeadline,
    /// The connection failed (timeout, client gone): every later read fails the same way at
    /// once, instead of waiting a second time or reading on after a timeout.
    broken: Option<Box<Error>>,
}

impl std::fmt::Debug for DataReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataReader")
            .field("decoded", &self.decoder.decoded_len())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl<'c> DataReader<'c> {
    pub(crate) fn new(conn: &'c mut Connection, limits: DataLimits) -> DataReader<'c> {
        conn.use_data_buffer();
        conn.in_data = true;
        DataReader {
            conn,
            decoder: DataDecoder::new(limits.policy),
            limits,
            pieces: Pieces::default(),
            piece: 0,
            offset: 0,
            used: 0,
            status: DataStatus::Complete,
            deadline: DataDeadline::new(limits.block_timeout, Instant::now()),
            broken: None,
        }
    }

    /// Message octets decoded so far.
    pub fn bytes_read(&self) -> u64 {
        self.decoder.decoded_len()
    }

    /// True once the end-of-data line was read and everything was handed out.
    pub fn is_finished(&self) -> bool {
        self.decoder.is_done() && self.rest_of_piece().is_none()
    }

    /// The read timeout for the next block (see [`DataDeadline`]).
    fn next_timeout(&mut self) -> Result<Duration> {
        let rate = (self.limits.block_timeout, self.limits.min_rate);
        let bytes = self.decoder.decoded_len();
        self.deadline.next_wait(rate, bytes, Instant::now())
    }

    /// Decodes the next block into `self.pieces`, after giving the connection back the input
    /// of the last one. `Ok(false)` at the end of data.
    fn decode_block(&mut self) -> Result<bool> {
        self.release_block();
        if self.decoder.is_done() {
            return Ok(false);
        }
        if let Some(e) = &self.broken {
            return Err(e.again());
        }
        if self.conn.buffered().is_empty() {
            if let Err(e) = self.fill() {
                let again = e.again();
                self.broken = Some(Box::new(e));
                return Err(again);
            }
        }
        // The pieces refer to the buffered input, which stays as it is until `release_block`.
        self.used = self
            .decoder
            .decode_into(self.conn.buffered(), &mut self.pieces);
        self.check_limits();
        Ok(true)
    }

    /// Reads more input within the DATA timeouts.
    fn fill(&mut self) -> Result<()> {
        let timeout = self.next_timeout().map_err(|e| self.conn.fail(e))?;
        self.conn.set_data_read_timeout(timeout)?;
        self.conn.fill()
    }

    /// Consumes the input the last block was decoded from, and forgets its pieces.
    fn release_block(&mut self) {
        self.conn.consume(self.used);
        self.used = 0;
        self.pieces.clear();
        (self.piece, self.offset) = (0, 0);
    }

    /// What is left of the piece being handed out; `None` when the block is all handed out.
    fn rest_of_piece(&self) -> Option<&[u8]> {
        let piece = self.pieces.get(self.piece)?;
        let input = self.conn.buffered();
        self.pieces.slice(piece, input).get(self.offset..)
    }

    fn check_limits(&mut self) {
        if self.status != DataStatus::Complete {
            return;
        }
        let l = &self.limits;
        if l.max_size > 0 && self.decoder.decoded_len() > l.max_size {
            self.status = DataStatus::TooLarge;
        } else if l.policy == BareNewlinePolicy::Reject && self.decoder.saw_bare_newline() {
            self.status = DataStatus::BareNewline;
        } else if l
            .max_line
            .is_some_and(|max| self.decoder.longest_line() > max)
        {
            self.status = DataStatus::LineTooLong;
        }
    }

    fn refused(&self) -> io::Error {
        let why = match self.status {
            DataStatus::TooLarge => "message exceeds the size limit",
            DataStatus::BareNewline => "bare CR or LF in message data",
            DataStatus::LineTooLong => "text line exceeds the line length limit",
            DataStatus::Complete => "message refused",
        };
        io::Error::new(io::ErrorKind::InvalidData, why)
    }

    /// Reads and throws away whatever the handler left unread, up to the end of data, and
    /// says how the message ended. `Err` only when the connection broke or timed out.
    pub(crate) fn finish(mut self) -> Result<DataStatus> {
        while self.decode_block()? {}
        self.conn.in_data = false;
        self.conn.use_command_buffer();
        Ok(self.status)
    }

    /// Copies the whole message into `sink`, up to the size limit (the rest is read and
    /// dropped), and says how it ended.
    pub(crate) fn copy_to(mut self, sink: &mut dyn Write) -> Result<DataStatus> {
        let mut sink_ok = true;
        while self.decode_block()? {
            if self.status == DataStatus::Complete && sink_ok {
                let input = self.conn.buffered();
                let written = self
                    .pieces
                    .iter()
                    .try_for_each(|piece| sink.write_all(self.pieces.slice(piece, input)));
                if let Err(e) = written {
                    log::error!("spooling message data failed: {e}");
                    sink_ok = false;
                }
            }
        }
        self.conn.in_data = false;
        self.conn.use_command_buffer();
        if !sink_ok {
            return Err(Error::Io(io::Error::other("spooling message data failed")));
        }
        Ok(self.status)
    }
}

impl Drop for DataReader<'_> {
    fn drop(&mut self) {
        // Whatever happens to the reader, the connection does not read a block twice.
        self.release_block();
    }
}

impl Read for DataReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        let pieces = buf[..n]
            .chunks_mut(COPY_CHUNK)
            .zip(avail[..n].chunks(COPY_CHUNK));
        for (to, from) in pieces {
            to.copy_from_slice(from);
        }
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for DataReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.rest_of_piece().is_none() {
            if self.status != DataStatus::Complete {
                return Err(self.refused());
            }
            match self.decode_block() {
                Ok(true) => {}
                Ok(false) => return Ok(&[]),
                Err(Error::Timeout) => return Err(io::ErrorKind::TimedOut.into()),
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
        if self.status != DataStatus::Complete {
            return Err(self.refused());
        }
        Ok(self.rest_of_piece().unwrap_or_default())
    }

    fn consume(&mut self, amt: usize) {
        let Some(left) = self.rest_of_piece().map(<[u8]>::len) else {
            return;
        };
        if amt < left {
            self.offset += amt;
        } else {
            (self.piece, self.offset) = (self.piece + 1, 0);
        }
    }
}

/// The message data handed to `on_receive_raw` (Indy's `VStream`), positioned at its start
/// (Indy 9 left it at the end).
#[derive(Debug)]
pub enum RawStream<'a> {
    /// `RawStreamType::Memory`: the whole message.
    Memory(Cursor<Vec<u8>>),
    /// `RawStreamType::File`: an anonymous temporary file, removed when dropped.
    File(File),
    /// `RawStreamType::Direct`: read live from the connection. If the client breaks a limit
    /// mid-way, a read fails with `ErrorKind::InvalidData` and the server refuses the message
    /// whatever the handler returns.
    Direct(DataReader<'a>),
}

impl RawStream<'_> {
    /// The message size when it is already known (Memory, File).
    pub fn len(&self) -> Option<u64> {
        match self {
            RawStream::Memory(c) => Some(c.get_ref().len() as u64),
            RawStream::File(f) => f.metadata().ok().map(|m| m.len()),
            RawStream::Direct(_) => None,
        }
    }

    /// Whether the message is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Reads the rest of the message and drops it, without copying it anywhere (a Direct
    /// stream is consumed straight from its buffer); returns how many octets were skipped.
    /// An error means the client broke a limit or the connection failed.
    pub fn discard(&mut self) -> io::Result<u64> {
        match self {
            RawStream::Memory(c) => {
                let left = (c.get_ref().len() as u64).saturating_sub(c.position());
                c.set_position(c.get_ref().len() as u64);
                Ok(left)
            }
            RawStream::File(f) => {
                let here = f.stream_position()?;
                let end = f.seek(SeekFrom::End(0))?;
                Ok(end.saturating_sub(here))
            }
            RawStream::Direct(r) => {
                let mut skipped = 0u64;
                loop {
                    let n = r.fill_buf()?.len();
                    if n == 0 {
                        return Ok(skipped);
                    }
                    r.consume(n);
                    skipped += n as u64;
                }
            }
        }
    }
}

impl Read for RawStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            RawStream::Memory(c) => c.read(buf),
            RawStream::File(f) => f.read(buf),
            RawStream::Direct(r) => r.read(buf),
        }
    }
}

impl Seek for RawStream<'_> {
    /// Memory and File streams seek; a Direct stream cannot.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            RawStream::Memory(c) => c.seek(pos),
            RawStream::File(f) => f.seek(pos),
            RawStream::Direct(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a Direct stream cannot seek",
            )),
        }
    }
}

/// A complete message held for delivery: DATA with Memory/File, or BDAT chunks.
pub(crate) enum Spool {
    Memory(Vec<u8>),
    File(File),
}

impl Spool {
    pub(crate) fn new(to_file: bool) -> Result<Spool> {
        if to_file {
            Ok(Spool::File(tempfile::tempfile()?))
        } else {
            Ok(Spool::Memory(Vec::new()))
        }
    }

    pub(crate) fn writer(&mut self) -> &mut dyn Write {
        match self {
            Spool::Memory(v) => v,
            Spool::File(f) => f,
        }
    }

    /// The raw stream, rewound.
    pub(crate) fn into_stream(self) -> Result<RawStream<'static>> {
        match self {
            Spool::Memory(v) => Ok(RawStream::Memory(Cursor::new(v))),
            Spool::File(mut f) => {
                f.flush()?;
                f.seek(SeekFrom::Start(0))?;
                Ok(RawStream::File(f))
            }
        }
    }

    /// The bytes in memory (a file spool is read back).
    pub(crate) fn into_bytes(self) -> Result<Vec<u8>> {
        match self {
            Spool::Memory(v) => Ok(v),
            Spool::File(mut f) => {
                f.seek(SeekFrom::Start(0))?;
                let mut v = Vec::new();
                f.read_to_end(&mut v)?;
                Ok(v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: Duration = Duration::from_secs(180);
    const RATE: (Duration, u64) = (BLOCK, 500);

    #[test]
    fn deadline_starts_one_block_away_and_runs_out() {
        let t0 = Instant::now();
        let mut d = DataDeadline::new(BLOCK, t0);
        assert_eq!(d.next_wait(RATE, 0, t0).unwrap(), BLOCK);
        assert_eq!(
            d.next_wait(RATE, 0, t0 + Duration::from_secs(100)).unwrap(),
            Duration::from_secs(80)
        );
        assert!(matches!(
            d.next_wait(RATE, 0, t0 + BLOCK),
            Err(Error::Timeout)
        ));
    }

    #[test]
    fn data_received_moves_the_deadline_at_the_minimum_rate() {
        let t0 = Instant::now();
        let mut d = DataDeadline::new(BLOCK, t0);
        // 25,000 octets at 100 s: 50 s of credit, 130 s left.
        let at = t0 + Duration::from_secs(100);
        assert_eq!(
            d.next_wait(RATE, 25_000, at).unwrap(),
            Duration::from_secs(130)
        );
        // 250 more octets: half a second more.
        let wait = d.next_wait(RATE, 25_250, at).unwrap();
        assert_eq!(wait, Duration::from_millis(130_500));
    }

    /// Postfix caps the deadline at one timeout away: 9 MB sent at once earns no five-hour
    /// allowance for a trickle afterwards.
    #[test]
    fn a_fast_start_banks_no_more_than_one_block() {
        let t0 = Instant::now();
        let mut d = DataDeadline::new(BLOCK, t0);
        assert_eq!(d.next_wait(RATE, 9_000_000, t0).unwrap(), BLOCK);
        // One octet 179 s later: the deadline was t0 + 180 s, plus 2 ms.
        let at = t0 + Duration::from_secs(179);
        assert_eq!(
            d.next_wait(RATE, 9_000_001, at).unwrap(),
            Duration::from_millis(1002)
        );
        assert!(matches!(
            d.next_wait(RATE, 9_000_002, at + Duration::from_secs(2)),
            Err(Error::Timeout)
        ));
    }

    #[test]
    fn rate_zero_gives_every_read_a_full_block() {
        let t0 = Instant::now();
        let mut d = DataDeadline::new(BLOCK, t0);
        let off = (BLOCK, 0);
        let late = t0 + Duration::from_secs(10_000);
        assert_eq!(d.next_wait(off, 0, late).unwrap(), BLOCK);
        assert_eq!(d.next_wait(off, u64::MAX, t0).unwrap(), BLOCK);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        let t0 = Instant::now();
        let mut d = DataDeadline::new(Duration::MAX, t0);
        assert!(d.next_wait((Duration::MAX, 1), u64::MAX, t0).is_ok());
    }
}
