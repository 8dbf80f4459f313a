//! Odd and hostile input: header-only mail, bad UTF-8, mutations, error paths.

use super::*;

// ---------------------------------------------------------------- robustness

#[test]
fn header_only_message_parses() {
    let cases: &[(&[u8], &[&str])] = &[
        (
            b"From: a@b.com\r\nTo: c@d.com\r\nSubject: only headers\r\n",
            &["e@f.com"],
        ),
        (b"To: c@d.com\nSubject: only headers", &["e@f.com"]),
        (b"Subject: only headers", &["c@d.com", "e@f.com"]),
    ];
    for &(raw, bcc) in cases {
        let msg = Message::parse(raw.to_vec(), &["c@d.com", "e@f.com"], false, false).unwrap();
        assert_eq!(msg.subject.as_deref(), Some("only headers"));
        assert_eq!(msg.header_bytes(), raw);
        assert_eq!(msg.body(), b"");
        assert_eq!(msg.text_bodies.len(), 1);
        assert_eq!(msg.text_bodies[0].text, "");
        assert_eq!(msg.bcc_list, bcc);
    }
    let empty = parse_ok(b"");
    assert!(empty.subject.is_none() && empty.raw().is_empty());
    assert_eq!(empty.text_bodies.len(), 1);
}

#[test]
fn invalid_utf8_in_headers() {
    let raw = b"Subject: caf\xe9 \xff\r\nFrom: J\xf6rg <j@x.de>\r\nX-Bin: \x80\r\n\r\nbody";
    let decoded = Message::parse(raw.to_vec(), &[], false, false).unwrap();
    // mailparse reads non-UTF-8 header bytes as Latin-1.
    assert_eq!(decoded.subject.as_deref(), Some("café ÿ"));
    assert_eq!(addrs(&decoded.from), ["Jörg <j@x.de>"]);
    let kept = Message::parse(raw.to_vec(), &[], true, false).unwrap();
    assert_eq!(kept.subject.as_deref(), Some("caf\u{fffd} \u{fffd}"));
    assert_eq!(kept.from[0].address, "j@x.de");
    assert_eq!(kept.header("x-bin").as_deref(), Some("\u{fffd}"));
    assert_eq!(kept.raw(), raw);
}

#[test]
fn raw_is_byte_exact_after_parse() {
    let samples: &[&[u8]] = &[
        MIXED,
        b"Subject: x\r\n\r\n..dot stays as given\r\n\x00\xff\r\n",
        b"A: b\n\nlf only\n",
        b"",
    ];
    for &raw in samples {
        let msg = parse_ok(raw);
        assert_eq!(msg.raw(), raw);
        let rebuilt = [msg.header_bytes(), msg.body()].concat();
        assert_eq!(rebuilt, raw);
        assert_eq!(msg.into_raw(), raw);
    }
}

#[test]
fn parse_reuses_the_buffer() {
    let raw = MIXED.to_vec();
    let ptr = raw.as_ptr();
    let msg = Message::parse(raw, &[], false, false).unwrap();
    assert_eq!(msg.raw().as_ptr(), ptr);
    let back = msg.into_raw();
    assert_eq!(back.as_ptr(), ptr);
}

#[test]
fn errors_hand_back_the_raw_bytes() {
    // (raw, expect Malformed, message fragment)
    let cases: &[(&[u8], bool, &str)] = &[
        (b" starts with a continuation\r\n\r\nbody", true, "malformed message"),
        (b"A: 1\r\n\rB: 2\r\n\r\n", true, "lone CR"),
        (
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n bad part header\r\n\r\nx\r\n--B--",
            true,
            "malformed message",
        ),
    ];
    for &(raw, malformed, fragment) in cases {
        let err = Message::parse(raw.to_vec(), &["a@b.c"], false, false).unwrap_err();
        assert_eq!(
            matches!(err, MessageError::Malformed { .. }),
            malformed,
            "{err:?}"
        );
        assert!(err.to_string().contains(fragment), "{err}");
        assert!(
            !format!("{err:?}").contains("[32,"),
            "Debug must not dump the bytes"
        );
        assert_eq!(err.raw(), raw);
        let fallback = Message::unparsed(err.into_raw());
        assert_eq!(fallback.raw(), raw);
    }
    // With no_decode the body is never decoded, so a bad base64 body is no error.
    let raw = b"Content-Transfer-Encoding: base64\r\n\r\n!!!";
    assert!(Message::parse(raw.to_vec(), &[], true, false).is_ok());
}

#[test]
fn broken_transfer_encoding_keeps_the_part_undecoded() {
    // Refusing a whole message over one bad part would lose real mail.
    let raw = b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!";
    let m = Message::parse(raw.to_vec(), &[], false, false).unwrap();
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].data, b"!!!not base64!!!");
    let raw = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nabc";
    let m = Message::parse(raw.to_vec(), &[], false, false).unwrap();
    assert_eq!(m.text_bodies[0].text, "abc");
}

#[test]
fn debug_output_is_short() {
    let msg = Message::unparsed(vec![b'x'; 100_000]);
    let text = format!("{msg:?}");
    assert!(text.contains("<100000 bytes>"), "{text}");
    assert!(text.len() < 1000);
    let parsed = Message::parse(MIXED.to_vec(), &[], false, false).unwrap();
    let text = format!("{parsed:?}");
    assert!(
        text.contains("data_len: 9") && text.contains("report.pdf"),
        "{text}"
    );
    assert!(
        !text.contains("[37, 80"),
        "attachment bytes must not be dumped: {text}"
    );
}

#[test]
fn mutated_messages_never_panic() {
    // Deterministic xorshift fuzzing over a MIME sample: parse may fail, but must not panic
    // and must always give the bytes back unchanged.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"\r\n :;,<>\"=-_?@()\\Bb-\xff\x00\t";
    for _ in 0..400 {
        let mut raw = MIXED.to_vec();
        for _ in 0..(next() % 12 + 1) {
            let len = raw.len() as u64;
            let at = (next() % len) as usize;
            match next() % 3 {
                0 => raw[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                1 => {
                    raw.remove(at);
                }
                _ => raw.insert(at, alphabet[(next() % alphabet.len() as u64) as usize]),
            }
        }
        let copy = raw.clone();
        for no_decode in [false, true] {
            let result = Message::parse(raw.clone(), &["c@d.com", "x@y.z"], no_decode, false);
            let back = match result {
                Ok(msg) => {
                    let _ = (msg.headers(), msg.header("to"));
                    msg.into_raw()
                }
                Err(err) => err.into_raw(),
            };
            assert_eq!(back, copy);
        }
        let msg = Message::unparsed(raw);
        assert_eq!([msg.header_bytes(), msg.body()].concat(), copy);
    }
}
