//! Fuzzes the SASL pieces of AUTH (`indy_smtp::auth`): response decoding (base64, `=`, `*`),
//! PLAIN (RFC 4616), LOGIN fields, CRAM-MD5 verification (RFC 2195), mechanism names and the
//! CRAM-MD5 challenge built from a host name.
//!
//! Input: byte 0 selects a mode (bit 0: base64-encode the rest before decoding so the
//! mechanism parsers see arbitrary decoded bytes; bit 1: map onto a PLAIN/CRAM alphabet).
//!
//! Checked besides "no panic":
//! - `decode_response`: `*` (only) cancels; `=` and the empty line decode to nothing; any other
//!   accepted line is canonical base64 (re-encoding gives the line back, RFC 4648 §4);
//! - `parse_plain`: exactly two NULs; authcid and password non-empty; every field at most
//!   255 octets, UTF-8, NUL-free; authzid `None` iff empty; the fields are the NUL-split input;
//! - `parse_login_field`: non-empty, at most 255 octets, UTF-8, no ASCII control (documented);
//! - `cram_md5_verify`: accepts only a response whose digest is the HMAC-MD5 of the challenge
//!   with the user's secret (reference computed here), returns the user part, and accepts the
//!   correct response built here for a valid user name;
//! - `cram_md5_challenge(host)`: `<...@...>` of printable ASCII with no SP (an msg-id on a 334
//!   line).
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use indy_smtp::auth::{
    cram_md5_challenge, cram_md5_verify, decode_response, encode_challenge, parse_login_field,
    parse_plain, Mechanism, SaslError, MAX_CREDENTIAL_LEN,
};
use libfuzzer_sys::fuzz_target;
use md5::Md5;

const ALPHABET: &[&[u8]] = &[
    b"\0", b"a", b"Z", b"0", b" ", b"\r", b"\n", b"\xc3\xa9", b"\xff", b"\xe2\x80\xa8", b"\t",
    b"b913a602c7eda7a495b4e6e7334d3890", b"B913A602C7EDA7A495B4E6E7334D3890", b"tim", b"*",
    b"=", b"+", b"/",
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_md5(key: &str, msg: &str) -> [u8; 16] {
    let mut mac = Hmac::<Md5>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(msg.as_bytes());
    mac.finalize().into_bytes().into()
}

fn check_field(s: &str) {
    assert!(s.len() <= MAX_CREDENTIAL_LEN, "field over 255 octets");
    assert!(!s.contains('\0'), "NUL in a field");
}

/// An ASCII control character, which user names (and LOGIN fields) may not hold: SASLprep,
/// RFC 4013 §2.3.
fn has_control(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b < 0x20 || b == 0x7f)
}

fn check_login(input: &[u8]) {
    match parse_login_field(input) {
        Ok(f) => {
            assert_eq!(f.as_bytes(), input);
            assert!(!f.is_empty());
            check_field(&f);
            assert!(!has_control(f.as_bytes()), "LOGIN field {f:?} has a control character");
        }
        Err(SaslError::Malformed(_)) => {
            assert!(
                input.is_empty()
                    || input.len() > MAX_CREDENTIAL_LEN
                    || has_control(input)
                    || std::str::from_utf8(input).is_err(),
                "valid LOGIN field {input:?} refused"
            );
        }
        Err(e) => panic!("LOGIN field gave {e:?}"),
    }
}

fn check_plain(input: &[u8]) {
    let split: Vec<&[u8]> = input.split(|&b| b == 0).collect();
    match parse_plain(input) {
        Ok(c) => {
            assert_eq!(split.len(), 3, "accepted without exactly two NULs");
            assert_eq!(c.authzid.as_deref().unwrap_or("").as_bytes(), split[0]);
            assert!(c.authzid.as_deref() != Some(""), "authzid Some(\"\")");
            assert_eq!(c.authcid.as_bytes(), split[1]);
            assert_eq!(c.password.as_bytes(), split[2]);
            assert!(!c.authcid.is_empty() && !c.password.is_empty());
            assert!(!has_control(c.authcid.as_bytes()), "authcid with a control character");
            assert!(!c.authzid.as_deref().is_some_and(|z| has_control(z.as_bytes())));
            check_field(&c.authcid);
            check_field(&c.password);
            if let Some(z) = &c.authzid {
                check_field(z);
            }
            assert!(format!("{c:?}").contains("password: \"<redacted>\""), "Debug shows the password");
        }
        Err(SaslError::Malformed(_)) => {
            let ok_field = |f: &[u8]| f.len() <= MAX_CREDENTIAL_LEN && std::str::from_utf8(f).is_ok();
            assert!(
                split.len() != 3
                    || split[1].is_empty()
                    || split[2].is_empty()
                    || !split.iter().all(|f| ok_field(f))
                    || has_control(split[0])
                    || has_control(split[1]),
                "valid PLAIN message {input:?} refused"
            );
        }
        Err(e) => panic!("PLAIN gave {e:?}"),
    }
}

fn check_cram(challenge: &str, input: &[u8]) {
    let secret_for = |u: &str| (u.len() % 3 != 0).then(|| format!("s3cr3t-{u}"));
    let got = cram_md5_verify(challenge, input, &secret_for);
    if let Some(user) = &got {
        let split = input.iter().rposition(|&b| b == b' ').expect("accepted without SP");
        assert_eq!(user.as_bytes(), &input[..split]);
        let secret = secret_for(user).expect("accepted an unknown user");
        let want = hex(&hmac_md5(&secret, challenge));
        assert!(
            input[split + 1..].eq_ignore_ascii_case(want.as_bytes()),
            "accepted a wrong digest"
        );
        assert!(!has_control(user.as_bytes()));
    }
    // The right answer for the user part of the input must be accepted.
    if let Ok(user) = std::str::from_utf8(input) {
        let user = user.rsplit_once(' ').map_or(user, |(u, _)| u);
        if let Some(secret) = secret_for(user) {
            let good = format!("{user} {}", hex(&hmac_md5(&secret, challenge)));
            let ok = cram_md5_verify(challenge, good.as_bytes(), &secret_for);
            let valid = !user.is_empty()
                && user.len() <= MAX_CREDENTIAL_LEN
                && !has_control(user.as_bytes());
            assert_eq!(ok.is_some(), valid, "correct CRAM-MD5 answer for {user:?}");
            let upper = format!("{user} {}", hex(&hmac_md5(&secret, challenge)).to_uppercase());
            assert_eq!(cram_md5_verify(challenge, upper.as_bytes(), &secret_for), ok);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mapped: Vec<u8>;
    let rest = if mode & 2 != 0 {
        mapped = rest
            .iter()
            .flat_map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()].iter().copied())
            .collect();
        &mapped[..]
    } else {
        rest
    };
    let line: Vec<u8> = if mode & 1 != 0 {
        STANDARD.encode(rest).into_bytes()
    } else {
        rest.to_vec()
    };

    // The response line.
    match decode_response(&line) {
        Ok(bytes) => {
            if line != b"=" {
                assert_eq!(encode_challenge(&bytes).as_bytes(), line, "non-canonical base64 accepted");
            } else {
                assert!(bytes.is_empty());
            }
            if mode & 1 != 0 {
                assert_eq!(bytes, rest);
            }
            check_plain(&bytes);
            check_login(&bytes);
            check_cram("<1896.697170952@postoffice.reston.mci.net>", &bytes);
        }
        Err(SaslError::Cancelled) => assert_eq!(line, b"*"),
        Err(SaslError::BadBase64) => {
            assert!(line != b"*" && line != b"=");
            assert!(STANDARD.decode(&line).is_err());
        }
        Err(e) => panic!("decode_response gave {e:?}"),
    }

    // The mechanism parsers on the raw bytes too (reachable after base64 decoding).
    check_plain(rest);
    check_login(rest);
    let text = String::from_utf8_lossy(rest);
    check_cram(&text, rest);

    // Mechanism names and the CRAM-MD5 challenge.
    if let Some(m) = Mechanism::from_name(&text) {
        assert!(m.name().eq_ignore_ascii_case(&text));
    }
    let c = cram_md5_challenge(&text);
    assert!(c.starts_with('<') && c.ends_with('>') && c.contains('@'), "{c:?}");
    assert!(c.bytes().all(|b| b.is_ascii_graphic()), "challenge {c:?}");
    assert!(encode_challenge(c.as_bytes()).bytes().all(|b| b.is_ascii_graphic()));
});
