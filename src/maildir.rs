//! Storing received mail in a [Maildir](https://cr.yp.to/proto/maildir.html): the store
//! `examples/smtpd` uses, reusable by any application.
//!
//! Each message becomes one file, written in `tmp/` and moved into `new/` only when it is
//! complete, so a mail reader never sees half a message and a failed transaction leaves
//! nothing behind. The receive handlers ([`maildir_handler`], [`maildir_message_handler`])
//! return `Ok` only after the file is in `new/`, so the client's `250` means the message is
//! stored (RFC 5321 §4.1.1.4: the receiver accepts responsibility with the 250). Stored means
//! handed to the kernel: only with `fsync` is it also on the disk before the 250, so that it
//! survives a crash of the machine (RFC 5321 §6.1); without it, the disk's flush latency does
//! not limit the rate, which is why it is off by default in `smtpd`.
//!
//! On Linux the file in `tmp/` is an unnamed `O_TMPFILE` one, which gets its only name in
//! `new/` when complete (one file system entry per message instead of three operations:
//! create in `tmp/`, link into `new/`, unlink from `tmp/`); where the file system lacks
//! `O_TMPFILE`, the Maildir falls back to named files in `tmp/` for good. Either way a file
//! in `new/` is never replaced: the link fails when the name exists and another is chosen.
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

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, IoSlice, Read, Write};
use std::path::{Path, PathBuf, MAIN_SEPARATOR_STR};
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

mod handlers;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod spares;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod unnamed;

pub use handlers::{envelope_header, maildir_handler, maildir_message_handler, trace_header};

/// Buffer for [`Maildir::deliver`]'s `Read` body: few `write`s for a big message, and under
/// glibc's 128 KiB mmap threshold, so it is not fresh pages to fault in for every message.
const READ_BLOCK: usize = 64 * 1024;
/// The grid of the file writes (see [`GridWriter`]); the DATA reader's blocks are this size.
const GRID: usize = 64 * 1024;
/// Largest single copy into the carry: the same limit as the DATA reader's copies.
const COPY_CHUNK: usize = 2048;
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
    /// Prepend `Return-Path:` and `Received: ... by <this>` (RFC 5321 §4.4) in the handlers.
    received_by: Option<String>,
    /// This process's id, read once: `std::process::id()` is a system call on every name.
    /// A forked child that goes on using this value shares the parent's names; where names
    /// are taken exclusively (a link, which fails on a taken name and is retried under the
    /// next counter value) that costs a retry. On a file system without hard links the
    /// fallback checks and then renames, so a forked child should open its own `Maildir`.
    pid: u32,
    /// Linux: write each message into an unnamed `O_TMPFILE` file in `tmp/` and link it into
    /// `new/` when complete. Cleared for good the first time that is not possible here.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    unnamed_tmp: AtomicBool,
    /// Linux: unnamed files made ahead by a thread ([`Maildir::with_spare_files`]).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    spares: Option<spares::SpareFiles>,
}

impl fmt::Debug for Maildir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Maildir");
        out.field("root", &self.root)
            .field("hostname", &self.hostname)
            .field("received_by", &self.received_by);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(spares) = &self.spares {
            out.field("spare_files_ready", &spares.ready());
        }
        out.finish()
    }
}

impl Maildir {
    /// Opens the Maildir at `dir`, creating `dir`, `tmp/`, `new/` and `cur/` as needed
    /// (mode 0700 on Unix, as mail is private). On Linux it also fails when this process may
    /// not write to `tmp/` and `new/` (permissions, a read-only file system), so that a
    /// server finds out at start, not at its first message.
    pub fn create(dir: impl AsRef<Path>) -> io::Result<Maildir> {
        let root = dir.as_ref().to_path_buf();
        for sub in ["tmp", "new", "cur"] {
            create_private_dir(&root.join(sub))?;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        for sub in ["tmp", "new"] {
            unnamed::check_writable(&root.join(sub))?;
        }
        Ok(Maildir {
            tmp: root.join("tmp"),
            new: root.join("new"),
            root,
            hostname: sanitize_hostname(&machine_hostname()),
            received_by: None,
            pid: std::process::id(),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            unnamed_tmp: AtomicBool::new(true),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            spares: None,
        })
    }

    /// Uses `name` instead of the machine's host name in file names (`/` and `:` are
    /// escaped as the Maildir convention asks: `\057`, `\072`).
    pub fn with_hostname(mut self, name: &str) -> Maildir {
        self.hostname = sanitize_hostname(name);
        self
    }

    /// Makes [`maildir_handler`] and [`maildir_message_handler`] start each message with the
    /// RFC 5321 §4.4 trace fields of final delivery, `Return-Path:` and a `Received:` line
    /// naming `by` as the receiving host ([`trace::received`](crate::trace::received)), before
    /// the `X-` lines of [`envelope_header`]. Off by default: `examples/smtpd` stores the
    /// format its issue fixed (the `X-` lines, then the data).
    pub fn with_received_header(mut self, by: &str) -> Maildir {
        self.received_by = Some(by.to_string());
        self
    }

    /// Keeps up to `count` unnamed files open in `tmp/`, made ahead by a thread of their own,
    /// so that a delivery does not pay for creating its file: about a sixth of a small
    /// message's CPU in the thread that serves the sessions (issue 5; `examples/smtpd` keeps
    /// 32). The thread tops the pool up in batches when it is down to half and ends when the
    /// `Maildir` is dropped. The files have no name until a message is linked into `new/`,
    /// so nothing is left in `tmp/` whatever happens to the process; until then each holds
    /// a descriptor and an inode. `0` (the default) makes none.
    ///
    /// Linux only (the files are `O_TMPFILE` ones): elsewhere, and where the file system has
    /// no `O_TMPFILE`, nothing changes. If the thread cannot be started, the `Maildir` works
    /// as without spare files, and a warning is logged.
    pub fn with_spare_files(self, count: usize) -> Maildir {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let mut maildir = self;
            maildir.spares = None;
            if count > 0 {
                match spares::SpareFiles::start(maildir.tmp.clone(), count) {
                    Ok(spares) => maildir.spares = Some(spares),
                    Err(e) => log::warn!("no spare files for {}: {e}", maildir.root.display()),
                }
            }
            maildir
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = count;
            self
        }
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
    /// The file is written in 64 KiB-aligned blocks (a small message in one `write`), never
    /// line by line. With `fsync`, the file and then the
    /// `new/` directory are flushed to disk before returning, so the message survives a
    /// crash. On any error (reading `body` included) no file is left in `tmp/` or `new/`.
    ///
    /// A body that is already buffered is better given to
    /// [`deliver_buffered`](Maildir::deliver_buffered), which writes from its buffer.
    pub fn deliver(&self, header: &[u8], body: &mut dyn Read, fsync: bool) -> io::Result<PathBuf> {
        let mut body = BufReader::with_capacity(READ_BLOCK, body);
        self.deliver_buffered(header, &mut body, fsync)
    }

    /// [`deliver`](Maildir::deliver) for a body that has its own buffer, e.g. the
    /// `RawStreamType::Direct` data reader: the blocks `fill_buf` returns are written to the
    /// file from there, and only what does not complete a 64 KiB-aligned write is copied.
    pub fn deliver_buffered(
        &self,
        header: &[u8],
        body: &mut dyn BufRead,
        fsync: bool,
    ) -> io::Result<PathBuf> {
        self.deliver_with(fsync, |file| write_buffered(file, header, body))
    }

    /// [`deliver`](Maildir::deliver) for a body already in memory, e.g.
    /// [`Message::raw`](crate::Message::raw); header and body go out in one `write`,
    /// without copying either.
    pub fn deliver_bytes(&self, header: &[u8], body: &[u8], fsync: bool) -> io::Result<PathBuf> {
        self.deliver_with(fsync, |file| write_pair(file, header, body))
    }

    fn deliver_with(
        &self,
        fsync: bool,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if self.unnamed_tmp.load(Ordering::Relaxed) {
            if let Some(file) = self.spares.as_ref().and_then(spares::SpareFiles::take) {
                return self.deliver_unnamed(file, fsync, write);
            }
            match unnamed::create(&self.tmp)? {
                Some(file) => return self.deliver_unnamed(file, fsync, write),
                None => self.unnamed_tmp.store(false, Ordering::Relaxed),
            }
        }
        self.deliver_named(fsync, write)
    }

    /// The portable way: `tmp/NAME` created exclusively, written, hard-linked into `new/`.
    fn deliver_named(
        &self,
        fsync: bool,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        let (tmp_path, mut file) = self.create_tmp()?;
        // Removes the tmp file on every path: after an error, and after the link below.
        let tmp = TmpFile(tmp_path);
        write(&mut file)?;
        if fsync {
            file.sync_all()?;
        }
        drop(file);
        let first = self.new.join(tmp.0.file_name().unwrap_or_default());
        let path = self.publish(&tmp.0, first)?;
        self.sync_new(fsync, path)
    }

    /// Linux: the message is written into an `O_TMPFILE` file, which has no name until it is
    /// linked into `new/` complete; that saves creating and removing a `tmp/` entry per
    /// message, and a failed delivery leaves nothing behind even after a crash (the kernel
    /// frees the unnamed inode).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn deliver_unnamed(
        &self,
        mut file: File,
        fsync: bool,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        write(&mut file)?;
        if fsync {
            file.sync_all()?;
        }
        match self.link_new(self.unique_path(&self.new), |to| unnamed::link(&file, to)) {
            Ok(path) => self.sync_new(fsync, path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            Err(e) => self.relink_by_copy(file, fsync, e),
        }
    }

    /// The written file could not be linked (`/proc` not mounted, or a real error in
    /// `new/`): the message is copied into a named file in `tmp/` the portable way, so the
    /// client is not refused because of the shortcut. If that works the shortcut is not
    /// tried again; if it fails too, the error was not the shortcut's and is returned.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn relink_by_copy(&self, mut file: File, fsync: bool, error: io::Error) -> io::Result<PathBuf> {
        use std::io::Seek;
        let copied = file
            .rewind()
            .and_then(|()| self.deliver_named(fsync, |named| io::copy(&mut file, named).map(drop)));
        match copied {
            Ok(path) => {
                self.unnamed_tmp.store(false, Ordering::Relaxed);
                log::warn!("cannot link O_TMPFILE files ({error}): using named files in tmp/");
                Ok(path)
            }
            Err(_) => Err(error),
        }
    }

    /// With `fsync`, flushes `new/` so the new entry survives a crash (the file itself was
    /// flushed before it was linked, so a reader never finds it incomplete after a crash).
    fn sync_new(&self, fsync: bool, path: PathBuf) -> io::Result<PathBuf> {
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
    fn create_tmp(&self) -> io::Result<(PathBuf, File)> {
        let mut last = None;
        for _ in 0..NAME_ATTEMPTS {
            let path = self.unique_path(&self.tmp);
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                // Mail is private: readable by the owner only, whatever the umask.
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no unique file name")))
    }

    /// Moves the finished file in tmp/ into `new/` without replacing a file there (a rename
    /// would silently overwrite one); `tmp/` is cleaned by the caller's guard. File systems
    /// without hard links fall back to rename after checking the name is free.
    fn publish(&self, tmp: &Path, first: PathBuf) -> io::Result<PathBuf> {
        self.link_new(first, |to| match fs::hard_link(tmp, to) {
            Err(e)
                if e.kind() != io::ErrorKind::AlreadyExists
                    && fs::symlink_metadata(to).is_err() =>
            {
                fs::rename(tmp, to)
            }
            linked => linked,
        })
    }

    /// Gives the finished file its name in `new/` with `link`, as `first` or, when that name
    /// is taken (`AlreadyExists`), under fresh names.
    fn link_new(
        &self,
        first: PathBuf,
        link: impl Fn(&Path) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        let mut target = first;
        for _ in 0..NAME_ATTEMPTS {
            match link(&target) {
                Ok(()) => return Ok(target),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    target = self.unique_path(&self.new);
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free file name in new/",
        ))
    }

    /// `dir/{secs}.M{micros}P{pid}Q{counter}.{hostname}` (the Maildir naming convention),
    /// formatted straight into the path: one allocation per name.
    fn unique_path(&self, dir: &Path) -> PathBuf {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let q = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = dir.as_os_str();
        let mut path = OsString::with_capacity(dir.len() + 64 + self.hostname.len());
        path.push(dir);
        path.push(MAIN_SEPARATOR_STR);
        // Formatting into an OsString cannot fail.
        let _ = write!(
            path,
            "{}.M{}P{}Q{}.{}",
            now.as_secs(),
            now.subsec_micros(),
            self.pid,
            q,
            self.hostname
        );
        PathBuf::from(path)
    }
}

/// Writes the header and then the body, mostly straight from the body's buffer, in `write`s
/// on a 64 KiB grid (see [`GridWriter`]).
fn write_buffered(file: &mut File, header: &[u8], body: &mut dyn BufRead) -> io::Result<()> {
    let mut out = GridWriter {
        file,
        carry: crate::buffers::take(GRID),
    };
    out.push(header)?;
    loop {
        let block = match body.fill_buf() {
            Ok(block) => block,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if block.is_empty() {
            return out.finish();
        }
        let n = block.len();
        out.push(block)?;
        body.consume(n);
    }
}

/// Writes a stream of borrowed blocks so that every `write` but the last starts and ends on
/// a multiple of [`GRID`] in the file: the part of a block that completes grid cells is
/// written from the block itself, behind what was carried, and the rest is copied to be
/// written before the next block. Recent Linux sizes page-cache folios by the write's length
/// and file offset, so 64 KiB writes off the grid (the header shifts every block, and the
/// first block is short) get small folios; measured on ext4 (Linux 6.18) with 1 MB messages
/// in 64 KiB blocks: 730-790 µs of CPU per message unaligned (the former copy into a 128 KiB
/// buffer), 850 aligned to 4 KiB pages only, 590-640 on the 64 KiB grid. A small message is
/// written with one `write`.
struct GridWriter<'f, W: Write + ?Sized> {
    file: &'f mut W,
    /// Under `GRID` bytes, written next.
    carry: Vec<u8>,
}

impl<W: Write + ?Sized> GridWriter<'_, W> {
    fn push(&mut self, block: &[u8]) -> io::Result<()> {
        // All that was written so far is whole cells, so whole cells here stay on the grid.
        let total = self.carry.len() + block.len();
        let whole = total - total % GRID;
        let rest = if whole == 0 {
            block
        } else {
            let take = whole - self.carry.len();
            write_pair(self.file, &self.carry, &block[..take])?;
            self.carry.clear();
            &block[take..]
        };
        // Copied in pieces: glibc copies larger ones with `rep movsb`, slow on some CPUs
        // when source and destination are not aligned alike (see `raw::COPY_CHUNK`).
        for piece in rest.chunks(COPY_CHUNK) {
            self.carry.extend_from_slice(piece);
        }
        Ok(())
    }

    /// Writes the last, partial cell.
    fn finish(self) -> io::Result<()> {
        write_pair(self.file, &self.carry, &[])
    }
}

impl<W: Write + ?Sized> Drop for GridWriter<'_, W> {
    fn drop(&mut self) {
        crate::buffers::give_back(std::mem::take(&mut self.carry));
    }
}

/// Writes `a` then `b` with as few `write` calls as the kernel allows (one, normally), and
/// continues after a short write (`write_all_vectored` is not stable yet).
fn write_pair<W: Write + ?Sized>(file: &mut W, a: &[u8], b: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < a.len() + b.len() {
        let result = if done < a.len() {
            file.write_vectored(&[IoSlice::new(&a[done..]), IoSlice::new(b)])
        } else {
            file.write(&b[done - a.len()..])
        };
        match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests;
