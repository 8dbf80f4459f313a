//! `O_TMPFILE` (Linux 3.11): an unnamed file in `tmp/`, given its name in `new/` by `linkat`
//! with `AT_EMPTY_PATH`, or through `/proc/self/fd` (the unprivileged way `open(2)` documents)
//! where the kernel does not allow that.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{linkat, openat, AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;

/// An unnamed file in `dir`, mode 0600; `None` when the kernel or the file system has no
/// `O_TMPFILE` (old kernels see a directory open: EISDIR; EOPNOTSUPP from file systems
/// without it; EINVAL, ENOSYS from some FUSE and network file systems).
pub(super) fn create(dir: &Path) -> io::Result<Option<File>> {
    // Read-write so that the fallback can copy the message out again.
    let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
    match openat(CWD, dir, flags, Mode::RUSR | Mode::WUSR) {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(e @ (Errno::ISDIR | Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS)) => {
            log::debug!("no O_TMPFILE in {} ({e}): named files", dir.display());
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Fails unless files can be created in `dir` (write and search permission, a writable
/// file system).
pub(super) fn check_writable(dir: &Path) -> io::Result<()> {
    use rustix::fs::{accessat, Access};
    // As the files will be created: with the effective user and group (AT_EACCESS).
    let access = Access::WRITE_OK | Access::EXEC_OK;
    accessat(CWD, dir, access, AtFlags::EACCESS).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("cannot write to {}: {e}", dir.display()),
        )
    })
}

/// Whether `linkat(fd, "", AT_EMPTY_PATH)` may be used: Linux 6.10 allows it for a file
/// the process opened itself, older kernels only with `CAP_DAC_READ_SEARCH`. It saves
/// resolving the `/proc` path (a few per cent of a small message's CPU).
static EMPTY_PATH_LINKS: AtomicBool = AtomicBool::new(true);

/// Gives `file` the name `target`; fails with `AlreadyExists` rather than replace a file.
pub(super) fn link(file: &File, target: &Path) -> io::Result<()> {
    if EMPTY_PATH_LINKS.load(Ordering::Relaxed) {
        match linkat(file, "", CWD, target, AtFlags::EMPTY_PATH) {
            // Refused (ENOENT is the kernel's answer when it is not permitted): try the
            // `/proc` way, and stop trying this one once that works.
            Err(Errno::NOENT | Errno::PERM | Errno::INVAL) => {
                link_by_proc(file, target)?;
                EMPTY_PATH_LINKS.store(false, Ordering::Relaxed);
                return Ok(());
            }
            done => return done.map_err(Into::into),
        }
    }
    link_by_proc(file, target)
}

pub(super) fn link_by_proc(file: &File, target: &Path) -> io::Result<()> {
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    linkat(CWD, proc_path, CWD, target, AtFlags::SYMLINK_FOLLOW).map_err(Into::into)
}
