//! Unit tests of the Maildir writer: both ways of creating the file (O_TMPFILE and named
//! tmp/ files), exact bytes, no litter on errors, no overwriting.
use super::*;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use super::handlers::{failure_reply, MAX_LINE};

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

/// A Maildir whose `new/` this process may not write to is refused when it is opened, not
/// at its first message. Root may write anywhere, so as root the same Maildir opens.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn create_refuses_a_maildir_it_cannot_write_to() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("md");
    Maildir::create(&dir).unwrap();
    fs::set_permissions(dir.join("new"), fs::Permissions::from_mode(0o500)).unwrap();
    let opened = Maildir::create(&dir);
    // The effective uid is the second number of /proc/self/status's `Uid:` line.
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let root_user = uid_line.split_whitespace().nth(2) == Some("0");
    if root_user {
        assert!(opened.is_ok(), "{:?}", opened.err());
    } else {
        let err = opened.expect_err("new/ is not writable");
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("new"), "{err}");
    }
    fs::set_permissions(dir.join("new"), fs::Permissions::from_mode(0o700)).unwrap();
}

/// The Maildir at `root`, once as it comes (O_TMPFILE on Linux where the file system has
/// it), once forced onto the portable path with named files in tmp/, and once with spare
/// files made ahead (as it comes otherwise).
fn both_ways(root: &Path) -> Vec<Maildir> {
    let unnamed = Maildir::create(root.join("unnamed")).unwrap();
    let named = Maildir::create(root.join("named")).unwrap();
    #[cfg(any(target_os = "linux", target_os = "android"))]
    named.unnamed_tmp.store(false, Ordering::Relaxed);
    let spares = Maildir::create(root.join("spares"))
        .unwrap()
        .with_spare_files(4);
    vec![unnamed, named, spares]
}

/// Whether `md` still writes unnamed files: on Linux, when tmp/ supports O_TMPFILE and
/// nothing made it fall back.
fn assert_way(md: &Maildir, expect_unnamed: bool) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let supported = unnamed::create(md.tmp_dir()).unwrap().is_some();
        assert_eq!(
            md.unnamed_tmp.load(Ordering::Relaxed),
            expect_unnamed && supported
        );
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (md, expect_unnamed);
}

/// Yields its data `step` bytes per `fill_buf`, with an `Interrupted` before each new
/// block, like a reader of a slow connection.
struct Dribble {
    data: Vec<u8>,
    pos: usize,
    step: usize,
    interrupt: bool,
}

impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Dribble {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.interrupt {
            self.interrupt = false;
            return Err(io::ErrorKind::Interrupted.into());
        }
        let end = self.data.len().min(self.pos + self.step);
        Ok(&self.data[self.pos..end])
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt;
        self.interrupt = true;
    }
}

#[test]
fn deliver_writes_header_then_body_into_new() {
    let root = tempfile::tempdir().unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for (way, md) in both_ways(root.path()).iter().enumerate() {
        for fsync in [false, true] {
            let path = md.deliver(b"X-A: 1\r\n", &mut &body[..], fsync).unwrap();
            assert_eq!(path.parent().unwrap(), md.new_dir());
            let stored = fs::read(&path).unwrap();
            assert_eq!(&stored[..8], b"X-A: 1\r\n");
            assert!(stored[8..] == body[..], "body differs");
            let mut cursor = io::Cursor::new(&body);
            let path = md.deliver_buffered(b"X-C: 3\r\n", &mut cursor, fsync);
            let stored = fs::read(path.unwrap()).unwrap();
            assert!(stored == [&b"X-C: 3\r\n"[..], &body].concat());
            let path = md.deliver_bytes(b"X-B: 2\r\n", &body, fsync).unwrap();
            assert_eq!(
                fs::read(&path).unwrap(),
                [&b"X-B: 2\r\n"[..], &body].concat()
            );
            let path = md.deliver_bytes(b"H\r\n", b"small\r\n", fsync).unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"H\r\nsmall\r\n");
            let path = md.deliver(b"", &mut &b""[..], fsync).unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"");
        }
        assert_eq!(files(md.new_dir()).len(), 10);
        assert!(files(md.tmp_dir()).is_empty());
        #[cfg(unix)]
        for path in files(md.new_dir()) {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
        assert_way(md, way != 1);
    }
}

/// A reader that hands out a few bytes at a time (and is interrupted in between): the
/// header comes once, first, and every block follows in order.
#[test]
fn small_blocks_are_stored_in_order() {
    let root = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    for md in both_ways(root.path()) {
        for (header, step) in [(&b"X-Peer: ::1\r\n"[..], 7), (b"", 1), (b"H: v\r\n", 4096)] {
            let mut body = Dribble {
                data: data.clone(),
                pos: 0,
                step,
                interrupt: true,
            };
            let path = md.deliver_buffered(header, &mut body, false).unwrap();
            assert!(fs::read(&path).unwrap() == [header, &data].concat());
            let mut body = Dribble {
                pos: 0,
                interrupt: true,
                ..body
            };
            let path = md.deliver(header, &mut body, false).unwrap();
            assert!(fs::read(&path).unwrap() == [header, &data].concat());
        }
        assert!(files(md.tmp_dir()).is_empty());
    }
}

/// `write_pair` goes on after short writes, in the vectored part and after it.
#[test]
fn write_pair_survives_short_writes() {
    struct Trickle(Vec<u8>);
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    for (a, b) in [
        (&b"header\r\n"[..], &b"body text"[..]),
        (b"", b"x"),
        (b"ab", b""),
    ] {
        let mut out = Trickle(Vec::new());
        write_pair(&mut out, a, b).unwrap();
        assert_eq!(out.0, [a, b].concat());
    }
}

/// Every write but the last starts and ends on the 64 KiB grid, whatever the header and
/// block sizes; the bytes come out in order.
#[test]
fn grid_writer_keeps_writes_on_the_grid() {
    struct Record(Vec<u8>, Vec<(usize, usize)>);
    impl Write for Record {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1.push((self.0.len(), buf.len()));
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let start = self.0.len();
            for buf in bufs {
                self.0.extend_from_slice(buf);
            }
            self.1.push((start, self.0.len() - start));
            Ok(self.0.len() - start)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    for header_len in [0, 150, GRID - 1, GRID, 3 * GRID + 5] {
        for block in [1, 4013, 4096, 65535, 65536, 65537, 200_000] {
            let header = vec![b'h'; header_len];
            let mut out = Record(Vec::new(), Vec::new());
            let mut w = GridWriter {
                file: &mut out,
                carry: Vec::new(),
            };
            w.push(&header).unwrap();
            for chunk in data.chunks(block) {
                w.push(chunk).unwrap();
            }
            w.finish().unwrap();
            assert!(
                out.0 == [&header[..], &data].concat(),
                "{header_len} {block}"
            );
            let (last, aligned) = out.1.split_last().unwrap();
            for &(offset, len) in aligned {
                assert_eq!((offset % GRID, len % GRID), (0, 0), "{header_len} {block}");
            }
            assert_eq!(last.0 % GRID, 0);
            assert!(last.1 < GRID);
        }
    }
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
    for (way, md) in both_ways(root.path()).iter().enumerate() {
        for size in [0, 10, 100_000, 1_000_000] {
            for fsync in [false, true] {
                let err = md
                    .deliver(b"H: 1\r\n", &mut Broken(size), fsync)
                    .unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidData);
                let mut body = BufReader::with_capacity(100, Broken(size));
                let err = md
                    .deliver_buffered(b"H: 1\r\n", &mut body, fsync)
                    .unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            }
        }
        assert!(files(md.new_dir()).is_empty());
        assert!(files(md.tmp_dir()).is_empty());
        // A read error is not a reason to give up O_TMPFILE.
        assert_way(md, way != 1);
    }
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
    let path = md.publish(&tmp, taken.clone()).unwrap();
    assert_ne!(path, taken);
    assert_eq!(fs::read(&taken).unwrap(), b"old mail");
    assert_eq!(fs::read(&path).unwrap(), b"new mail");
}

/// The same for an O_TMPFILE file, by either way of linking it (`AT_EMPTY_PATH`, and the
/// `/proc/self/fd` path used where the kernel refuses that): linkat fails on the taken name,
/// a fresh one is used.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn link_unnamed_never_overwrites() {
    let links: [fn(&File, &Path) -> io::Result<()>; 2] = [unnamed::link, unnamed::link_by_proc];
    for link in links {
        let root = tempfile::tempdir().unwrap();
        let md = Maildir::create(root.path()).unwrap();
        let Some(mut file) = unnamed::create(md.tmp_dir()).unwrap() else {
            return; // no O_TMPFILE on this file system
        };
        file.write_all(b"new mail").unwrap();
        let taken = md.new_dir().join("taken");
        fs::write(&taken, b"old mail").unwrap();
        let path = md.link_new(taken.clone(), |to| link(&file, to)).unwrap();
        assert_ne!(path, taken);
        assert_eq!(fs::read(&taken).unwrap(), b"old mail");
        assert_eq!(fs::read(&path).unwrap(), b"new mail");
        assert!(files(md.tmp_dir()).is_empty());
    }
}

/// When linking the O_TMPFILE file fails (no /proc), the written message is copied into
/// a named tmp/ file and delivered, and O_TMPFILE is not tried again.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn failed_link_falls_back_to_a_copy() {
    let root = tempfile::tempdir().unwrap();
    let md = Maildir::create(root.path()).unwrap();
    let Some(mut file) = unnamed::create(md.tmp_dir()).unwrap() else {
        return;
    };
    file.write_all(b"H: 1\r\nbody\r\n").unwrap();
    let error = io::Error::from(io::ErrorKind::NotFound);
    let path = md.relink_by_copy(file, true, error).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"H: 1\r\nbody\r\n");
    assert!(!md.unnamed_tmp.load(Ordering::Relaxed));
    assert!(files(md.tmp_dir()).is_empty());
    // When the copy fails too, the link's error is the one reported.
    let md = Maildir::create(root.path().join("b")).unwrap();
    let file = unnamed::create(md.tmp_dir()).unwrap().unwrap();
    fs::remove_dir(md.tmp_dir()).unwrap();
    let error = io::Error::other("link failed");
    let err = md.relink_by_copy(file, false, error).unwrap_err();
    assert_eq!(err.to_string(), "link failed");
    assert!(md.unnamed_tmp.load(Ordering::Relaxed));
    assert!(files(md.new_dir()).is_empty());
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

/// Every length of recipient around the fold point: no line passes 998 characters, the
/// comma a fold leaves at the end of a line included.
#[test]
fn folded_lines_never_pass_the_limit() {
    for len in 5..=40 {
        for count in [44, 45, 46, 60, 200] {
            let rcpts: Vec<String> = (0..count)
                .map(|i| format!("{i:0w$}@x", w = len - 2))
                .collect();
            let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
            let h = String::from_utf8(trace_header([127, 0, 0, 1].into(), "", &refs)).unwrap();
            let longest = h.split("\r\n").map(str::len).max().unwrap_or(0);
            assert!(longest <= MAX_LINE, "{len} x {count}: a line of {longest}");
            let unfolded = h.replace("\r\n ", " ");
            assert!(unfolded.contains(&format!("X-RcptTo: {}\r\n", refs.join(", "))));
        }
    }
}

/// A full disk or quota is 452 4.3.1; other local errors, and the client's own read errors
/// even when they carry ENOSPC's number, are 451 4.3.0.
#[test]
fn full_disk_is_452_other_errors_451() {
    let code = |e: io::Error, read_failed| {
        let r = failure_reply(&e, read_failed);
        (r.code(), r.enhanced().unwrap_or_default().to_string())
    };
    let enospc = || io::Error::from_raw_os_error(28);
    assert_eq!(code(enospc(), false), (452, "4.3.1".to_string()));
    assert_eq!(code(enospc(), true), (451, "4.3.0".to_string()));
    #[cfg(target_os = "linux")]
    assert_eq!(
        code(io::Error::from_raw_os_error(122), false),
        (452, "4.3.1".to_string())
    );
    let denied = io::Error::from(io::ErrorKind::PermissionDenied);
    assert_eq!(code(denied, false), (451, "4.3.0".to_string()));
}
