//! Storing received mail in a [Maildir](https://cr.yp.to/proto/maildir.html): the store
//! `examples/smtpd` uses, reusable by any application.
//!
//! Each message becomes one file, written in `tmp/` and moved into `new/` only when it is
//! complete, so a mail reader never sees half a message and a failed transaction leaves
//! nothing behind. The receive handlers ([`maildir_handler`], [`maildir_message_handler`])
//! return `Ok` only after the file is in `new/`, so the client's `250` means the message is
//! stored (RFC 5321 §4.1.1.4: the receiver accepts responsibility with the 250).
//!
//! ```no_run
//! use std::sync::Arc;
//! use indy_smtp::{maildir::{maildir_handler, Maildir}, RawStreamType, SmtpServer};
//!
//! let maildir = Arc::new(Maildir::create("./maildir").expect("maildir"));
//! let mut server = SmtpServer::new();
//! server.bindings = vec!["127.0.0.1:2525".parse().unwrap()];
//! server.raw_stream_type = RawStreamType::Direct;
//! server.on_receive_raw = Some(maildir_handler(maildir, false));
//! let handle = server.start().expect("listen");
//! # handle.stop();
//! ```

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::events::{ReceiveMessageHandler, ReceiveRawHandler};
use crate::reply::Reply;
use crate::thread::SmtpServerThread;

/// Bytes of the first write: the trace header plus up to this much of the body, so a
/// typical message is stored with a single `write`.
const FIRST_BLOCK: usize = 16 * 1024;
/// Size of each later write for large messages.
const BLOCK: usize = 128 * 1024;
/// A body up to this size given as a slice is copied behind the header for one `write`.
const COPY_LIMIT: usize = 64 * 1024;
/// RFC 5322 §2.1.1: a header line MUST NOT exceed 998 characters (without CRLF).
const MAX_LINE: usize = 998;
/// Name attempts before giving up (a collision needs a clock step and a reused pid).
const NAME_ATTEMPTS: u32 = 16;

/// Unique within the process, across every `Maildir` and thread (the `Q` part of a name).
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A Maildir: the directory holding `tmp/`, `new/` and `cur/`.
pub struct Maildir {
    root: PathBuf,
    tmp: PathBuf,
    new: PathBuf,
    hostname: String,
}

impl fmt::Debug for Maildir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Maildir")
            .field("root", &self.root)
            .field("hostname", &self.hostname)
            .finish()
    }
}

impl Maildir {
    /// Opens the Maildir at `dir`, creating `dir`, `tmp/`, `new/` and `cur/` as needed
    /// (mode 0700 on Unix, as mail is private).
    pub fn create(dir: impl AsRef<Path>) -> io::Result<Maildir> {
        let root = dir.as_ref().to_path_buf();
        for sub in ["tmp", "new", "cur"] {
            create_private_dir(&root.join(sub))?;
        }
        Ok(Maildir {
            tmp: root.join("tmp"),
            new: root.join("new"),
            root,
            hostname: sanitize_hostname(&machine_hostname()),
        })
    }

    /// Uses `name` instead of the machine's host name in file names (`/` and `:` are
    /// escaped as the Maildir convention asks: `\057`, `\072`).
    pub fn with_hostname(mut self, name: &str) -> Maildir {
        self.hostname = sanitize_hostname(name);
        self
    }

    /// The Maildir's directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The `new/` directory, where delivered messages are.
    pub fn new_dir(&self) -> &Path {
        &self.new
    }

    /// The `tmp/` directory, where messages are written before delivery.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Stores one message: `header` followed by everything `body` yields, written to a new
    /// file in `tmp/` and moved into `new/`. Returns the path in `new/`.
    ///
    /// The header and the first block of the body go out in one `write`; the body is then
    /// streamed in large blocks, never line by line. With `fsync`, the file and then the
    /// `new/` directory are flushed to disk before returning, so the message survives a
    /// crash. On any error (reading `body` included) no file is left in `tmp/` or `new/`.
    pub fn deliver(&self, header: &[u8], body: &mut dyn Read, fsync: bool) -> io::Result<PathBuf> {
        self.deliver_with(fsync, |file| write_streamed(file, header, body))
    }

    /// [`deliver`](Maildir::deliver) for a body already in memory, e.g.
    /// [`Message::raw`](crate::Message::raw); a large body is written without copying it.
    pub fn deliver_bytes(&self, header: &[u8], body: &[u8], fsync: bool) -> io::Result<PathBuf> {
        self.deliver_with(fsync, |file| {
            if body.len() <= COPY_LIMIT {
                let mut buf = Vec::with_capacity(header.len() + body.len());
                buf.extend_from_slice(header);
                buf.extend_from_slice(body);
                file.write_all(&buf)
            } else {
                file.write_all(header)?;
                file.write_all(body)
            }
        })
    }

    fn deliver_with(
        &self,
        fsync: bool,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        let (name, mut file) = self.create_tmp()?;
        // Removes the tmp file on every path: after an error, and after the link below.
        let tmp = TmpFile(self.tmp.join(&name));
        write(&mut file)?;
        if fsync {
            file.sync_all()?;
        }
        drop(file);
        let path = self.publish(&tmp.0, name)?;
        if fsync {
            if let Err(e) = File::open(&self.new).and_then(|dir| dir.sync_all()) {
                // Not durable: take it back, so the client's retry does not duplicate it.
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        }
        Ok(path)
    }

    /// Creates `tmp/<unique name>` with O_EXCL: an existing file is never opened or truncated.
    fn create_tmp(&self) -> io::Result<(String, File)> {
        let mut last = None;
        for _ in 0..NAME_ATTEMPTS {
            let name = self.unique_name();
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                // Mail is private: readable by the owner only, whatever the umask.
                options.mode(0o600);
            }
            match options.open(self.tmp.join(&name)) {
                Ok(file) => return Ok((name, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no unique file name")))
    }

    /// Moves the finished file into `new/` without ever replacing a file there: a hard link
    /// fails when the name exists (rename would silently overwrite it), then `tmp/` is cleaned
    /// by the caller's guard. File systems without hard links fall back to rename after
    /// checking the name is free.
    fn publish(&self, tmp: &Path, mut name: String) -> io::Result<PathBuf> {
        for _ in 0..NAME_ATTEMPTS {
            let target = self.new.join(&name);
            match fs::hard_link(tmp, &target) {
                Ok(()) => return Ok(target),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => name = self.unique_name(),
                Err(_) if fs::symlink_metadata(&target).is_err() => {
                    fs::rename(tmp, &target)?;
                    return Ok(target);
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free name in new/",
        ))
    }

    /// `{secs}.M{micros}P{pid}Q{counter}.{hostname}` (the Maildir naming convention).
    fn unique_name(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let q = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}.M{}P{}Q{}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            q,
            self.hostname
        )
    }
}

/// Writes the header and the body: the header and the first body block in one `write`,
/// then blocks of up to [`BLOCK`] bytes.
fn write_streamed(file: &mut File, header: &[u8], body: &mut dyn Read) -> io::Result<()> {
    let mut buf = vec![0u8; header.len() + FIRST_BLOCK];
    buf[..header.len()].copy_from_slice(header);
    let mut filled = header.len();
    loop {
        let mut eof = false;
        while filled < buf.len() {
            match body.read(&mut buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        file.write_all(&buf[..filled])?;
        if eof {
            return Ok(());
        }
        filled = 0;
        if buf.len() < BLOCK {
            buf.resize(BLOCK, 0);
        }
    }
}

/// A file in `tmp/` that is removed when dropped.
struct TmpFile(PathBuf);

impl Drop for TmpFile {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.0) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("cannot remove {}: {e}", self.0.display());
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn machine_hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Maildir file names must not hold `/` or `:` (the flag separator); both are written as
/// octal escapes, and anything not printable ASCII is dropped.
fn sanitize_hostname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            c if c.is_ascii_graphic() => out.push(c),
            _ => {}
        }
    }
    if out.is_empty() {
        out.push_str("localhost");
    }
    out
}

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
        if i > 0 && out.len() - line_start > MAX_LINE {
            // Too long: fold before this recipient ("," CRLF SP address).
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
/// stored and the handler returns `451 4.3.0` (the server sends its own reply when the client
/// broke a limit).
pub fn maildir_handler(maildir: Arc<Maildir>, fsync: bool) -> ReceiveRawHandler {
    Box::new(move |thread, stream| {
        let header = envelope_header(thread);
        let mut reader = TrackRead {
            inner: stream,
            failed: false,
        };
        let result = maildir.deliver(&header, &mut reader, fsync);
        stored(thread, result, reader.failed)
    })
}

/// An `on_receive_message` / `on_receive_message_parsed` handler storing
/// [`Message::raw`](crate::Message::raw), the exact bytes received, like [`maildir_handler`].
pub fn maildir_message_handler(maildir: Arc<Maildir>, fsync: bool) -> ReceiveMessageHandler {
    Box::new(move |thread, message| {
        let header = envelope_header(thread);
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
            // RFC 5321 §4.2.3 / RFC 3463: 451 4.3.0, a local error the client may retry.
            Err(
                Reply::new(451, "Requested action aborted: local error in processing")
                    .with_enhanced("4.3.0"),
            )
        }
    }
}

/// Remembers whether the error came from reading the message (the client's side) rather
/// than from writing the file (ours), for the log.
struct TrackRead<'a, R: Read + ?Sized> {
    inner: &'a mut R,
    failed: bool,
}

impl<R: Read + ?Sized> Read for TrackRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        self.failed |= result
            .as_ref()
            .is_err_and(|e| e.kind() != io::ErrorKind::Interrupted);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn create_makes_the_three_directories() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/maildir");
        let md = Maildir::create(&dir).unwrap();
        for sub in ["tmp", "new", "cur"] {
            assert!(dir.join(sub).is_dir(), "{sub} missing");
        }
        assert_eq!(md.path(), dir);
        // Opening an existing Maildir is fine.
        Maildir::create(&dir).unwrap();
    }

    #[test]
    fn deliver_writes_header_then_body_into_new() {
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path()).unwrap();
        for fsync in [false, true] {
            let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            let path = md.deliver(b"X-A: 1\r\n", &mut &body[..], fsync).unwrap();
            assert_eq!(path.parent().unwrap(), md.new_dir());
            let stored = fs::read(&path).unwrap();
            assert_eq!(&stored[..8], b"X-A: 1\r\n");
            assert!(stored[8..] == body[..], "body differs");
            let path = md.deliver_bytes(b"X-B: 2\r\n", &body, fsync).unwrap();
            assert_eq!(
                fs::read(&path).unwrap(),
                [&b"X-B: 2\r\n"[..], &body].concat()
            );
            let path = md.deliver_bytes(b"H\r\n", b"small\r\n", fsync).unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"H\r\nsmall\r\n");
        }
        assert_eq!(files(md.new_dir()).len(), 6);
        assert!(files(md.tmp_dir()).is_empty());
    }

    /// A body that fails mid-way (client gone, size limit): nothing stored, no litter.
    #[test]
    fn read_error_leaves_nothing() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "too large"));
                }
                let n = buf.len().min(self.0).min(1000);
                buf[..n].fill(b'x');
                self.0 -= n;
                Ok(n)
            }
        }
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path()).unwrap();
        for size in [0, 10, 100_000, 1_000_000] {
            let err = md
                .deliver(b"H: 1\r\n", &mut Broken(size), false)
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
        assert!(files(md.new_dir()).is_empty());
        assert!(files(md.tmp_dir()).is_empty());
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let root = tempfile::tempdir().unwrap();
        let md = Arc::new(
            Maildir::create(root.path())
                .unwrap()
                .with_hostname("mx/1:a b"),
        );
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let md = Arc::clone(&md);
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        md.deliver_bytes(b"", b"x", false).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let names = files(md.new_dir());
        assert_eq!(names.len(), 200);
        let name = names[0].file_name().unwrap().to_str().unwrap().to_string();
        let pid = format!("P{}Q", std::process::id());
        assert!(name.contains(".M") && name.contains(&pid), "{name}");
        assert!(name.ends_with(".mx\\0571\\072ab"), "{name}");
        assert!(
            name.split('.').next().unwrap().parse::<u64>().is_ok(),
            "{name}"
        );
    }

    /// A name already in new/ is never replaced (a rename would silently overwrite it).
    #[test]
    fn publish_never_overwrites() {
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path()).unwrap();
        let taken = md.new_dir().join("taken");
        fs::write(&taken, b"old mail").unwrap();
        let tmp = md.tmp_dir().join("t1");
        fs::write(&tmp, b"new mail").unwrap();
        let path = md.publish(&tmp, "taken".into()).unwrap();
        assert_ne!(path, taken);
        assert_eq!(fs::read(&taken).unwrap(), b"old mail");
        assert_eq!(fs::read(&path).unwrap(), b"new mail");
    }

    /// RFC 5322 §2.2: a header value must not contain CR or LF; control characters are
    /// removed so no envelope value can inject a header line.
    #[test]
    fn trace_header_is_sanitized() {
        let h = trace_header(
            "::ffff:10.0.0.1".parse().unwrap(),
            "a\r\nX-Evil: 1\0\x1b[31m\x7f\u{85}\u{2028}@b",
            &["c\n@d", "e\r@f\t", "\u{e9}@x"],
        );
        assert_eq!(
            String::from_utf8(h).unwrap(),
            "X-Peer: 10.0.0.1\r\nX-MailFrom: aX-Evil: 1[31m@b\r\nX-RcptTo: c@d, e@f, \u{e9}@x\r\n"
        );
        let h = trace_header(IpAddr::V6(Ipv6Addr::LOCALHOST), "", &[]);
        assert_eq!(h, b"X-Peer: ::1\r\nX-MailFrom: \r\nX-RcptTo: \r\n");
    }

    #[test]
    fn long_recipient_lists_are_folded() {
        let rcpts: Vec<String> = (0..100)
            .map(|i| format!("recipient{i:03}@example.org"))
            .collect();
        let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
        let h = String::from_utf8(trace_header([127, 0, 0, 1].into(), "a@b", &refs)).unwrap();
        let lines: Vec<&str> = h.split("\r\n").collect();
        assert!(lines.len() > 4, "not folded: {h}");
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE), "{h}");
        assert!(lines[3].starts_with(' ') && lines[2].ends_with(','));
        // Unfolding (RFC 5322 §2.2.3: remove CRLF before WSP) gives the plain list back.
        let unfolded = h.replace("\r\n ", " ");
        assert!(unfolded.contains(&format!("X-RcptTo: {}\r\n", refs.join(", "))));
    }
}
