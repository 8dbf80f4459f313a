//! Review 9: defects found over real sockets (127.0.0.1, byte-exact).

mod common;

use common::{read_raw_reply, start};

/// RFC 6531 §3.1 item 8: "Servers offering this extension MUST provide support for, and
/// announce, the 8BITMIME extension". With 8BITMIME turned off, SMTPUTF8 must not be offered
/// (nor its MAIL parameter accepted), as BINARYMIME is not without CHUNKING.
#[test]
fn smtputf8_is_not_offered_without_8bitmime() {
    let s = start(|server| server.extensions.eight_bit_mime = false);
    let mut c = s.client();
    c.send(b"EHLO client.example\r\n");
    let ehlo = read_raw_reply(&mut c);
    assert!(!ehlo.contains("8BITMIME"), "{ehlo:?}");
    assert!(
        !ehlo.contains("SMTPUTF8"),
        "SMTPUTF8 offered without 8BITMIME: {ehlo:?}"
    );
    // The parameter of an extension that is not offered is refused like any other.
    c.send("MAIL FROM:<j\u{f6}rg@example.org> SMTPUTF8\r\n".as_bytes());
    let r = read_raw_reply(&mut c);
    assert!(
        r.starts_with("555 5.5.4 ") || r.starts_with("553 5.6.7 "),
        "{r:?}"
    );
    c.send(b"MAIL FROM:<a@example.org> SMTPUTF8\r\n");
    assert_eq!(
        read_raw_reply(&mut c),
        "555 5.5.4 Unsupported parameter SMTPUTF8\r\n"
    );
    // Both on (the default): both offered.
    let s = start(|_| {});
    let mut c = s.client();
    c.send(b"EHLO client.example\r\n");
    let ehlo = read_raw_reply(&mut c);
    assert!(ehlo.contains("250-8BITMIME\r\n") && ehlo.contains("250-SMTPUTF8\r\n"));
}

/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including the code and CRLF. A
/// parameter keyword named in a 501 is shortened (src/address says so: "a hostile parameter
/// cannot bloat the reply"), but not when the refusal is a duplicate keyword or a non-ASCII
/// value: the whole keyword, up to the 2048-octet line limit, was echoed.
#[test]
fn a_refused_parameter_keyword_does_not_make_a_reply_line_over_512_octets() {
    let s = start(|_| {});
    let mut c = s.client();
    c.send(b"EHLO client.example\r\n");
    read_raw_reply(&mut c);
    let long = "K".repeat(900);
    let lines = [
        // The same keyword twice (keywords are case-insensitive).
        format!(
            "MAIL FROM:<a@example.org> {long}=1 {}=2\r\n",
            long.to_lowercase()
        ),
        // A non-ASCII value without SMTPUTF8.
        format!("MAIL FROM:<a@example.org> {long}=\u{e9}\r\n"),
        format!(
            "RCPT TO:<b@example.org> {long}=1 {}=2\r\n",
            long.to_lowercase()
        ),
    ];
    c.send(b"MAIL FROM:<a@example.org>\r\n");
    assert!(read_raw_reply(&mut c).starts_with("250 "));
    c.send(b"RSET\r\n");
    read_raw_reply(&mut c);
    for line in &lines {
        if line.starts_with("RCPT") {
            c.send(b"MAIL FROM:<a@example.org>\r\n");
            read_raw_reply(&mut c);
        }
        c.send(line.as_bytes());
        let reply = read_raw_reply(&mut c);
        assert!(reply.starts_with("501 5.5.4 "), "{reply:?}");
        assert!(
            reply.len() <= 512,
            "reply line of {} octets: {:?}...",
            reply.len(),
            &reply[..80]
        );
    }
}
