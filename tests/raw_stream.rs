//! `RawStream::discard` in every `RawStreamType` (Indy's rmRaw stream, read and dropped).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::start;
use indy_smtp::{RawStream, RawStreamType, Reply};

#[test]
fn discard_skips_the_whole_message_in_every_stream_type() {
    let body = b"Subject: x\r\n\r\n..dotted line\r\nsecond line\r\n";
    // send_mail dot-stuffs and the server unstuffs (RFC 5321 §4.5.2): the body comes back whole.
    let expected = body.len() as u64;
    for kind in [
        RawStreamType::File,
        RawStreamType::Memory,
        RawStreamType::Direct,
    ] {
        let skipped = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&skipped);
        let s = start(move |srv| {
            srv.raw_stream_type = kind;
            srv.on_receive_raw = Some(Box::new(move |_thread, stream| {
                let n = stream
                    .discard()
                    .map_err(|e| Reply::new(451, e.to_string()))?;
                seen.store(n, Ordering::SeqCst);
                Ok(())
            }));
        });
        let mut c = s.client();
        assert_eq!(
            c.send_mail("a@b.example", &["c@d.example"], body).0,
            250,
            "{kind:?}"
        );
        assert_eq!(skipped.load(Ordering::SeqCst), expected, "{kind:?}");
        // The session is still in step: a second transaction works.
        assert_eq!(
            c.send_mail("a@b.example", &["c@d.example"], b"x\r\n").0,
            250,
            "{kind:?}"
        );
        assert_eq!(skipped.load(Ordering::SeqCst), 3, "{kind:?}");
    }
}

#[test]
fn discard_reports_a_broken_limit_in_direct_mode() {
    let s = start(|srv| {
        srv.raw_stream_type = RawStreamType::Direct;
        srv.limits.max_message_size = 100;
        srv.on_receive_raw = Some(Box::new(|_thread, stream| {
            stream
                .discard()
                .map(drop)
                .map_err(|e| Reply::new(451, e.to_string()))
        }));
    });
    let mut c = s.client();
    let big = vec![b'a'; 1000];
    let (code, text) = c.send_mail("a@b.example", &["c@d.example"], &big);
    // RFC 1870 §6.2: the size refusal wins over whatever the handler answered.
    assert_eq!(
        (code, text.as_str()),
        (552, "5.3.4 Message size exceeds fixed maximum message size")
    );
    assert_eq!(c.cmd("NOOP").0, 250);
}

/// A handler that replaces the `Direct` stream takes the rest of the message with it: the
/// session cannot stay in step, so the client gets `421 4.3.0` and the connection closes
/// (RFC 5321 §3.8), instead of a close with no reply.
#[test]
fn a_replaced_direct_stream_ends_the_session_with_421() {
    let s = start(|srv| {
        srv.raw_stream_type = RawStreamType::Direct;
        srv.on_receive_raw = Some(Box::new(|_thread, stream| {
            *stream = RawStream::Memory(std::io::Cursor::new(Vec::new()));
            Ok(())
        }));
    });
    let mut c = s.client();
    let (code, text) = c.send_mail(
        "a@b.example",
        &["c@d.example"],
        b"Subject: x\r\n\r\nbody\r\n",
    );
    assert_eq!(code, 421, "{text}");
    assert!(text.starts_with("4.3.0 "), "{text}");
    assert!(c.is_closed());
    assert!(s.messages().is_empty());
}

/// A `Direct` stream that timed out stays failed: a handler that reads again gets the
/// timeout at once, not the data the client sent after it (the session is over by then),
/// nor a second wait. The handler and the test take turns through channels, so nothing here
/// depends on how long anything takes.
#[test]
fn a_direct_stream_that_timed_out_stays_failed() {
    use std::io::{BufRead, ErrorKind};
    use std::time::Duration;
    let (first_tx, first_rx) = crossbeam_channel::bounded::<ErrorKind>(1);
    let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(1);
    let (second_tx, second_rx) = crossbeam_channel::bounded::<Result<usize, ErrorKind>>(1);
    let s = start(move |srv| {
        srv.raw_stream_type = RawStreamType::Direct;
        srv.limits.data_timeout = Duration::from_millis(300);
        srv.limits.min_data_rate = 0;
        srv.on_receive_raw = Some(Box::new(move |_thread, stream| {
            let RawStream::Direct(reader) = stream else {
                return Err(Reply::new(451, "not direct"));
            };
            // What has arrived, then the wait that times out.
            let first = loop {
                match reader.fill_buf().map(<[u8]>::len) {
                    Ok(0) => break ErrorKind::UnexpectedEof,
                    Ok(n) => reader.consume(n),
                    Err(e) => break e.kind(),
                }
            };
            let _ = first_tx.send(first);
            let _ = go_rx.recv_timeout(Duration::from_secs(10));
            let second = reader.fill_buf().map(<[u8]>::len).map_err(|e| e.kind());
            let _ = second_tx.send(second);
            Ok(())
        }));
    });
    let mut c = s.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@b.example>", 250);
    c.expect("RCPT TO:<c@d.example>", 250);
    c.expect("DATA", 354);
    c.send(b"Subject: slow\r\n");
    let first = first_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("first read");
    assert_eq!(first, ErrorKind::TimedOut);
    c.send(b"late data\r\n.\r\n");
    go_tx.send(()).unwrap();
    let second = second_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("second read");
    assert_eq!(
        second,
        Err(ErrorKind::TimedOut),
        "read on after the timeout"
    );
    assert!(s.messages().is_empty());
}
