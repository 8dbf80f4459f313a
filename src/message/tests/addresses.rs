//! Address headers, BCC reconciliation and address-list splitting.

use super::super::fields::split_address_list;
use super::*;

// ---------------------------------------------------------------- addresses

#[test]
fn address_headers() {
    // (To value, expected .text() of each mailbox)
    let cases: &[(&str, &[&str])] = &[
        ("a@b.com", &["a@b.com"]),
        ("<a@b.com>", &["a@b.com"]),
        ("Ann <a@b.com>", &["Ann <a@b.com>"]),
        ("\"Ann B.\" <a@b.com>", &["\"Ann B.\" <a@b.com>"]),
        ("\"\" <a@b.com>", &["a@b.com"]),
        ("a@b.com (comment)", &["a@b.com"]),
        (
            "a@b.com, Bo <b@c.com>,c@d.com",
            &["a@b.com", "Bo <b@c.com>", "c@d.com"],
        ),
        (
            "team: x@y.com, Zed <z@y.com>;, after@y.com",
            &["x@y.com", "Zed <z@y.com>", "after@y.com"],
        ),
        (
            "team: x@y.com;, Bob <b@y.com>",
            &["x@y.com", "Bob <b@y.com>"],
        ),
        ("undisclosed-recipients:;", &[]),
        ("", &[]),
        // mailparse rejects these lists; the lenient fallback keeps every entry.
        ("Bob, alice@x.com", &["Bob", "alice@x.com"]),
        ("junk", &["junk"]),
        ("Bob <bob>, carl@x.com", &["Bob <bob>", "carl@x.com"]),
    ];
    for &(value, want) in cases {
        let raw = format!("To: {value}\r\n\r\n");
        let msg = parse_ok(raw.as_bytes());
        assert_eq!(addrs(&msg.to), want, "To: {value}");
    }
}

#[test]
fn repeated_address_fields_are_merged() {
    let msg = parse_ok(b"To: a@x.com\r\nTo: b@x.com\r\nCc: c@x.com\r\ncc: d@x.com\r\n\r\n");
    assert_eq!(addrs(&msg.to), ["a@x.com", "b@x.com"]);
    assert_eq!(addrs(&msg.cc), ["c@x.com", "d@x.com"]);
    let msg = Message::parse(
        b"To: a@x.com\r\nTo: b@x.com\r\n\r\n".to_vec(),
        &["a@x.com", "b@x.com", "c@x.com"],
        false,
        false,
    )
    .unwrap();
    assert_eq!(msg.bcc_list, ["c@x.com"]);
}

#[test]
fn email_address_text() {
    let cases = [
        (EmailAddress::new("a@b.com"), "a@b.com"),
        (EmailAddress::with_name("Ann", "a@b.com"), "Ann <a@b.com>"),
        (EmailAddress::with_name("", "a@b.com"), "a@b.com"),
        (
            EmailAddress {
                name: Some(String::new()),
                address: "a@b.com".into(),
            },
            "a@b.com",
        ),
        (
            EmailAddress::with_name("Doe, John", "j@d.org"),
            "\"Doe, John\" <j@d.org>",
        ),
        (
            EmailAddress::with_name("Say \"hi\"", "h@d.org"),
            "\"Say \\\"hi\\\"\" <h@d.org>",
        ),
        (
            EmailAddress::with_name("Jörg Ü", "j@d.de"),
            "Jörg Ü <j@d.de>",
        ),
    ];
    for (mailbox, want) in cases {
        assert_eq!(mailbox.text(), want);
        assert_eq!(mailbox.to_string(), want);
    }
}

// ---------------------------------------------------------------- BCC reconciliation

#[test]
fn bcc_reconciliation_table() {
    let to = [
        EmailAddress::new("aa@b.com"),
        EmailAddress::with_name("Ann Smith", "ann@x.com"),
        EmailAddress::new("Mixed@Example.ORG"),
        EmailAddress::new("Postmaster@p.net"),
    ];
    let cc = [EmailAddress::new("carl@c.org")];
    // (envelope, expected BCC list)
    let cases: &[(&[&str], &[&str])] = &[
        (&["ann@x.com"], &[]),            // exact match (display name in To)
        (&["carl@c.org"], &[]),           // exact match in Cc
        (&["ann@X.COM"], &[]),            // domain case differs: same mailbox
        (&["Mixed@example.org"], &[]),    // domain case differs the other way
        (&["Ann@x.com"], &["Ann@x.com"]), // local part case differs: BCC
        (&["mixed@Example.ORG"], &["mixed@Example.ORG"]),
        (&["a@b.com"], &["a@b.com"]), // Indy 9's substring bug: not hidden by aa@b.com
        (&["aa@b.co"], &["aa@b.co"]),
        (&["aa@b.com.evil"], &["aa@b.com.evil"]),
        (&["eve@e.org", "eve@e.org"], &["eve@e.org"]), // duplicates dropped
        (&["eve@e.org", "eve@E.ORG"], &["eve@e.org"]), // same mailbox, first spelling kept
        (&["eve@e.org", "Eve@e.org"], &["eve@e.org", "Eve@e.org"]),
        (&["z@z.z", "ann@x.com", "y@y.y"], &["z@z.z", "y@y.y"]), // envelope order kept
        (&["POSTMASTER@P.NET"], &[]),                            // RFC 5321 §4.1.1.3
        (&["postmaster"], &["postmaster"]),
        (&["nodomain"], &["nodomain"]),
        (&["\"a@b\"@c.com"], &["\"a@b\"@c.com"]),
        (&[], &[]),
    ];
    for &(envelope, want) in cases {
        assert_eq!(reconcile_bcc(envelope, &to, &cc), want, "{envelope:?}");
    }
    assert_eq!(
        reconcile_bcc(&["a@b.com", "c@d.com"], &[], &[]),
        ["a@b.com", "c@d.com"]
    );
}

#[test]
fn same_mailbox_rules() {
    let cases = [
        ("a@b.com", "a@b.com", true),
        ("a@b.com", "a@B.Com", true),
        ("A@b.com", "a@b.com", false),
        ("a@b.com", "aa@b.com", false),
        ("\"x@y\"@b.com", "\"x@y\"@B.COM", true),
        ("postmaster", "POSTMASTER", true),
        ("postmaster@a.b", "PostMaster@A.B", true),
        ("abc", "ABC", false),
        ("", "", true),
        ("a@", "a@", true),
    ];
    for (a, b, want) in cases {
        assert_eq!(same_mailbox(a, b), want, "{a} vs {b}");
        assert_eq!(same_mailbox(b, a), want, "{b} vs {a}");
    }
}

#[test]
fn split_address_list_respects_quotes_comments_and_brackets() {
    let cases: &[(&str, &[&str])] = &[
        ("a, b", &["a", " b"]),
        ("\"x, y\" <a@b>, c", &["\"x, y\" <a@b>", " c"]),
        ("a (x, y), b", &["a (x, y)", " b"]),
        ("<a,b>, c", &["<a,b>", " c"]),
        ("\"q\\\", r\", s", &["\"q\\\", r\"", " s"]),
        ("", &[""]),
        ("é, ü", &["é", " ü"]),
    ];
    for &(input, want) in cases {
        assert_eq!(split_address_list(input), want, "{input}");
    }
}

/// Found by an audit: a blank inside the angle brackets and an obsolete source route made a
/// visible recipient look like a BCC. Both now give the plain addr-spec.
#[test]
fn blanks_and_routes_inside_angle_brackets_are_not_part_of_the_address() {
    let raw = b"To: <s@d.org >, <t@d.org\t>, <@relay.example:r@d.org>\r\n\r\nx\r\n";
    let rcpts = ["s@d.org", "t@d.org", "r@d.org", "b@d.org"];
    let msg = Message::parse(raw.to_vec(), &rcpts, false, false).expect("parses");
    assert_eq!(addrs(&msg.to), ["s@d.org", "t@d.org", "r@d.org"]);
    assert_eq!(msg.bcc_list, ["b@d.org"]);
}

/// An address field mailparse rejects is split as received, so a comma an encoded word
/// decodes to makes no extra mailbox; an entry with an unclosed `<` still names its mailbox
/// (found by an audit: both made visible recipients BCCs).
#[test]
fn the_lenient_fallback_splits_before_decoding() {
    let raw = b"To: =?utf-8?q?a=2C_b?= <x@y.z>, Bob <bob@b.org\r\n\r\nx\r\n";
    let msg = Message::parse(raw.to_vec(), &["x@y.z", "bob@b.org"], false, false).expect("parses");
    assert_eq!(addrs(&msg.to), ["\"a, b\" <x@y.z>", "Bob <bob@b.org>"]);
    assert!(msg.bcc_list.is_empty(), "{:?}", msg.bcc_list);
}
