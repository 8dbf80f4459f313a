use super::*;

mod addresses;
mod robustness;

fn parse_ok(raw: &[u8]) -> Message {
    match Message::parse(raw.to_vec(), &[], false, false) {
        Ok(msg) => msg,
        Err(err) => panic!("parse failed: {err}"),
    }
}

fn addrs(list: &[EmailAddress]) -> Vec<String> {
    list.iter().map(EmailAddress::text).collect()
}

// ---------------------------------------------------------------- unparsed (rmMessage)

#[test]
fn unparsed_splits_at_first_empty_line() {
    // (raw, expected header bytes, expected body)
    let cases: &[(&[u8], &[u8], &[u8])] = &[
        (
            b"A: 1\r\nB: 2\r\n\r\nbody\r\n",
            b"A: 1\r\nB: 2\r\n\r\n",
            b"body\r\n",
        ),
        (b"A: 1\nB: 2\n\nbody\n", b"A: 1\nB: 2\n\n", b"body\n"),
        (b"A: 1\r\n", b"A: 1\r\n", b""),
        (b"A: 1", b"A: 1", b""),
        (b"A: 1\r\nB: 2", b"A: 1\r\nB: 2", b""),
        (b"", b"", b""),
        (b"\r\nbody", b"\r\n", b"body"),
        (b"\nbody", b"\n", b"body"),
        (b"\r\n", b"\r\n", b""),
        (b"\r\n\r\n", b"\r\n", b"\r\n"),
        (b"A: 1\n\r\nbody", b"A: 1\n\r\n", b"body"),
        (b"A: 1\r\n\nbody", b"A: 1\r\n\n", b"body"),
        (b"A: 1\r\n\r\nx\r\n\r\ny", b"A: 1\r\n\r\n", b"x\r\n\r\ny"),
        // A blank-only line is a (folded) header line, not the separator.
        (b"A: 1\r\n \r\n\r\nb", b"A: 1\r\n \r\n\r\n", b"b"),
        (b"A: 1\r\n\t\r\n\r\nb", b"A: 1\r\n\t\r\n\r\n", b"b"),
        // A lone CR is not a line break.
        (b"A: 1\r\r\nb", b"A: 1\r\r\nb", b""),
        (b"A: \xff\xfe\r\n\r\n\xff", b"A: \xff\xfe\r\n\r\n", b"\xff"),
    ];
    for &(raw, head, body) in cases {
        let msg = Message::unparsed(raw.to_vec());
        assert_eq!(msg.header_bytes(), head, "headers of {raw:?}");
        assert_eq!(msg.body(), body, "body of {raw:?}");
        assert_eq!(msg.raw(), raw);
        assert!(!msg.is_parsed());
    }
}

#[test]
fn unparsed_leaves_parsed_fields_empty() {
    let raw = b"From: a@b.com\r\nTo: c@d.com\r\nSubject: s\r\nContent-Type: text/html\r\n\r\nx";
    let msg = Message::unparsed(raw.to_vec());
    assert!(msg.from.is_empty() && msg.to.is_empty() && msg.cc.is_empty());
    assert!(msg.reply_to.is_empty() && msg.sender.is_none() && msg.bcc_list.is_empty());
    assert!(msg.subject.is_none() && msg.date.is_none() && msg.message_id.is_none());
    assert!(msg.content_type.is_none() && msg.charset.is_none());
    assert!(msg.text_bodies.is_empty() && msg.attachments.is_empty());
    assert!(!msg.no_decode && !msg.no_encode && msg.x_server.is_none());
    assert_eq!(msg.header("subject").as_deref(), Some("s"));
    assert_eq!(msg.into_raw(), raw.to_vec());
}

// ---------------------------------------------------------------- headers()

#[test]
fn headers_keep_folding_and_order() {
    let raw = b"Subject: hello\r\n world\r\n\tagain\r\nX-A:  b \r\nNoColon\r\nTo : x@y.z\r\nEmpty:\r\nX-Fold:\r\n next\r\n\r\nBody: not a header\r\n";
    let msg = Message::unparsed(raw.to_vec());
    let expected = [
        ("Subject", "hello\r\n world\r\n\tagain"),
        ("X-A", "b "),
        ("NoColon", ""),
        ("To", "x@y.z"),
        ("Empty", ""),
        ("X-Fold", "\r\n next"),
    ];
    let got = msg.headers();
    assert_eq!(got.len(), expected.len());
    for ((name, value), (want_name, want_value)) in got.iter().zip(expected) {
        assert_eq!((name.as_str(), value.as_str()), (want_name, want_value));
    }
}

#[test]
fn header_lookup_is_case_insensitive_and_unfolds() {
    let raw = b"Subject: hello\r\n world\r\n\tagain\r\nsubject: second\r\nX-A:  b \r\nTo : x@y.z\r\nX-Fold:\r\n next\r\nX-LF: a\n b\n\nbody";
    let msg = Message::unparsed(raw.to_vec());
    let cases = [
        ("Subject", Some("hello world\tagain")),
        ("SUBJECT", Some("hello world\tagain")),
        ("x-a", Some("b")),
        ("to", Some("x@y.z")),
        ("X-Fold", Some("next")),
        ("X-LF", Some("a b")),
        ("Missing", None),
        ("", None),
    ];
    for (name, want) in cases {
        assert_eq!(msg.header(name).as_deref(), want, "{name}");
    }
}

#[test]
fn headers_edge_cases() {
    // Continuation before any field; bare LF lines; no empty line at all.
    let msg = Message::unparsed(b" stray\r\nA: 1\nB:2".to_vec());
    let got = msg.headers();
    assert_eq!(
        got,
        [
            ("".into(), "stray".into()),
            ("A".into(), "1".into()),
            ("B".into(), "2".into())
        ]
    );
    // Empty header block.
    assert!(Message::unparsed(b"\r\nA: 1\r\n".to_vec())
        .headers()
        .is_empty());
    assert!(Message::unparsed(Vec::new()).headers().is_empty());
    // Invalid UTF-8 becomes U+FFFD and never panics.
    let msg = Message::unparsed(b"X-\xff: v\xfe\xc3\r\n\r\n".to_vec());
    assert_eq!(
        msg.headers(),
        [("X-\u{fffd}".into(), "v\u{fffd}\u{fffd}".into())]
    );
}

#[test]
fn unfold_only_removes_breaks_before_blanks() {
    let cases = [
        ("a\r\n b", "a b"),
        ("a\n\tb", "a\tb"),
        ("a\r\nb", "a\r\nb"),
        ("a\r\n", "a\r\n"),
        ("a\rb", "a\rb"),
        ("", ""),
        ("\r\n \r\n x", "  x"),
    ];
    for (input, want) in cases {
        assert_eq!(unfold(input), want, "{input:?}");
    }
}

// ---------------------------------------------------------------- parse: simple mail

#[test]
fn parse_simple_text_mail() {
    let raw = b"From: Ann Smith <ann@a.org>\r\n\
        Sender: sec@a.org\r\n\
        Reply-To: replies@a.org\r\n\
        To: bob@b.org, \"Doe, Carl\" <carl@c.org>\r\n\
        Cc: dan@d.org\r\n\
        Subject: Hello\r\n there\r\n\
        Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
        Message-ID: <id1@a.org>\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        \r\n\
        Hi Bob,\r\n\xc3\xa9t\xc3\xa9.\r\n";
    let msg = Message::parse(raw.to_vec(), &["bob@b.org", "eve@e.org"], false, true).unwrap();
    assert!(msg.is_parsed() && !msg.no_decode && msg.no_encode);
    assert_eq!(addrs(&msg.from), ["Ann Smith <ann@a.org>"]);
    assert_eq!(msg.sender, Some(EmailAddress::new("sec@a.org")));
    assert_eq!(addrs(&msg.reply_to), ["replies@a.org"]);
    assert_eq!(addrs(&msg.to), ["bob@b.org", "\"Doe, Carl\" <carl@c.org>"]);
    assert_eq!(msg.to[1].name.as_deref(), Some("Doe, Carl"));
    assert_eq!(addrs(&msg.cc), ["dan@d.org"]);
    assert_eq!(msg.bcc_list, ["eve@e.org"]);
    assert_eq!(msg.subject.as_deref(), Some("Hello there"));
    assert_eq!(msg.date.as_deref(), Some("Mon, 1 Jan 2024 10:00:00 +0000"));
    assert_eq!(msg.message_id.as_deref(), Some("<id1@a.org>"));
    assert_eq!(msg.content_type.as_deref(), Some("text/plain"));
    assert_eq!(msg.charset.as_deref(), Some("utf-8"));
    assert_eq!(
        msg.text_bodies,
        [TextPart {
            content_type: "text/plain".into(),
            charset: Some("utf-8".into()),
            text: "Hi Bob,\r\nété.\r\n".into(),
        }]
    );
    assert!(msg.attachments.is_empty());
    assert!(msg.x_server.is_none());
    assert_eq!(msg.body(), b"Hi Bob,\r\n\xc3\xa9t\xc3\xa9.\r\n");
    assert_eq!(msg.raw(), raw);
}

#[test]
fn parse_defaults_without_content_type() {
    let msg = parse_ok(b"Subject: x\n\nplain body\n");
    assert_eq!(msg.content_type.as_deref(), Some("text/plain"));
    assert_eq!(msg.charset, None);
    assert_eq!(msg.text_bodies.len(), 1);
    assert_eq!(msg.text_bodies[0].text, "plain body\n");
    assert_eq!(msg.text_bodies[0].charset, None);
    // A Content-Type without type/subtype falls back to text/plain (RFC 2045 §5.2).
    let msg = parse_ok(b"Content-Type: bogus\n\nbody");
    assert_eq!(msg.content_type.as_deref(), Some("text/plain"));
    assert_eq!(msg.text_bodies[0].text, "body");
}

#[test]
fn parse_latin1_and_encoded_single_part() {
    let cases: &[(&[u8], &str)] = &[
        (b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9", "café"),
        (
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nY2Fmw6k=\r\n",
            "café",
        ),
        (
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: Quoted-Printable \r\n\r\ncaf=C3=A9=\r\n!",
            "café!",
        ),
        (b"Content-Transfer-Encoding: x-unknown\r\n\r\nraw", "raw"),
        // No charset (RFC 2045 §5.2: us-ascii): UTF-8 bytes are read as UTF-8, others as
        // windows-1252, as mailparse does.
        (b"Subject: x\r\n\r\nna\xc3\xafve", "naïve"),
        (b"Content-Type: text/plain; charset=US-ASCII\r\n\r\nna\xc3\xafve", "naïve"),
        (b"Subject: x\r\n\r\ncaf\xe9", "café"),
        (
            b"Content-Transfer-Encoding: base64\r\n\r\nbmHDr3Zl\r\n",
            "naïve",
        ),
        (
            b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nna\xc3\xafve",
            "naÃ¯ve",
        ),
    ];
    for &(raw, want) in cases {
        let msg = parse_ok(raw);
        assert_eq!(msg.text_bodies.len(), 1, "{raw:?}");
        assert_eq!(msg.text_bodies[0].text, want, "{raw:?}");
        assert!(msg.attachments.is_empty());
    }
}

// ---------------------------------------------------------------- parse: MIME

const MIXED: &[u8] = b"From: a@b.com\r\n\
To: c@d.com\r\n\
Subject: mixed\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
This is the preamble.\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Price: 5 =E2=82=AC, a long line that is soft=\r\n\
-broken.\r\n\
--inner\r\n\
Content-Type: text/html; charset=us-ascii\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PGI+aGk8L2I+\r\n\
--inner--\r\n\
\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"ignored.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0x\r\n\
LjQK\r\n\
--outer\r\n\
Content-Type: text/plain\r\n\
Content-Disposition: attachment; filename=notes.txt\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
a=3Db\r\n\
--outer\r\n\
Content-Type: image/png\r\n\
\r\n\
\x89PNG\r\n\
--outer--\r\n\
epilogue\r\n";

#[test]
fn parse_multipart_alternative_with_attachments() {
    let msg = parse_ok(MIXED);
    assert_eq!(msg.content_type.as_deref(), Some("multipart/mixed"));
    assert_eq!(msg.subject.as_deref(), Some("mixed"));
    let texts: Vec<(&str, Option<&str>, &str)> = msg
        .text_bodies
        .iter()
        .map(|t| {
            (
                t.content_type.as_str(),
                t.charset.as_deref(),
                t.text.as_str(),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [
            (
                "text/plain",
                Some("utf-8"),
                "Price: 5 €, a long line that is soft-broken."
            ),
            ("text/html", Some("us-ascii"), "<b>hi</b>"),
        ]
    );
    let atts: Vec<(Option<&str>, &str, &[u8])> = msg
        .attachments
        .iter()
        .map(|a| {
            (
                a.filename.as_deref(),
                a.content_type.as_str(),
                a.data.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        atts,
        [
            (Some("report.pdf"), "application/pdf", &b"%PDF-1.4\n"[..]),
            (Some("notes.txt"), "text/plain", &b"a=b"[..]),
            (None, "image/png", &b"\x89PNG"[..]),
        ]
    );
    assert_eq!(msg.raw(), MIXED);
}

#[test]
fn leaf_classification() {
    // (part headers, body, is text, filename)
    let cases: &[(&str, &str, bool, Option<&str>)] = &[
        ("Content-Type: text/plain", "t", true, None),
        ("Content-Type: text/html; charset=utf-8", "t", true, None),
        ("Content-Type: text/plain\r\nContent-Disposition: inline", "t", true, None),
        ("Content-Type: text/plain; name=a.txt", "t", false, Some("a.txt")),
        ("Content-Type: text/plain\r\nContent-Disposition: inline; filename=b.txt", "t", false, Some("b.txt")),
        ("Content-Type: text/plain\r\nContent-Disposition: ATTACHMENT", "t", false, None),
        ("Content-Type: application/octet-stream", "t", false, None),
        ("Content-Type: message/rfc822", "Subject: inner\r\n\r\nx", false, None),
        ("Content-Type: multipart/mixed", "no boundary", false, None),
        (
            "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''%C3%A9.bin",
            "t",
            false,
            Some("é.bin"),
        ),
        (
            "Content-Type: application/octet-stream; name=\"=?utf-8?q?=C3=A9t=C3=A9.bin?=\"",
            "t",
            false,
            Some("été.bin"),
        ),
    ];
    for &(part_headers, body, is_text, filename) in cases {
        let raw = format!(
            "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n{part_headers}\r\n\r\n{body}\r\n--B--\r\n"
        );
        let msg = parse_ok(raw.as_bytes());
        if is_text {
            assert_eq!(msg.text_bodies.len(), 1, "{part_headers}");
            assert_eq!(msg.text_bodies[0].text, body);
            assert!(msg.attachments.is_empty());
        } else {
            assert_eq!(msg.attachments.len(), 1, "{part_headers}");
            assert_eq!(
                msg.attachments[0].filename.as_deref(),
                filename,
                "{part_headers}"
            );
            assert_eq!(msg.attachments[0].data, body.as_bytes());
            assert!(msg.text_bodies.is_empty());
        }
    }
}

#[test]
fn digest_parts_default_to_message_rfc822() {
    let raw = b"Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\nSubject: one\r\n\r\nbody\r\n--D\r\nContent-Type: text/plain\r\n\r\ntext\r\n--D--\r\n";
    let msg = parse_ok(raw);
    assert_eq!(msg.attachments.len(), 1);
    assert_eq!(msg.attachments[0].content_type, "message/rfc822");
    assert_eq!(msg.attachments[0].data, b"Subject: one\r\n\r\nbody");
    assert_eq!(msg.text_bodies.len(), 1);
    assert_eq!(msg.text_bodies[0].text, "text");
}

#[test]
fn multipart_edge_cases() {
    // (raw, number of text parts, their texts)
    let cases: &[(&[u8], &[&str])] = &[
        // Missing close delimiter: the last part runs to the end.
        (
            b"Content-Type: multipart/mixed; boundary=B\n\n--B\n\none\n--B\n\ntwo",
            &["one", "two"],
        ),
        // Boundary never appears: no parts at all (as mailparse).
        (
            b"Content-Type: multipart/mixed; boundary=B\n\nno parts here\n",
            &[],
        ),
        // Empty multipart body.
        (b"Content-Type: multipart/mixed; boundary=B\n\n", &[]),
        // Delimiter not at line start is content.
        (
            b"Content-Type: multipart/mixed; boundary=B\n\n--B\n\nx --B y\n--B--",
            &["x --B y"],
        ),
        // A line starting with the delimiter is a delimiter (RFC 2046 §5.1.1).
        (
            b"Content-Type: multipart/mixed; boundary=B\n\n--B\n\none\n--Bogus\n\ntwo\n--B--",
            &["one", "two"],
        ),
        // LF-only line ends, empty part.
        (
            b"Content-Type: multipart/mixed; boundary=B\n\n--B\n\n\n--B\n\nz\n--B--\n",
            &["", "z"],
        ),
        // Delimiter at the very end of the data.
        (
            b"Content-Type: multipart/mixed; boundary=B\n\n--B\n\na\n--B",
            &["a"],
        ),
    ];
    for &(raw, want) in cases {
        let msg = parse_ok(raw);
        let got: Vec<&str> = msg.text_bodies.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(got, want, "{:?}", String::from_utf8_lossy(raw));
        assert!(msg.attachments.is_empty());
    }
}

#[test]
fn walk_matches_mailparse_on_ordinary_mail() {
    // The non-recursive walk must find the same leaves, in the same order, as parse_mail.
    let samples: &[&[u8]] = &[
        MIXED,
        b"Content-Type: multipart/mixed; boundary=B\n\n--B\n\none\n--B\n\ntwo",
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: multipart/related; boundary=C\r\n\r\n--C\r\n\r\nc1\r\n--C--\r\n--B\r\n\r\nb2\r\n--B--\r\n",
        b"Subject: x\r\n\r\nsingle",
    ];
    for &raw in samples {
        let reference = mailparse::parse_mail(raw).unwrap();
        let leaves: Vec<Vec<u8>> = reference
            .parts()
            .filter(|part| part.subparts.is_empty())
            .map(|part| part.get_body_raw().unwrap())
            .collect();
        let msg = parse_ok(raw);
        let ours: Vec<Vec<u8>> = {
            // Texts and attachments live in separate lists, so compare the leaves as multisets;
            // the order within each list is checked by the MIME tests above.
            let mut all: Vec<Vec<u8>> = msg
                .text_bodies
                .iter()
                .map(|t| t.text.clone().into_bytes())
                .collect();
            all.extend(msg.attachments.iter().map(|a| a.data.clone()));
            all.sort();
            all
        };
        let mut leaves = leaves;
        leaves.sort();
        assert_eq!(ours, leaves, "{:?}", String::from_utf8_lossy(raw));
    }
}

fn nested_multipart(levels: usize) -> Vec<u8> {
    let mut open = Vec::new();
    let mut close = Vec::new();
    for level in 0..levels {
        open.extend_from_slice(
            format!(
                "Content-Type: multipart/mixed; boundary=b{level}x\r\n\r\n--b{level}x\r\n\
                 Content-Type: text/plain\r\n\r\nlevel {level}\r\n--b{level}x\r\n"
            )
            .as_bytes(),
        );
        close.splice(0..0, format!("\r\n--b{level}x--\r\n").into_bytes());
    }
    open.extend_from_slice(b"Content-Type: text/plain\r\n\r\ninnermost");
    open.extend_from_slice(&close);
    open
}

#[test]
fn deeply_nested_multipart_does_not_overflow_a_small_stack() {
    let raw = nested_multipart(1000);
    let expected_len = raw.len();
    let worker = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            Message::parse(raw, &[], false, false).map(|msg| {
                let texts: Vec<String> = msg.text_bodies.iter().map(|t| t.text.clone()).collect();
                let atts: Vec<String> = msg
                    .attachments
                    .iter()
                    .map(|a| a.content_type.clone())
                    .collect();
                (texts, atts, msg.raw().len())
            })
        })
        .unwrap();
    let (texts, atts, raw_len) = worker.join().expect("parser thread crashed").unwrap();
    // Levels 0..MAX_MIME_DEPTH are split; the rest stays one opaque multipart attachment.
    let want: Vec<String> = (0..MAX_MIME_DEPTH)
        .map(|level| format!("level {level}"))
        .collect();
    assert_eq!(texts, want);
    assert_eq!(atts, ["multipart/mixed"]);
    assert_eq!(raw_len, expected_len);
}

#[test]
fn nesting_exactly_at_the_limit_is_fully_parsed() {
    let msg = parse_ok(&nested_multipart(MAX_MIME_DEPTH));
    assert_eq!(msg.text_bodies.len(), MAX_MIME_DEPTH + 1);
    assert_eq!(
        msg.text_bodies.last().map(|t| t.text.as_str()),
        Some("innermost")
    );
    assert!(msg.attachments.is_empty());
    let msg = parse_ok(&nested_multipart(MAX_MIME_DEPTH + 1));
    assert_eq!(msg.text_bodies.len(), MAX_MIME_DEPTH);
    assert_eq!(msg.attachments.len(), 1);
    assert!(msg.attachments[0]
        .data
        .ends_with(b"innermost\r\n--b32x--\r\n"));
}

// ---------------------------------------------------------------- RFC 2047 and no_decode

#[test]
fn rfc2047_subject_and_names_with_and_without_no_decode() {
    let raw = b"From: =?utf-8?q?J=C3=B6rg?= <joerg@x.de>\r\n\
        To: =?iso-8859-1?B?Suly9G1l?= <jerome@y.fr>, plain@z.org\r\n\
        Subject: =?utf-8?B?SGVsbG8gd8O2cmxk?= and\r\n =?iso-8859-1?q?caf=E9?=\r\n\
        \r\n\
        =?utf-8?q?not_decoded_in_body?=\r\n";
    let decoded = Message::parse(raw.to_vec(), &[], false, false).unwrap();
    assert_eq!(decoded.subject.as_deref(), Some("Hello wörld and café"));
    assert_eq!(addrs(&decoded.from), ["Jörg <joerg@x.de>"]);
    assert_eq!(addrs(&decoded.to), ["Jérôme <jerome@y.fr>", "plain@z.org"]);
    assert_eq!(
        decoded.text_bodies[0].text,
        "=?utf-8?q?not_decoded_in_body?=\r\n"
    );

    let kept = Message::parse(raw.to_vec(), &[], true, false).unwrap();
    assert!(kept.no_decode);
    assert_eq!(
        kept.subject.as_deref(),
        Some("=?utf-8?B?SGVsbG8gd8O2cmxk?= and =?iso-8859-1?q?caf=E9?=")
    );
    assert_eq!(kept.from[0].name.as_deref(), Some("=?utf-8?q?J=C3=B6rg?="));
    assert_eq!(kept.from[0].address, "joerg@x.de");
    assert_eq!(
        kept.to[0].name.as_deref(),
        Some("=?iso-8859-1?B?Suly9G1l?=")
    );
    assert_eq!(kept.to[1], EmailAddress::new("plain@z.org"));
    assert_eq!(kept.raw(), decoded.raw());
}

#[test]
fn no_decode_keeps_the_whole_body_as_one_text() {
    let kept = Message::parse(MIXED.to_vec(), &[], true, false).unwrap();
    assert!(kept.attachments.is_empty());
    assert_eq!(kept.text_bodies.len(), 1);
    let part = &kept.text_bodies[0];
    assert_eq!(part.content_type, "multipart/mixed");
    assert_eq!(part.charset, None);
    assert_eq!(part.text, String::from_utf8_lossy(kept.body()));
    // Even with no body there is exactly one (empty) text.
    let kept = Message::parse(b"Subject: x\r\n".to_vec(), &[], true, false).unwrap();
    assert_eq!(kept.text_bodies.len(), 1);
    assert_eq!(kept.text_bodies[0].text, "");
}
