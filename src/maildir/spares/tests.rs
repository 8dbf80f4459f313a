//! The spare-file pool: files are made ahead, used by deliveries, topped up, and all closed
//! when the Maildir is dropped.
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::maildir::Maildir;

/// Waits up to 10 s for `ready` to hold.
fn eventually(what: &str, ready: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < until, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The inode numbers of this process's open files that are unnamed files in `tmp`
/// (`/proc/self/fd/N` reads `TMP/#INODE (deleted)` for an `O_TMPFILE` file).
fn open_unnamed_files(tmp: &Path) -> Vec<u64> {
    let prefix = format!("{}/#", tmp.display());
    let mut inodes = Vec::new();
    for entry in fs::read_dir("/proc/self/fd").unwrap().flatten() {
        // Descriptors of other tests come and go meanwhile: skip what vanished.
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        if target.to_string_lossy().starts_with(&prefix) {
            if let Ok(meta) = fs::metadata(entry.path()) {
                inodes.push(meta.ino());
            }
        }
    }
    inodes.sort_unstable();
    inodes
}

fn unnamed_supported(md: &Maildir) -> bool {
    super::unnamed::create(md.tmp_dir()).unwrap().is_some()
}

#[test]
fn deliveries_take_spare_files_and_the_pool_is_topped_up() {
    let root = tempfile::tempdir().unwrap();
    let md = Maildir::create(root.path().join("md"))
        .unwrap()
        .with_spare_files(8);
    if !unnamed_supported(&md) {
        return; // Nothing to make ahead on this file system; `both_ways` covers delivery.
    }
    let ready = || md.spares.as_ref().unwrap().ready();
    eventually("8 spare files", || ready() == 8);
    let spare = open_unnamed_files(md.tmp_dir());
    assert_eq!(spare.len(), 8, "{spare:?}");

    // The stored message is one of the files that were made ahead.
    let path = md.deliver_bytes(b"X-A: 1\r\n", b"body\r\n", false).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"X-A: 1\r\nbody\r\n");
    let stored = fs::metadata(&path).unwrap().ino();
    assert!(spare.contains(&stored), "{stored} not in {spare:?}");

    // Down to half, the filler is woken and tops the pool up again.
    for i in 0..6 {
        md.deliver_bytes(b"", format!("message {i}\r\n").as_bytes(), false)
            .unwrap();
    }
    eventually("the pool topped up", || ready() == 8);
    assert_eq!(fs::read_dir(md.new_dir()).unwrap().count(), 7);
    assert_eq!(fs::read_dir(md.tmp_dir()).unwrap().count(), 0);
    assert!(format!("{md:?}").contains("spare_files_ready: 8"));

    // Dropping the Maildir ends the filler and closes every spare file.
    let tmp = md.tmp_dir().to_path_buf();
    drop(md);
    assert_eq!(open_unnamed_files(&tmp), Vec::<u64>::new());
}

#[test]
fn without_spare_files_there_is_no_pool() {
    let root = tempfile::tempdir().unwrap();
    let md = Maildir::create(root.path()).unwrap().with_spare_files(0);
    assert!(md.spares.is_none());
    assert!(!format!("{md:?}").contains("spare_files_ready"));
    // Asking again replaces the pool: the first one's files are closed with it.
    let md = md.with_spare_files(2);
    if unnamed_supported(&md) {
        eventually("2 spare files", || md.spares.as_ref().unwrap().ready() == 2);
        let md = md.with_spare_files(0);
        assert_eq!(open_unnamed_files(md.tmp_dir()), Vec::<u64>::new());
    }
}

/// More deliveries than the pool holds, from several threads at once: every message is
/// stored once, whole, whether its file came from the pool or was made on the spot.
#[test]
fn concurrent_deliveries_outrun_the_pool_safely() {
    let root = tempfile::tempdir().unwrap();
    let md = Maildir::create(root.path()).unwrap().with_spare_files(4);
    std::thread::scope(|s| {
        for t in 0..4 {
            let md = &md;
            s.spawn(move || {
                for i in 0..50 {
                    let body = format!("thread {t} message {i}\r\n");
                    md.deliver_bytes(b"", body.as_bytes(), false).unwrap();
                }
            });
        }
    });
    let mut bodies: Vec<String> = fs::read_dir(md.new_dir())
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|t| (0..50).map(move |i| format!("thread {t} message {i}\r\n")))
        .collect();
    expected.sort();
    assert_eq!(bodies, expected);
    assert_eq!(fs::read_dir(md.tmp_dir()).unwrap().count(), 0);
}
