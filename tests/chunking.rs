//! CHUNKING and BDAT over real sockets (RFC 3030 §2, §4): chunks byte-exact, pipelined,
//! refused in step with the client, and the EHLO keywords that go with the verb.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{codes, replies, start, Client};
use indy_smtp::{Command, Context, Reply};

fn ehlo(c: &mut Client) -> String {
    c.expect("EHLO client.example", 250)
}

// ---- CHUNKING / BDAT (RFC 3030 §2, §4) ----

fn bdat(c: &mut Client, chunk: &[u8], last: bool) -> (u16, String) {
    let cmd = format!(
        "BDAT {}{}\r\n",
        chunk.len(),
        if last { " LAST" } else { "" }
    );
    let mut wire = cmd.into_bytes();
    wire.extend_from_slice(chunk);
    c.send(&wire);
    c.read_reply()
}

fn envelope(c: &mut Client) {
    c.expect("MAIL FROM:<a@b>", 250);
    c.expect("RCPT TO:<c@d>", 250);
}

#[test]
fn bdat_chunks_delivered_byte_exact() {
    let s = start(|_| {});
    let mut c = s.client();
    ehlo(&mut c);
    envelope(&mut c);
    // CRLF.CRLF, a bare LF and NUL inside a chunk are just octets (RFC 3030 §2).
    let first = b"Subject: x\r\n\r\nline\r\n.\r\nQUIT\r\n\n.\n\x00";
    let second = b"..tail\r\n.\r\n";
    let (code, text) = bdat(&mut c, first, false);
    assert_eq!(code, 250, "{text}");
    assert_eq!(bdat(&mut c, second, true).0, 250);
    assert_eq!(
        c.cmd("NOOP").0,
        250,
        "no stray reply from the chunk contents"
    );
    let mut want = first.to_vec();
    want.extend_from_slice(second);
    assert_eq!(s.messages()[0].data, want);
    // Several chunks pipelined in one write.
    envelope(&mut c);
    c.send(b"BDAT 3\r\nabcBDAT 0\r\nBDAT 2 LAST\r\nde");
    assert_eq!(codes(&replies(&mut c, 3)), [250, 250, 250]);
    assert_eq!(s.messages()[1].data, b"abcde");
}

/// Chunks can arrive minutes apart, so with `Direct` (which keeps no copy of a DATA message)
/// a BDAT message is collected in a temporary file, not in memory, and the handler gets it as
/// a `RawStream::File`; `Memory` keeps it in memory as asked.
#[test]
fn bdat_under_direct_is_spooled_to_a_file() {
    for (stream_type, want_file) in [
        (indy_smtp::RawStreamType::Direct, true),
        (indy_smtp::RawStreamType::Memory, false),
    ] {
        let kinds = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = Arc::clone(&kinds);
        let s = start(move |srv| {
            srv.raw_stream_type = stream_type;
            let store = srv.on_receive_raw.take().unwrap();
            srv.on_receive_raw = Some(Box::new(move |thread, stream| {
                seen.lock()
                    .push(matches!(stream, indy_smtp::RawStream::File(_)));
                store(thread, stream)
            }));
        });
        let mut c = s.client();
        ehlo(&mut c);
        envelope(&mut c);
        assert_eq!(bdat(&mut c, b"Subject: x\r\n\r\n", false).0, 250);
        assert_eq!(bdat(&mut c, b"body\r\n", true).0, 250);
        assert_eq!(*kinds.lock(), [want_file], "{stream_type:?}");
        assert_eq!(s.messages()[0].data, b"Subject: x\r\n\r\nbody\r\n");
    }
}

#[test]
fn bdat_zero_last_delivers() {
    let s = start(|_| {});
    let mut c = s.client();
    ehlo(&mut c);
    envelope(&mut c);
    assert_eq!(bdat(&mut c, b"", true).0, 250);
    envelope(&mut c);
    assert_eq!(bdat(&mut c, b"hello", false).0, 250);
    assert_eq!(bdat(&mut c, b"", true).0, 250);
    let m = s.messages();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].data, b"");
    assert_eq!(m[1].data, b"hello");
}

fn help(ctx: &mut Context<'_>, _: &Command) -> indy_smtp::Result<()> {
    ctx.reply(Reply::new(214, "See RFC 5321"))
}

/// EHLO offers CHUNKING, BINARYMIME and HELP only while their verbs are in the table: a
/// client that saw CHUNKING would send chunks a server without BDAT runs as commands.
#[test]
fn removed_verbs_are_not_offered_in_ehlo() {
    let s = start(|srv| {
        srv.on_command_help = Some(Arc::new(help));
        srv.command_handlers.remove("BDAT");
        srv.command_handlers.remove("HELP");
    });
    let mut c = s.client();
    let caps = ehlo(&mut c);
    for keyword in ["CHUNKING", "BINARYMIME", "HELP"] {
        assert!(!caps.contains(keyword), "{keyword} offered: {caps}");
    }
    assert!(caps.contains("8BITMIME"), "{caps}");
    // Not offered, so not accepted either (RFC 1869 §6): 555, not a transaction that could
    // never end (DATA refuses BINARYMIME, and BDAT is gone).
    let (code, text) = c.cmd("MAIL FROM:<a@b> BODY=BINARYMIME");
    assert_eq!(code, 555, "{text}");
    let kept = start(|srv| {
        srv.on_command_help = Some(Arc::new(help));
    });
    let caps = ehlo(&mut kept.client());
    for keyword in ["CHUNKING", "BINARYMIME", "HELP"] {
        assert!(caps.contains(keyword), "{keyword} missing: {caps}");
    }
}

#[test]
fn bdat_before_mail_is_refused_and_its_chunk_consumed() {
    let s = start(|srv| srv.limits.max_bad_commands = 100);
    let mut c = s.client();
    ehlo(&mut c);
    c.send(b"BDAT 12\r\nNOOP\r\nNOOP\r\nVRFY postmaster\r\n");
    let t = c.read_reply();
    assert_eq!(t.0, 503, "{t:?}");
    assert_eq!(
        c.read_reply().0,
        252,
        "the NOOPs inside the chunk must not run"
    );
    // Without recipients: 554 (RFC 5321 §3.3), chunk consumed too.
    c.expect("MAIL FROM:<a@b>", 250);
    c.send(b"BDAT 6 LAST\r\nRSET\r\nVRFY postmaster\r\n");
    assert_eq!(c.read_reply().0, 554);
    assert_eq!(c.read_reply().0, 252);
    assert!(s.messages().is_empty());
}

/// Found by a protocol audit: a malformed BDAT ends the session (its chunk cannot be
/// skipped) with a 421, the one reply RFC 5321 §3.8 allows before a server closes; BDAT
/// after HELO is refused (CHUNKING was never offered) with its chunk consumed; RCPT between
/// chunks is refused like DATA and MAIL are.
#[test]
fn bdat_misuse_is_refused_in_step_with_the_client() {
    use std::io::Read;
    let s = start(|srv| srv.limits.max_bad_commands = 100);
    for bad in ["BDAT 1x", "BDAT", "BDAT -1", "BDAT +3 LAST"] {
        let mut c = s.client();
        ehlo(&mut c);
        envelope(&mut c);
        let (code, text) = c.cmd(bad);
        assert_eq!(code, 421, "{bad}: {text}");
        assert!(text.starts_with("4.5.4 test.example "), "{bad}: {text}");
        assert_eq!(
            c.reader.read(&mut [0u8; 16]).unwrap(),
            0,
            "{bad}: not closed"
        );
    }
    // A readable size with a bad rest: the chunk is skipped, 501, and the session goes on
    // (the transaction is dropped: its message would have a hole).
    let mut c = s.client();
    ehlo(&mut c);
    envelope(&mut c);
    for bad in ["BDAT 6 NOTLAST", "BDAT 6 LAST extra"] {
        c.send(format!("{bad}\r\nQUIT\r\n").as_bytes());
        let (code, text) = c.read_reply();
        assert_eq!(code, 501, "{bad}: {text}");
    }
    c.expect("NOOP", 250);
    assert_eq!(
        bdat(&mut c, b"x", true).0,
        503,
        "the transaction was dropped"
    );
    let mut c = s.client();
    c.expect("HELO client.example", 250);
    envelope(&mut c);
    c.send(b"BDAT 6 LAST\r\nQUIT\r\n");
    assert_eq!(c.read_reply().0, 503);
    c.expect("NOOP", 250);
    assert!(s.messages().is_empty());
    ehlo(&mut c);
    envelope(&mut c);
    assert_eq!(bdat(&mut c, b"first ", false).0, 250);
    c.expect("RCPT TO:<late@d>", 503);
    assert_eq!(bdat(&mut c, b"last", true).0, 250);
    let m = s.messages();
    assert_eq!(
        (m[0].rcpts.clone(), m[0].data.clone()),
        (vec!["c@d".to_string()], b"first last".to_vec())
    );
}

#[test]
fn rset_mid_bdat_drops_the_chunks() {
    let s = start(|srv| srv.limits.max_bad_commands = 100);
    let mut c = s.client();
    ehlo(&mut c);
    envelope(&mut c);
    assert_eq!(bdat(&mut c, b"dropped ", false).0, 250);
    c.expect("RSET", 250);
    assert_eq!(bdat(&mut c, b"orphan", true).0, 503);
    envelope(&mut c);
    assert_eq!(bdat(&mut c, b"kept", true).0, 250);
    let m = s.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].data, b"kept");
}

#[test]
fn data_after_bdat_is_a_sequence_error() {
    let s = start(|_| {});
    let mut c = s.client();
    ehlo(&mut c);
    envelope(&mut c);
    assert_eq!(bdat(&mut c, b"abc", false).0, 250);
    let t = c.expect("DATA", 503);
    assert!(t.starts_with("5.5.1"), "{t}");
    assert_eq!(bdat(&mut c, b"def", true).0, 250);
    assert_eq!(s.messages()[0].data, b"abcdef");
}

#[test]
fn bdat_size_limit_counts_all_chunks() {
    // RFC 1870 §6.2 / RFC 3030 §2: over the limit → 552, the chunk still consumed.
    let s = start(|srv| {
        srv.limits.max_message_size = 100;
        srv.limits.max_bad_commands = 100;
    });
    let mut c = s.client();
    ehlo(&mut c);
    envelope(&mut c);
    assert_eq!(bdat(&mut c, &[b'a'; 60], false).0, 250);
    let (code, text) = bdat(&mut c, &[b'b'; 60], true);
    assert_eq!(code, 552);
    assert!(text.starts_with("5.3.4"), "{text}");
    assert_eq!(c.cmd("NOOP").0, 250);
    assert!(s.messages().is_empty());
    envelope(&mut c);
    assert_eq!(
        bdat(&mut c, &[b'c'; 100], true).0,
        250,
        "exactly the limit is fine"
    );
    assert_eq!(s.messages().len(), 1);
}

#[test]
fn disconnect_mid_bdat_delivers_nothing() {
    let disconnects = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&disconnects);
    let s = start(move |srv| {
        srv.on_disconnect = Some(Box::new(move |_| {
            d.fetch_add(1, Ordering::SeqCst);
        }))
    });
    let mut c = s.client();
    ehlo(&mut c);
    envelope(&mut c);
    assert_eq!(bdat(&mut c, b"first chunk", false).0, 250);
    c.send(b"BDAT 100 LAST\r\nonly part of it");
    drop(c);
    assert!(
        common::wait_until(|| disconnects.load(Ordering::SeqCst) == 1),
        "the session did not end"
    );
    assert!(s.messages().is_empty());
    let mut c = s.client();
    ehlo(&mut c);
    envelope(&mut c);
    assert_eq!(bdat(&mut c, b"next", true).0, 250);
    assert_eq!(s.messages().len(), 1);
}
