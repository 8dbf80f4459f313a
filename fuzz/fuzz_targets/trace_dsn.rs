//! Fuzzes two more consumers of client bytes:
//! - `indy_smtp::maildir::trace_header` (the `X-Peer:` / `X-MailFrom:` / `X-RcptTo:` lines the
//!   smtpd example and the Maildir handlers write in front of every stored message);
//! - the xtext values of DSN and AUTH parameters (RFC 3461 §4, RFC 4954 §5): `ORCPT=` on RCPT,
//!   `ENVID=` and `AUTH=` on MAIL.
//!
//! Input: byte 0 = flags, bytes 1-16 = peer address, rest = text. Flags: bit 0 IPv4 peer;
//! bit 1 build recipients from lengths (each byte b gives `"r" * b + "@d"`) so that folding
//! comes up; bit 2 map the text onto an xtext alphabet; bit 3 SMTPUTF8.
//!
//! trace_header checked: CRLF-terminated lines, no other CR/LF, no control character or
//! U+2028/U+2029 anywhere; `X-Peer: ip`, `X-MailFrom: from`, `X-RcptTo: ...` then only
//! continuation lines (starting with SP); unfolding gives back exactly the cleaned recipients
//! joined by `", "`; a line is over 998 octets (RFC 5322 §2.1.1) only when it holds a single
//! recipient that long by itself.
//!
//! xtext checked: decoded ORCPT / ENVID / AUTH values are UTF-8 without control characters,
//! ORCPT at most 500 characters with an atom address type, ENVID printable ASCII from at most
//! 100 characters of xtext; xtext-encoding the decoded value and parsing again gives it back.
#![no_main]

use indy_smtp::address::{parse_mail_from, parse_rcpt_to};
use indy_smtp::maildir::trace_header;
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

const MAX_LINE: usize = 998;

const XTEXT: &[&str] = &[
    "+", "2B", "3D", "0D", "0A", "00", "C3", "A9", "E2", "80", "A8", "ff", "a", "Z", "0", ";",
    "rfc822;", "utf-8;", "@", "é", " ", "=", "\t", "+20", "+7F", "+1B", "<>",
];

fn clean(s: &str) -> String {
    s.chars()
        .filter(|&c| !c.is_control() && c != '\u{2028}' && c != '\u{2029}')
        .collect()
}

fn xtext_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

fn check_trace(peer: IpAddr, from: &str, rcpts: &[&str]) {
    let out = trace_header(peer, from, rcpts);
    let text = std::str::from_utf8(&out).expect("trace header not UTF-8");
    assert!(text.ends_with("\r\n"));
    let lines: Vec<&str> = text[..text.len() - 2].split("\r\n").collect();
    for l in &lines {
        assert!(
            !l.chars()
                .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
            "control or line separator left in {l:?}"
        );
    }
    assert!(lines.len() >= 3);
    assert_eq!(lines[0], format!("X-Peer: {}", peer.to_canonical()));
    assert_eq!(lines[1], format!("X-MailFrom: {}", clean(from)));
    assert!(lines[2].starts_with("X-RcptTo: "), "{:?}", lines[2]);
    for l in &lines[3..] {
        assert!(l.starts_with(' '), "continuation {l:?} does not start with SP");
    }
    let cleaned: Vec<String> = rcpts.iter().map(|r| clean(r)).collect();
    let unfolded = format!("X-RcptTo: {}", cleaned.join(", "));
    assert_eq!(lines[2..].concat(), unfolded, "folding changed the recipients");
    // Separator commas, as positions in the unfolded text.
    let mut commas = Vec::new();
    let mut pos = "X-RcptTo: ".len();
    for (i, r) in cleaned.iter().enumerate() {
        if i > 0 {
            commas.push(pos);
            pos += 2;
        }
        pos += r.len();
    }
    let mut start = 0;
    for l in &lines[2..] {
        let end = start + l.len();
        if l.len() > MAX_LINE {
            let inner = commas.iter().filter(|&&c| c >= start && c + 1 < end).count();
            assert_eq!(
                inner, 0,
                "line of {} octets holds more than one recipient: {rcpts:?}",
                l.len()
            );
        }
        start = end;
    }
}

fn check_xtext_value(v: &str) {
    assert!(!v.chars().any(char::is_control), "control in decoded {v:?}");
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let flags = data[0];
    let peer: IpAddr = if flags & 1 != 0 {
        IpAddr::from([data[1], data[2], data[3], data[4]])
    } else {
        let mut b = [0u8; 16];
        b.copy_from_slice(&data[1..17]);
        IpAddr::from(b)
    };
    let rest = &data[17..];
    let utf8 = flags & 8 != 0;

    // trace_header.
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.split('\n');
    let from = parts.next().unwrap_or("");
    let rcpts: Vec<&str> = parts.collect();
    check_trace(peer, from, &rcpts);
    if flags & 2 != 0 {
        let owned: Vec<String> = rest
            .iter()
            .map(|&b| format!("{}@d", "r".repeat(usize::from(b))))
            .collect();
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        check_trace(peer, "s@d", &refs);
    }

    // xtext in ORCPT / ENVID / AUTH.
    let value: String = if flags & 4 != 0 {
        rest.iter()
            .map(|&b| XTEXT[usize::from(b) % XTEXT.len()])
            .collect()
    } else {
        text.into_owned()
    };
    let smtputf8 = if utf8 { " SMTPUTF8" } else { "" };
    if let Ok(r) = parse_rcpt_to(&format!("TO:<a@b> ORCPT={value}"), utf8) {
        if let Some(o) = &r.orcpt {
            check_xtext_value(&o.address);
            assert!(o.address.chars().count() <= 500);
            assert!(!o.addr_type.is_empty()
                && o.addr_type.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\".[]".contains(&b)));
            let again = format!("TO:<a@b> ORCPT={};{}", o.addr_type, xtext_encode(&o.address));
            let r2 = parse_rcpt_to(&again, true).expect("re-encoded ORCPT refused");
            assert_eq!(r2.orcpt.as_ref(), Some(o));
        }
    }
    if let Ok(m) = parse_mail_from(&format!("FROM:<a@b> ENVID={value}{smtputf8}"), utf8) {
        let e = m.envid.as_deref().expect("ENVID lost");
        check_xtext_value(e);
        assert!(e.bytes().all(|b| (b' '..=b'~').contains(&b)), "ENVID {e:?}");
        assert!(value.split(' ').next().unwrap_or("").len() <= 100);
    }
    if let Ok(m) = parse_mail_from(&format!("FROM:<a@b> AUTH={value}{smtputf8}"), utf8) {
        let a = m.auth.as_deref().expect("AUTH lost");
        check_xtext_value(a);
        let again = format!("FROM:<a@b> AUTH={} SMTPUTF8", xtext_encode(a));
        let m2 = parse_mail_from(&again, true).expect("re-encoded AUTH refused");
        assert_eq!(m2.auth.as_deref(), Some(a));
    }
});
