use std::collections::HashSet;

use super::*;

const RFC2195_CHALLENGE: &str = "<1896.697170952@postoffice.reston.mci.net>";
const RFC2195_RESPONSE: &[u8] = b"tim b913a602c7eda7a495b4e6e7334d3890";

fn tim_secret(user: &str) -> Option<String> {
    (user == "tim").then(|| "tanstaaftanstaaf".to_string())
}

#[test]
fn mechanism_from_name_is_case_insensitive() {
    let cases: &[(&str, Option<Mechanism>)] = &[
        ("PLAIN", Some(Mechanism::Plain)),
        ("plain", Some(Mechanism::Plain)),
        ("PlAiN", Some(Mechanism::Plain)),
        ("LOGIN", Some(Mechanism::Login)),
        ("login", Some(Mechanism::Login)),
        ("CRAM-MD5", Some(Mechanism::CramMd5)),
        ("cram-md5", Some(Mechanism::CramMd5)),
        ("CRAM_MD5", None),
        ("CRAM-MD5 ", None),
        (" PLAIN", None),
        ("", None),
        ("DIGEST-MD5", None),
        ("XOAUTH2", None),
        ("PLAINX", None),
    ];
    for (name, want) in cases {
        assert_eq!(Mechanism::from_name(name), *want, "name {name:?}");
    }
}

#[test]
fn mechanism_names_round_trip_and_plaintext_flags() {
    let cases = [
        (Mechanism::Plain, "PLAIN", true),
        (Mechanism::Login, "LOGIN", true),
        (Mechanism::CramMd5, "CRAM-MD5", false),
    ];
    for (mech, name, plaintext) in cases {
        assert_eq!(mech.name(), name);
        assert_eq!(mech.to_string(), name);
        assert_eq!(Mechanism::from_name(name), Some(mech));
        assert_eq!(mech.is_plaintext(), plaintext, "{name}");
    }
    assert_eq!(Mechanism::ALL.len(), 3);
    let unique: HashSet<_> = Mechanism::ALL.iter().collect();
    assert_eq!(unique.len(), 3);
}

#[test]
fn decode_response_table() {
    let ok: &[(&[u8], &[u8])] = &[
        (b"=", b""),
        (b"", b""),
        (b"dGlt", b"tim"),
        (b"dGk=", b"ti"),
        (b"dA==", b"t"),
        (b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm", b"\0tim\0tanstaaftanstaaf"),
        (b"VXJzZWwAS3VydAB4aXBqM3BsbXE=", b"Ursel\0Kurt\0xipj3plmq"),
        (b"+/+/", &[0xfb, 0xff, 0xbf]),
    ];
    for (line, want) in ok {
        assert_eq!(
            decode_response(line).as_deref(),
            Ok(*want),
            "line {:?}",
            String::from_utf8_lossy(line)
        );
    }
    let bad: &[(&[u8], SaslError)] = &[
        (b"*", SaslError::Cancelled),
        (b"dGk", SaslError::BadBase64),         // missing padding
        (b"dA", SaslError::BadBase64),          // missing padding
        (b"dA=", SaslError::BadBase64),         // short padding
        (b"dA===", SaslError::BadBase64),       // excess padding
        (b"dGlt=", SaslError::BadBase64),       // padding where none belongs
        (b"dG!t", SaslError::BadBase64),        // bad character
        (b"dG-t", SaslError::BadBase64),        // URL-safe alphabet
        (b"dG_t", SaslError::BadBase64),        // URL-safe alphabet
        (b"dG t", SaslError::BadBase64),        // inner space
        (b"dGlt ", SaslError::BadBase64),       // trailing space
        (b" dGlt", SaslError::BadBase64),       // leading space
        (b"dG\tlt", SaslError::BadBase64),      // tab
        (b"dGlt\r\n", SaslError::BadBase64),    // CRLF left on
        (b"dB==", SaslError::BadBase64),        // non-zero trailing bits
        (b"**", SaslError::BadBase64),          // only a lone "*" cancels
        (b"* ", SaslError::BadBase64),          // only a lone "*" cancels
        (b"==", SaslError::BadBase64),          // only a lone "=" is empty
        (b"dGlt\0", SaslError::BadBase64),      // NUL byte
        (b"\xc3\xa9t==", SaslError::BadBase64), // non-ASCII
    ];
    for (line, want) in bad {
        assert_eq!(
            decode_response(line).as_ref(),
            Err(want),
            "line {:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn encode_challenge_table() {
    let cases: &[(&[u8], &str)] = &[
        (b"", ""),
        (b"Username:", "VXNlcm5hbWU6"),
        (b"Password:", "UGFzc3dvcmQ6"),
        (
            RFC2195_CHALLENGE.as_bytes(),
            "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
        ),
        (b"t", "dA=="),
    ];
    for (data, want) in cases {
        let got = encode_challenge(data);
        assert_eq!(got, *want);
        assert_eq!(decode_response(got.as_bytes()).as_deref(), Ok(*data));
    }
}

#[test]
fn plain_rfc4616_examples() {
    // RFC 4616 §4, first example: no authzid.
    let creds = parse_plain(&decode_response(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm").unwrap()).unwrap();
    assert_eq!(creds.authzid, None);
    assert_eq!(creds.authcid, "tim");
    assert_eq!(creds.password, "tanstaaftanstaaf");

    // RFC 4616 §4, second example: with authzid.
    let creds = parse_plain(&decode_response(b"VXJzZWwAS3VydAB4aXBqM3BsbXE=").unwrap()).unwrap();
    assert_eq!(creds.authzid.as_deref(), Some("Ursel"));
    assert_eq!(creds.authcid, "Kurt");
    assert_eq!(creds.password, "xipj3plmq");
}

#[test]
fn plain_valid_table() {
    let long = "a".repeat(MAX_CREDENTIAL_LEN);
    let long_msg = format!("{long}\0{long}\0{long}");
    let cases: Vec<(&[u8], Option<&str>, &str, &str)> = vec![
        (b"\0u\0p", None, "u", "p"),
        (b"z\0u\0p", Some("z"), "u", "p"),
        (b"\0user name\0pass word", None, "user name", "pass word"),
        (
            "\0j\u{f6}rg\0s\u{e9}cret".as_bytes(),
            None,
            "j\u{f6}rg",
            "s\u{e9}cret",
        ),
        (b"\0u\0p\r\n", None, "u", "p\r\n"), // RFC 4616 §2 SAFE allows CR/LF
        (long_msg.as_bytes(), Some(&long), &long, &long),
    ];
    for (msg, authzid, authcid, password) in cases {
        let creds = parse_plain(msg).unwrap_or_else(|e| panic!("{msg:?}: {e}"));
        assert_eq!(creds.authzid.as_deref(), authzid);
        assert_eq!(creds.authcid, authcid);
        assert_eq!(creds.password, password);
    }
}

#[test]
fn plain_invalid_table() {
    let too_long = "a".repeat(MAX_CREDENTIAL_LEN + 1);
    let long_authzid = format!("{too_long}\0u\0p");
    let long_authcid = format!("\0{too_long}\0p");
    let long_password = format!("\0u\0{too_long}");
    let cases: Vec<&[u8]> = vec![
        b"",                     // nothing at all
        b"\0",                   // one NUL
        b"\0\0",                 // both required fields empty
        b"up",                   // no NUL
        b"u\0p",                 // one NUL (missing authzid separator)
        b"\0\0p",                // empty authcid
        b"z\0\0p",               // empty authcid with authzid
        b"\0u\0",                // empty password
        b"z\0u\0",               // empty password with authzid
        b"\0u\0p\0",             // three NULs
        b"z\0u\0p\0x",           // three NULs
        b"\0\0\0\0",             // only NULs
        b"\0u\xff\0p",           // authcid not UTF-8
        b"\0u\0p\xc3",           // password truncated UTF-8
        b"\xc0\xaf\0u\0p",       // authzid overlong UTF-8
        long_authzid.as_bytes(), // 256-octet authzid
        long_authcid.as_bytes(), // 256-octet authcid
        long_password.as_bytes(),
        b"\0bob\r\nX-Evil: 1\0p", // CR LF in authcid (SASLprep, RFC 4013 §2.3)
        b"\0bob\x1b[2J\0p",       // an escape sequence in authcid
        b"a\tz\0bob\0p",          // TAB in authzid
        b"\0bob\x7f\0p",          // DEL in authcid
    ];
    for msg in cases {
        let err = parse_plain(msg).expect_err(&format!("{msg:?} must be rejected"));
        assert!(matches!(err, SaslError::Malformed(_)), "{msg:?}: {err:?}");
    }
}

#[test]
fn plain_debug_hides_password() {
    let creds = parse_plain(b"\0tim\0tanstaaftanstaaf").unwrap();
    let dbg = format!("{creds:?}");
    assert!(dbg.contains("tim"));
    assert!(!dbg.contains("tanstaaf"));
}

#[test]
fn login_field_table() {
    let max = "b".repeat(MAX_CREDENTIAL_LEN);
    let ok: Vec<(&[u8], &str)> = vec![
        (b"tim", "tim"),
        (b"user@example.org", "user@example.org"),
        (b"with space", "with space"),
        ("gr\u{fc}\u{df}e".as_bytes(), "gr\u{fc}\u{df}e"),
        (max.as_bytes(), &max),
    ];
    for (field, want) in ok {
        assert_eq!(parse_login_field(field).as_deref(), Ok(want));
    }
    let over = "b".repeat(MAX_CREDENTIAL_LEN + 1);
    let bad: Vec<&[u8]> = vec![
        b"",
        b"ti\0m",
        b"\0",
        b"tim\r",
        b"tim\n",
        b"ti\r\nm",
        b"\xff",
        b"tim\xe2\x82",
        over.as_bytes(),
        b"ti\x1bm",
        b"ti\tm",
    ];
    for field in bad {
        assert!(
            matches!(parse_login_field(field), Err(SaslError::Malformed(_))),
            "{field:?}"
        );
    }
}

#[test]
fn cram_md5_rfc2195_example() {
    let decoded = decode_response(b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw").unwrap();
    assert_eq!(decoded, RFC2195_RESPONSE);
    assert_eq!(
        cram_md5_verify(RFC2195_CHALLENGE, &decoded, &tim_secret).as_deref(),
        Some("tim")
    );
}

#[test]
fn cram_md5_accepts_uppercase_hex() {
    let upper = b"tim B913A602C7EDA7A495B4E6E7334D3890";
    assert_eq!(
        cram_md5_verify(RFC2195_CHALLENGE, upper, &tim_secret).as_deref(),
        Some("tim")
    );
}

#[test]
fn cram_md5_rejections_table() {
    let cases: &[(&str, &[u8])] = &[
        // wrong challenge: same response replayed against another session
        (
            "<1897.697170952@postoffice.reston.mci.net>",
            RFC2195_RESPONSE,
        ),
        // unknown user with the right digest for tim
        (RFC2195_CHALLENGE, b"tom b913a602c7eda7a495b4e6e7334d3890"),
        // one digit changed
        (RFC2195_CHALLENGE, b"tim b913a602c7eda7a495b4e6e7334d3891"),
        // truncated / extended digest
        (RFC2195_CHALLENGE, b"tim b913a602c7eda7a495b4e6e7334d389"),
        (RFC2195_CHALLENGE, b"tim b913a602c7eda7a495b4e6e7334d38900"),
        // non-hex digit
        (RFC2195_CHALLENGE, b"tim g913a602c7eda7a495b4e6e7334d3890"),
        // no space / empty user / empty digest / trailing space
        (RFC2195_CHALLENGE, b"timb913a602c7eda7a495b4e6e7334d3890"),
        (RFC2195_CHALLENGE, b" b913a602c7eda7a495b4e6e7334d3890"),
        (RFC2195_CHALLENGE, b"tim "),
        (RFC2195_CHALLENGE, b"tim b913a602c7eda7a495b4e6e7334d3890 "),
        (RFC2195_CHALLENGE, b""),
        (RFC2195_CHALLENGE, b" "),
        // user with CR/LF or invalid UTF-8
        (
            RFC2195_CHALLENGE,
            b"ti\r\nm b913a602c7eda7a495b4e6e7334d3890",
        ),
        (RFC2195_CHALLENGE, b"\xff b913a602c7eda7a495b4e6e7334d3890"),
        // non-ASCII bytes where hex digits should be
        (
            RFC2195_CHALLENGE,
            "tim b913a602c7eda7a495b4e6e7334d38\u{e9}".as_bytes(),
        ),
    ];
    for (challenge, response) in cases {
        assert_eq!(
            cram_md5_verify(challenge, response, &tim_secret),
            None,
            "{:?}",
            String::from_utf8_lossy(response)
        );
    }
}

#[test]
fn cram_md5_wrong_secret() {
    let wrong = |_: &str| Some("tanstaaftanstaag".to_string());
    assert_eq!(
        cram_md5_verify(RFC2195_CHALLENGE, RFC2195_RESPONSE, &wrong),
        None
    );
    let empty = |_: &str| Some(String::new());
    assert_eq!(
        cram_md5_verify(RFC2195_CHALLENGE, RFC2195_RESPONSE, &empty),
        None
    );
}

#[test]
fn cram_md5_unknown_user_is_never_looked_up_wrongly() {
    let seen = std::cell::RefCell::new(Vec::new());
    let lookup = |u: &str| {
        seen.borrow_mut().push(u.to_string());
        None
    };
    assert_eq!(
        cram_md5_verify(RFC2195_CHALLENGE, RFC2195_RESPONSE, &lookup),
        None
    );
    assert_eq!(*seen.borrow(), vec!["tim".to_string()]);
}

#[test]
fn cram_md5_user_with_space_and_long_secret() {
    // RFC 2104 §2: keys longer than the 64-byte block are hashed first; the
    // verifier must agree with an independent HMAC computation.
    let secret = "s".repeat(100);
    let challenge = cram_md5_challenge("mx.example.org");
    let mut mac = Hmac::<Md5>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(challenge.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let response = format!("john smith {hex}");
    let lookup = |u: &str| (u == "john smith").then(|| secret.clone());
    assert_eq!(
        cram_md5_verify(&challenge, response.as_bytes(), &lookup).as_deref(),
        Some("john smith")
    );
}

#[test]
fn cram_md5_challenge_shape() {
    let cases = [
        ("mail.example.org", "mail.example.org"),
        ("", "localhost"),
        ("bad>host\r\n", "badhost"),
        ("[192.0.2.1]", "[192.0.2.1]"),
        ("<@>", "localhost"),
    ];
    for (host, want) in cases {
        let c = cram_md5_challenge(host);
        assert!(c.starts_with('<'), "{c}");
        assert!(c.ends_with(&format!("@{want}>")), "{c}");
        assert_eq!(c.matches('<').count(), 1, "{c}");
        assert_eq!(c.matches('>').count(), 1, "{c}");
        assert_eq!(c.matches('@').count(), 1, "{c}");
        assert!(c.bytes().all(|b| b.is_ascii_graphic()), "{c}");
        // unique.timestamp: pid, counter and time, all digits.
        let local = &c[1..c.find('@').unwrap()];
        let fields: Vec<&str> = local.split('.').collect();
        assert_eq!(fields.len(), 3, "{c}");
        assert!(fields
            .iter()
            .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())));
        assert_eq!(fields[0], std::process::id().to_string());
    }
}

#[test]
fn cram_md5_challenges_are_unique() {
    let mut seen = HashSet::new();
    for _ in 0..10_000 {
        assert!(seen.insert(cram_md5_challenge("h")));
    }
    // Also across threads, as sessions run one per thread.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                (0..2_500)
                    .map(|_| cram_md5_challenge("h"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for c in h.join().unwrap() {
            assert!(seen.insert(c));
        }
    }
    assert_eq!(seen.len(), 20_000);
}

#[test]
fn full_exchanges_end_to_end() {
    // AUTH LOGIN: two 334 prompts, two base64 answers (draft-murchison-sasl-login §2).
    let user = parse_login_field(&decode_response(b"dGlt").unwrap()).unwrap();
    let pass = parse_login_field(&decode_response(b"dGFuc3RhYWY=").unwrap()).unwrap();
    assert_eq!((user.as_str(), pass.as_str()), ("tim", "tanstaaf"));

    // AUTH PLAIN with "=": an empty initial response is not a valid PLAIN message.
    let empty = decode_response(b"=").unwrap();
    assert!(matches!(parse_plain(&empty), Err(SaslError::Malformed(_))));

    // CRAM-MD5 round trip through base64, as the session would do it.
    let challenge = cram_md5_challenge("localhost");
    let line = encode_challenge(challenge.as_bytes());
    let echoed = decode_response(line.as_bytes()).unwrap();
    assert_eq!(echoed, challenge.as_bytes());
}

#[test]
fn sasl_error_display() {
    let cases = [
        (SaslError::Cancelled, "cancelled"),
        (SaslError::BadBase64, "base64"),
        (SaslError::Malformed("empty authcid"), "empty authcid"),
    ];
    for (err, needle) in cases {
        assert!(err.to_string().contains(needle), "{err}");
    }
}
