//! Unnamed files in `tmp/` made ahead of the messages that will fill them
//! ([`Maildir::with_spare_files`](super::Maildir::with_spare_files)).
//!
//! Creating an `O_TMPFILE` file is about a sixth of the CPU a small message costs a session
//! thread (inode allocation and the orphan list, in the kernel). A filler thread creates them
//! in batches instead: it sleeps until the pool is down to half, then tops it up, so it is
//! woken once per `capacity / 2` messages and never on a message's path. Issue 5, b with the
//! Maildir: the thread that serves the parked sessions is saturated there, so what leaves it
//! turns into messages per second.
//!
//! A spare file is an unnamed inode: if the process ends, the kernel frees it, and nothing is
//! ever left in `tmp/`.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::Mutex;

use super::unnamed;

/// How long the filler waits after failing to create a file (a full disk, a directory
/// made unwritable) before it tries again; deliveries meanwhile create their own files
/// and report the error to their clients.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The pool of spare files and the thread that fills it.
pub(super) struct SpareFiles {
    pool: Arc<Pool>,
    filler: Option<JoinHandle<()>>,
}

struct Pool {
    files: Mutex<Vec<File>>,
    capacity: usize,
    stop: AtomicBool,
}

impl SpareFiles {
    /// Starts a filler keeping up to `capacity` files open in `tmp`.
    pub(super) fn start(tmp: PathBuf, capacity: usize) -> io::Result<SpareFiles> {
        let pool = Arc::new(Pool {
            files: Mutex::new(Vec::with_capacity(capacity)),
            capacity,
            stop: AtomicBool::new(false),
        });
        let filled = Arc::clone(&pool);
        let filler = thread::Builder::new()
            .name("maildir-spares".into())
            .stack_size(64 * 1024)
            .spawn(move || fill(&filled, &tmp))?;
        Ok(SpareFiles {
            pool,
            filler: Some(filler),
        })
    }

    /// A spare file, if one is ready; wakes the filler when the pool is down to half.
    pub(super) fn take(&self) -> Option<File> {
        let mut files = self.pool.files.lock();
        let file = files.pop();
        let refill = files.len() == self.pool.capacity / 2;
        drop(files);
        if refill {
            if let Some(filler) = &self.filler {
                filler.thread().unpark();
            }
        }
        file
    }

    /// Files ready now.
    pub(super) fn ready(&self) -> usize {
        self.pool.files.lock().len()
    }
}

impl Drop for SpareFiles {
    fn drop(&mut self) {
        self.pool.stop.store(true, Ordering::SeqCst);
        if let Some(filler) = self.filler.take() {
            filler.thread().unpark();
            let _ = filler.join();
        }
    }
}

/// The filler thread: tops the pool up whenever it is woken, until the Maildir is dropped.
fn fill(pool: &Pool, tmp: &std::path::Path) {
    let mut failing = false;
    while !pool.stop.load(Ordering::SeqCst) {
        let mut wait = None;
        while pool.files.lock().len() < pool.capacity && !pool.stop.load(Ordering::SeqCst) {
            match unnamed::create(tmp) {
                Ok(Some(file)) => {
                    pool.files.lock().push(file);
                    failing = false;
                }
                // No O_TMPFILE here: deliveries find that out themselves and use named files.
                Ok(None) => return,
                Err(e) => {
                    // Once per run of failures: each delivery reports its own error.
                    if !failing {
                        log::warn!("cannot make spare files in {}: {e}", tmp.display());
                    }
                    failing = true;
                    wait = Some(RETRY_AFTER);
                    break;
                }
            }
        }
        match wait {
            Some(delay) => thread::park_timeout(delay),
            // An unpark that came before this park is kept: park returns at once.
            None => thread::park(),
        }
    }
}

#[cfg(test)]
mod tests;
