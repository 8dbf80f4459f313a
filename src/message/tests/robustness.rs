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

/// Hostile headers that made `mailparse` quadratic or worse (an audit measured 100 s of CPU for
/// 1 MB of `=?` on one Subject line, 0.9 s for one 7.8 KB line of `=?` and `?=`, and seconds
/// for thousands of RFC 2231 parameters) are not handed to its decoders: a value whose
/// decoding would cost more than the message's budget is kept as received, and only the first
/// 64 parameters of a Content-Type are parsed. Ordinary headers are decoded as before, long
/// ones included.
#[test]
fn costly_header_values_and_parameter_floods_are_not_decoded() {
    let encoded = "=?utf-8?q?caf=C3=A9?=";
    let short = format!("Subject: {encoded}\r\n\r\nbody\r\n");
    assert_eq!(parse_ok(short.as_bytes()).subject.as_deref(), Some("café"));

    // A long line with few encoded words costs about its length: decoded.
    let long_plain = "x".repeat(20_000);
    let long = format!("Subject: {encoded} {long_plain}\r\n\r\nbody\r\n");
    assert_eq!(
        parse_ok(long.as_bytes()).subject,
        Some(format!("café {long_plain}"))
    );

    // The fuzz audit's cubic line, as a Subject and in a To: kept as received.
    let cubic = format!("{}{}", " =?".repeat(1300), "?=x".repeat(1300));
    let hostile =
        format!("Subject: {encoded}{cubic}\r\nTo: {encoded} <a@b.example>{cubic}\r\n\r\nbody\r\n");
    let msg = parse_ok(hostile.as_bytes());
    assert_eq!(msg.subject, Some(format!("{encoded}{cubic}")));
    assert!(
        msg.to.iter().all(|a| a.name.as_deref() != Some("café")),
        "{:?}",
        &msg.to[..1]
    );

    let many: String = (0..100).map(|i| format!("; k{i}*0*=utf-8''v{i}")).collect();
    let tail =
        format!("Content-Type: text/plain; charset=latin1{many}; name=late.txt\r\n\r\nx\r\n");
    let msg = parse_ok(tail.as_bytes());
    assert_eq!(msg.charset.as_deref(), Some("latin1"));
    // The 102nd parameter is past the limit: not seen, so the part stays a text part.
    assert_eq!(msg.text_bodies.len(), 1, "{:?}", msg.attachments);
}

/// The fuzz audit's folded address field: lines under any per-line limit, which the lenient
/// address fallback joins into one long line. It is costed as that line, so it is not decoded.
#[test]
fn folded_hostile_address_field_is_not_decoded_whole() {
    let line = "=?a?q?".repeat(1300);
    let folded: Vec<String> = (0..8).map(|_| line.clone()).collect();
    let raw = format!("To: {}\r\n\r\nbody\r\n", folded.join("\r\n "));
    let msg = parse_ok(raw.as_bytes());
    assert_eq!(msg.to.len(), 1, "{:?}", msg.to.len());
    assert!(msg.to[0].address.starts_with("=?a?q?"), "kept as received");
}

/// One message's decoding budget is shared by all its fields: when many costly (but each
/// affordable) fields have used it up, later fields are kept as received; the message is
/// still parsed and nothing is refused.
#[test]
fn the_decoding_budget_is_per_message() {
    let encoded = "=?utf-8?q?caf=C3=A9?=";
    // About 10^6 units each (30 `=?`, 30 `?=`, 1 KB): some 270 fit in the budget.
    let filler = format!("{}{}", " =?x?=".repeat(30), " a".repeat(400));
    let field = |who: &str| format!("To: {encoded}{filler} <{who}@d.example>\r\n");
    let mut raw = field("first");
    for i in 0..400 {
        raw.push_str(&field(&format!("u{i}")));
    }
    raw.push_str(&field("last"));
    raw.push_str("\r\nbody\r\n");
    let msg = parse_ok(raw.as_bytes());
    let name = |address: &str| {
        let entry = msg.to.iter().find(|a| a.address == address);
        entry.and_then(|a| a.name.clone()).unwrap_or_default()
    };
    assert!(
        name("first@d.example").starts_with("café "),
        "{}",
        name("first@d.example")
    );
    assert!(
        name("last@d.example").starts_with(encoded),
        "{}",
        name("last@d.example")
    );
    assert_eq!(msg.to.len(), 402);
}

/// A flood of MIME parts is cut at MAX_MIME_PARTS: the first ones are parsed, the rest are
/// kept as one attachment of the multipart's type, bytes and all (delimiters left out).
#[test]
fn parts_past_the_limit_become_one_attachment() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for i in 0..MAX_MIME_PARTS + 10 {
        raw.extend_from_slice(format!("--b\r\n\r\npart {i}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"--b--\r\n");
    let msg = parse_ok(&raw);
    assert_eq!(msg.text_bodies.len(), MAX_MIME_PARTS);
    assert_eq!(msg.attachments.len(), 1);
    let rest = &msg.attachments[0];
    assert_eq!(rest.content_type, "multipart/mixed");
    let rest = String::from_utf8_lossy(&rest.data);
    for i in MAX_MIME_PARTS..MAX_MIME_PARTS + 10 {
        assert!(rest.contains(&format!("part {i}")), "part {i} missing");
    }
    assert!(!rest.contains(&format!("part {}\r", MAX_MIME_PARTS - 1)));
}
