//! Fuzzes the parsed receive mode (`indy_smtp::Message::parse`, Indy's rmMessageParsed), the
//! unparsed one (`Message::unparsed`, `headers`, `header`) and BCC reconciliation
//! (`indy_smtp::message::reconcile_bcc`) with arbitrary envelope recipient lists.
//!
//! Input: byte 0 = flags (bit 0 `no_decode`, bit 1 map the message onto MIME tokens, bit 2
//! `no_encode`), byte 1 = length L of the recipient section, then L bytes of recipients
//! (lossy UTF-8, one per `\n`), then the message.
//!
//! Checked besides "no panic" (libFuzzer's -timeout / -rss_limit_mb catch blow-ups):
//! - `raw()` / `into_raw()` give the input back byte-exact, on success and on error;
//!   `header_bytes() ++ body()` is the input; parsed and unparsed agree on the split;
//! - with `no_decode`: exactly one text part, no attachments;
//! - the number of parts stays bounded by `MAX_MIME_PARTS`;
//! - `bcc_list` is exactly `reconcile_bcc(rcpts, to, cc)`, and reconcile_bcc agrees with a
//!   reference model (order kept, no duplicates, nothing visible in To/Cc, nothing lost);
//! - `EmailAddress::text()` of a parsed mailbox with a plain addr-spec parses back (with
//!   `mailparse::addrparse`) to the same mailbox, as its doc promises.
#![no_main]

use indy_smtp::message::{reconcile_bcc, EmailAddress, Message, MAX_MIME_PARTS};
use libfuzzer_sys::fuzz_target;

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: multipart/alternative; boundary=\"c\"\r\n",
    b"Content-Type: multipart/digest; boundary=b\r\n",
    b"Content-Type: text/plain; charset=utf-8\r\n",
    b"Content-Type: text/html; charset=iso-2022-jp\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: application/octet-stream; name=\"=?utf-8?b?w6k=?=\"\r\n",
    b"Content-Disposition: attachment; filename*0*=utf-8''a%C3; filename*1=b\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"--c\r\n",
    b"--c--",
    b"To: ",
    b"Cc: ",
    b"From: ",
    b"Subject: ",
    b"Sender: ",
    b"Reply-To: ",
    b"Message-ID: ",
    b"Date: ",
    b"a@b.example",
    b"<a@b.example>",
    b"A@B.EXAMPLE",
    b"<@r.example:c@d>",
    b"Postmaster",
    b"\"Doe, J\" ",
    b"Doe, J ",
    b"grp: x@y, z@w;",
    b"(comment, x)",
    b"=?utf-8?q?a=2C_b?=",
    b"=?utf-8?b?LA==?=",
    b"=?x?",
    b"?=",
    b"=C3=A9",
    b"=\r\n",
    b"aGk=",
    b", ",
    b";",
    b":",
    b"\"",
    b"\\",
    b"<",
    b">",
    b"@",
    b" ",
    b"\t",
    b"\r",
    b"\0",
    b"\xc3\xa9",
    b"\xff",
    b"x",
    b"=",
    b"%",
    b"'",
    b"*",
];

fn map_tokens(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in data {
        out.extend_from_slice(TOKENS[usize::from(b) % TOKENS.len()]);
    }
    out
}

/// Reference for the documented mailbox comparison (local part exact, domain after the last
/// `@` case-insensitive, `Postmaster` local part in any case).
fn same(a: &str, b: &str) -> bool {
    let pm = |x: &str| x.eq_ignore_ascii_case("postmaster");
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((la, da)), Some((lb, db))) => {
            (la == lb || (pm(la) && pm(lb))) && da.eq_ignore_ascii_case(db)
        }
        _ => a == b || (pm(a) && pm(b)),
    }
}

fn check_bcc(rcpts: &[&str], to: &[EmailAddress], cc: &[EmailAddress], bcc: &[String]) {
    let mut expected: Vec<&str> = Vec::new();
    for &r in rcpts {
        let visible = to.iter().chain(cc).any(|m| same(&m.address, r));
        if !visible && !expected.iter().any(|e| same(e, r)) {
            expected.push(r);
        }
    }
    assert_eq!(bcc, expected.as_slice(), "bcc mismatch for {rcpts:?}");
}

/// An addr-spec of plain atoms (`dot-atom "@" dot-atom`), for which `text()` must round-trip.
fn plain_addr_spec(a: &str) -> bool {
    let atom = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|p| {
                !p.is_empty()
                    && p.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
                    })
            })
    };
    match a.split_once('@') {
        Some((l, d)) => atom(l) && atom(d),
        None => false,
    }
}

fn check_text_roundtrip(m: &EmailAddress) {
    if !plain_addr_spec(&m.address) {
        return;
    }
    if let Some(name) = &m.name {
        // Names that mailparse itself would rewrite: controls, encoded words, runs of blanks.
        if name.chars().any(|c| c.is_control())
            || name.contains("=?")
            || name.contains("  ")
            || name.starts_with(' ')
            || name.ends_with(' ')
        {
            return;
        }
    }
    let text = m.text();
    let parsed = mailparse::addrparse(&text)
        .unwrap_or_else(|e| panic!("text() {text:?} of {m:?} does not parse: {e}"));
    let list = parsed.into_inner();
    assert_eq!(list.len(), 1, "text() {text:?} of {m:?} parses to {list:?}");
    match &list[0] {
        mailparse::MailAddr::Single(info) => {
            assert_eq!(info.addr, m.address, "text() {text:?} of {m:?}");
            assert_eq!(
                info.display_name.as_deref().filter(|n| !n.is_empty()),
                m.name.as_deref(),
                "text() {text:?} of {m:?}"
            );
        }
        other => panic!("text() {text:?} of {m:?} parses to a group {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&rlen, rest)) = rest.split_first() else {
        return;
    };
    let rlen = usize::from(rlen).min(rest.len());
    let (rsec, msg) = rest.split_at(rlen);
    let rtext = String::from_utf8_lossy(rsec);
    let rcpts: Vec<&str> = rtext.split('\n').collect();
    let no_decode = flags & 1 != 0;
    let no_encode = flags & 4 != 0;
    let msg: Vec<u8> = if flags & 2 != 0 {
        map_tokens(msg)
    } else {
        msg.to_vec()
    };

    // rmMessage.
    let un = Message::unparsed(msg.clone());
    assert_eq!(un.raw(), msg.as_slice());
    assert_eq!([un.header_bytes(), un.body()].concat(), msg);
    for (name, _value) in un.headers() {
        assert!(!name.contains('\n'), "header name {name:?} spans lines");
    }
    let _ = un.header("subject");
    let _ = un.header("");

    // rmMessageParsed.
    match Message::parse(msg.clone(), &rcpts, no_decode, no_encode) {
        Ok(m) => {
            assert!(m.is_parsed());
            assert_eq!(m.raw(), msg.as_slice(), "raw() is not the input");
            assert_eq!(m.header_bytes(), un.header_bytes());
            assert_eq!(m.body(), un.body());
            assert_eq!((m.no_decode, m.no_encode), (no_decode, no_encode));
            if no_decode {
                assert_eq!(m.text_bodies.len(), 1);
                assert!(m.attachments.is_empty());
            }
            let parts = m.text_bodies.len() + m.attachments.len();
            assert!(
                parts <= 2 * (MAX_MIME_PARTS + 1),
                "{parts} parts, over the MAX_MIME_PARTS bound"
            );
            assert_eq!(m.bcc_list, reconcile_bcc(&rcpts, &m.to, &m.cc));
            check_bcc(&rcpts, &m.to, &m.cc, &m.bcc_list);
            for mb in m.from.iter().chain(&m.to).chain(&m.cc).chain(&m.reply_to) {
                let _ = mb.to_string();
                if !no_decode {
                    check_text_roundtrip(mb);
                }
            }
            assert_eq!(m.into_raw(), msg);
        }
        Err(e) => {
            assert_eq!(e.raw(), msg.as_slice(), "error raw() is not the input");
            let _ = format!("{e} {e:?}");
            assert_eq!(e.into_raw(), msg);
        }
    }

    // reconcile_bcc with arbitrary lists on both sides: the second half of the recipient
    // lines (with and without display names) as To, the first half as envelope.
    let half = rcpts.len() / 2;
    let to: Vec<EmailAddress> = rcpts[half..]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if i % 2 == 0 {
                EmailAddress::new(*r)
            } else {
                EmailAddress::with_name("n", r.to_ascii_uppercase())
            }
        })
        .collect();
    let bcc = reconcile_bcc(&rcpts[..half], &to, &[]);
    check_bcc(&rcpts[..half], &to, &[], &bcc);
    let bcc = reconcile_bcc(&rcpts, &[], &to);
    check_bcc(&rcpts, &[], &to, &bcc);
});
