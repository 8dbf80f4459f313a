//! Fuzzes the MAIL/RCPT argument parser (`indy_smtp::address`) with both SMTPUTF8 settings and
//! with the RFC 5321 §4.5.3.1 limits as well as small configured ones.
//!
//! Checked: parsing never panics; a parsed address is a slice of the input (nothing invented),
//! splits into `local_part "@" domain` (or is the bare `Postmaster` of RFC 5321 §4.1.1.3),
//! respects the length limits, is ASCII unless SMTPUTF8 is in effect (RFC 6531 §3.4), and
//! re-parses to itself when sent back as `<address>`; `<>` is a reverse-path only (RFC 5321
//! §4.1.2); every error reply is a 5xx with printable-ASCII text (no client control characters
//! echoed).
//!
//! Like smtp-proto's fuzz target, each input is tried twice: as raw bytes (lossily converted to
//! `str`), and mapped into the path alphabet `<>@."\:;,=+ aZ09[]` (plus TAB, NUL and a UTF-8
//! letter) behind a `FROM:`/`TO:` prefix, so that brackets, quotes, routes, literals and
//! parameters come up often.
#![no_main]

use indy_smtp::address::{
    domain, local_part, parse_mail_from_with_limits, parse_rcpt_to_with_limits, PathError,
    PathLimits,
};
use libfuzzer_sys::fuzz_target;

const ALPHABET: &[&str] = &[
    "<", ">", "@", ".", "\"", "\\", ":", ";", ",", "=", "+", " ", "a", "Z", "0", "9", "[", "]",
    "\t", "\0", "é", "-", "IPv6:", "SIZE=", "NOTIFY=", "ORCPT=",
];

const LIMITS: [PathLimits; 2] = [
    PathLimits::RFC5321,
    PathLimits {
        local_part: 4,
        domain: 8,
        path: 16,
    },
];

fn check_error(err: &PathError, for_rcpt: bool) {
    let (code, enhanced, text) = err.reply(for_rcpt);
    assert!(matches!(code, 501 | 552 | 553), "unexpected code {code}");
    assert!(enhanced.starts_with("5."), "{enhanced}");
    assert!(
        text.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "unclean reply {text:?}"
    );
}

/// Properties of any accepted address; `rcpt` for a forward-path.
fn check_address(input: &str, address: &str, limits: &PathLimits, utf8: bool, rcpt: bool) {
    assert!(
        input.contains(address),
        "{address:?} is not part of {input:?}"
    );
    if !utf8 {
        assert!(address.is_ascii(), "non-ASCII {address:?} without SMTPUTF8");
    }
    // "<" address ">" fits the path limit (a dropped source route only made it longer).
    assert!(
        address.len() + 2 <= limits.path,
        "{address:?} over the path limit"
    );
    if address.is_empty() {
        assert!(!rcpt, "RCPT accepted the null path");
        return;
    }
    let (l, d) = (local_part(address), domain(address));
    if rcpt && address.eq_ignore_ascii_case("postmaster") {
        assert_eq!((l, d), (address, ""));
        return;
    }
    assert!(
        !l.is_empty() && !d.is_empty(),
        "{address:?} split as {l:?} @ {d:?}"
    );
    assert_eq!(format!("{l}@{d}"), address);
    assert!(
        l.len() <= limits.local_part,
        "{l:?} over the local-part limit"
    );
    assert!(d.len() <= limits.domain, "{d:?} over the domain limit");
}

fn exercise(mail_args: &str, rcpt_args: &str) {
    for limits in &LIMITS {
        for utf8 in [false, true] {
            match parse_mail_from_with_limits(mail_args, utf8, limits) {
                Ok(m) => {
                    check_address(mail_args, &m.address, limits, utf8 && m.smtputf8, false);
                    assert!(m
                        .params
                        .iter()
                        .all(|p| p.keyword == p.keyword.to_ascii_uppercase()));
                    assert_eq!(m.is_null_sender(), m.address.is_empty());
                    let has = |k: &str| m.params.iter().any(|p| p.keyword == k);
                    assert_eq!(m.size.is_some(), has("SIZE"));
                    assert_eq!(m.body.is_some(), has("BODY"));
                    assert_eq!(m.smtputf8, has("SMTPUTF8"));
                    // Sent back as a path, the address parses to itself.
                    let utf8_param = if m.smtputf8 { " SMTPUTF8" } else { "" };
                    let again = format!("FROM:<{}>{utf8_param}", m.address);
                    let m2 = parse_mail_from_with_limits(&again, utf8, limits)
                        .unwrap_or_else(|e| panic!("{again:?} refused: {e:?}"));
                    assert_eq!(m2.address, m.address);
                }
                Err(e) => check_error(&e, false),
            }
            match parse_rcpt_to_with_limits(rcpt_args, utf8, limits) {
                Ok(r) => {
                    check_address(rcpt_args, &r.address, limits, utf8, true);
                    let has = |k: &str| r.params.iter().any(|p| p.keyword == k);
                    assert_eq!(r.notify.is_some(), has("NOTIFY"));
                    assert_eq!(r.orcpt.is_some(), has("ORCPT"));
                    let again = format!("TO:<{}>", r.address);
                    let r2 = parse_rcpt_to_with_limits(&again, utf8, limits)
                        .unwrap_or_else(|e| panic!("{again:?} refused: {e:?}"));
                    assert_eq!(r2.address, r.address);
                }
                Err(e) => check_error(&e, true),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    exercise(&raw, &raw);
    let mapped: String = data
        .iter()
        .map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()])
        .collect();
    // The alphabet has no "FROM:"/"TO:" letters, so the keyword is supplied to get past it.
    exercise(&format!("FROM:{mapped}"), &format!("TO:{mapped}"));
    exercise(&mapped, &mapped);
});
