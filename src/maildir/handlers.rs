//! What goes with a stored message: the trace header lines, and the ready-made receive
//! handlers that store into a [`Maildir`].

use std::io::{self, BufRead, Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::Maildir;

/// RFC 5322 §2.1.1: a header line MUST NOT exceed 998 characters (without CRLF).
pub(super) const MAX_LINE: usize = 998;
use crate::events::{ReceiveMessageHandler, ReceiveRawHandler};
use crate::raw::RawStream;
use crate::reply::Reply;
use crate::thread::SmtpServerThread;

/// The trace lines prepended to a stored message:
///
/// ```text
/// X-Peer: 192.0.2.1
/// X-MailFrom: sender@example.org
/// X-RcptTo: a@example.org, b@example.org
/// ```
///
/// each ending in CRLF. CR, LF, every other control character (Unicode category Cc) and the
/// Unicode line and paragraph separators are removed from the values, so no value can end
/// the line and inject a header. The null sender gives an empty `X-MailFrom:`. An IPv4-mapped
/// IPv6 peer is written as IPv4. A recipient list longer than a header line may be
/// (RFC 5322 §2.1.1: 998) is folded after a comma (RFC 5322 §2.2.3).
///
/// ```
/// use indy_smtp::maildir::trace_header;
/// let h = trace_header([192, 0, 2, 1].into(), "a@b\r\nX-Evil: 1", &["c@d", "e@f"]);
/// assert_eq!(h, b"X-Peer: 192.0.2.1\r\nX-MailFrom: a@bX-Evil: 1\r\nX-RcptTo: c@d, e@f\r\n");
/// ```
pub fn trace_header(peer: IpAddr, from: &str, rcpts: &[&str]) -> Vec<u8> {
    let size = 40 + from.len() + rcpts.iter().map(|r| r.len() + 2).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"X-Peer: ");
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}", peer.to_canonical());
    out.extend_from_slice(b"\r\nX-MailFrom: ");
    push_clean(&mut out, from);
    out.extend_from_slice(b"\r\nX-RcptTo: ");
    let mut line_start = out.len() - "X-RcptTo: ".len();
    for (i, rcpt) in rcpts.iter().enumerate() {
        let start = out.len();
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        push_clean(&mut out, rcpt);
        // At MAX_LINE already: a fold would leave the comma at character 999.
        if i > 0 && out.len() - line_start >= MAX_LINE {
            // Too long: fold before this recipient ("," CRLF SP address); the line it ends
            // was under MAX_LINE, so with its comma it is at most MAX_LINE.
            let addr = out.split_off(start + 2);
            out.truncate(start + 1);
            out.extend_from_slice(b"\r\n ");
            line_start = out.len() - 1;
            out.extend_from_slice(&addr);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends `value` without control characters or Unicode line/paragraph separators.
fn push_clean(out: &mut Vec<u8>, value: &str) {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    let mut utf8 = [0u8; 4];
    for c in value.chars() {
        if !c.is_control() && c != '\u{2028}' && c != '\u{2029}' {
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

/// [`trace_header`] for the session's envelope: peer address, sender and recipients.
pub fn envelope_header(thread: &SmtpServerThread) -> Vec<u8> {
    let from = thread
        .from
        .as_ref()
        .map(|f| f.address.as_str())
        .unwrap_or("");
    trace_header(thread.peer_addr.ip(), from, &thread.rcpt_addresses())
}

/// An `on_receive_raw` handler storing each message in `maildir` with [`envelope_header`]
/// in front; `Ok` (the 250) only once the file is in `new/`. Works with every
/// [`RawStreamType`](crate::RawStreamType); with `Direct` the data is written as it arrives.
/// If reading the data fails (client gone, size limit, timeout) or the disk fails, nothing is
/// stored and the handler returns `451 4.3.0`, or `452 4.3.1` when the disk is full (the
/// server sends its own reply when the client broke a limit).
///
/// A message whose first line starts with a space or a tab is refused with `554 5.6.0`
/// before anything is written: after the trace lines it would continue `X-RcptTo:`, adding
/// the client's text to the recipients.
pub fn maildir_handler(maildir: Arc<Maildir>, fsync: bool) -> ReceiveRawHandler {
    Box::new(move |thread, stream| {
        match first_byte(stream) {
            Ok(Some(byte)) if folds(byte) => return Err(folded_start(thread)),
            Ok(_) => {}
            // Met at once, not again after a second wait: a timeout, the client gone.
            Err(e) => {
                let read_failed = !matches!(stream, RawStream::File(_));
                return stored(thread, Err(e), read_failed);
            }
        }
        let header = stored_header(&maildir, thread);
        let (result, read_failed) = match stream {
            // Written from the data reader's own buffer, block by block as it is decoded.
            RawStream::Direct(reader) => deliver_tracked(&maildir, &header, reader, fsync),
            RawStream::Memory(cursor) => deliver_tracked(&maildir, &header, cursor, fsync),
            // The spool file is ours: a read error there is a local one, not the client's.
            RawStream::File(file) => (maildir.deliver(&header, file, fsync), false),
        };
        stored(thread, result, read_failed)
    })
}

/// What the handlers put before the data: the RFC 5321 §4.4 trace fields when the Maildir
/// asks for them ([`Maildir::with_received_header`]), then [`envelope_header`].
fn stored_header(maildir: &Maildir, thread: &SmtpServerThread) -> Vec<u8> {
    let Some(by) = &maildir.received_by else {
        return envelope_header(thread);
    };
    let mut header = crate::trace::return_path(thread).into_bytes();
    header.extend_from_slice(thread.received_header(by, None).as_bytes());
    header.extend_from_slice(&envelope_header(thread));
    header
}

/// Whether a line starting with `byte` continues the header line before it (RFC 5322
/// §2.2.3: folding white space).
fn folds(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// The message's first byte, the stream left where it was; `None` for an empty message.
fn first_byte(stream: &mut RawStream<'_>) -> io::Result<Option<u8>> {
    use std::io::{Seek, SeekFrom};
    match stream {
        RawStream::Direct(reader) => Ok(reader.fill_buf()?.first().copied()),
        RawStream::Memory(cursor) => Ok(cursor.get_ref().first().copied()),
        RawStream::File(file) => {
            let mut byte = [0u8];
            let n = file.read(&mut byte)?;
            file.seek(SeekFrom::Start(0))?;
            Ok((n == 1).then_some(byte[0]))
        }
    }
}

/// The refusal of a message whose first line starts with white space. Stored after the
/// trace lines, that line would continue `X-RcptTo:` and let the client add recipients to
/// it; storing the message any other way would change its bytes (RFC 5322 §2.2.3 also
/// wants a header field, not a continuation, first). Permanent: sent again, the message
/// would start the same way.
fn folded_start(thread: &SmtpServerThread) -> Reply {
    log::info!(
        "session {}: message refused: it starts with a folded line",
        thread.session_id
    );
    Reply::new(
        554,
        "Message starts with white space: a folded header line with no field",
    )
    .with_enhanced("5.6.0")
}

/// [`Maildir::deliver_buffered`], telling whether an error came from reading `body`.
fn deliver_tracked(
    maildir: &Maildir,
    header: &[u8],
    body: &mut dyn BufRead,
    fsync: bool,
) -> (io::Result<PathBuf>, bool) {
    let mut reader = TrackRead {
        inner: body,
        failed: false,
    };
    let result = maildir.deliver_buffered(header, &mut reader, fsync);
    (result, reader.failed)
}

/// An `on_receive_message` / `on_receive_message_parsed` handler storing
/// [`Message::raw`](crate::Message::raw), the exact bytes received, like [`maildir_handler`]
/// (with the same refusal of a message that starts with white space).
pub fn maildir_message_handler(maildir: Arc<Maildir>, fsync: bool) -> ReceiveMessageHandler {
    Box::new(move |thread, message| {
        if message.raw().first().copied().is_some_and(folds) {
            return Err(folded_start(thread));
        }
        let header = stored_header(&maildir, thread);
        let result = maildir.deliver_bytes(&header, message.raw(), fsync);
        stored(thread, result, false)
    })
}

/// Logs the outcome of a delivery and turns it into the handler's verdict.
fn stored(
    thread: &SmtpServerThread,
    result: io::Result<PathBuf>,
    read_failed: bool,
) -> Result<(), Reply> {
    match result {
        Ok(path) => {
            let name = path.file_name().unwrap_or(path.as_os_str());
            log::info!(
                "session {}: stored new/{}",
                thread.session_id,
                name.to_string_lossy()
            );
            Ok(())
        }
        Err(e) => {
            if read_failed {
                log::info!("session {}: message not stored: {e}", thread.session_id);
            } else {
                log::error!("session {}: cannot store message: {e}", thread.session_id);
            }
            Err(failure_reply(&e, read_failed))
        }
    }
}

/// The reply for a message that could not be stored: `452 4.3.1` when the disk or the quota
/// is full (RFC 5321 §4.2.3 "insufficient system storage", RFC 3463 "mail system full"),
/// `451 4.3.0` for any other local error. Both are temporary: the client keeps the message
/// and tries again.
pub(super) fn failure_reply(error: &io::Error, read_failed: bool) -> Reply {
    if read_failed {
        // The client's side failed, not the storage: never "storage full".
        return crate::reply::processing_failure();
    }
    crate::reply::local_failure(error)
}

/// Remembers whether the error came from reading the message (the client's side) rather
/// than from writing the file (ours), for the log.
struct TrackRead<'a> {
    inner: &'a mut dyn BufRead,
    failed: bool,
}

impl Read for TrackRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let failed = &mut self.failed;
        let result = self.inner.read(buf);
        result.inspect_err(|e| *failed |= e.kind() != io::ErrorKind::Interrupted)
    }
}

impl BufRead for TrackRead<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let failed = &mut self.failed;
        let result = self.inner.fill_buf();
        result.inspect_err(|e| *failed |= e.kind() != io::ErrorKind::Interrupted)
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
    }
}
