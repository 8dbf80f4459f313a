use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::address::{parse_mail_from, parse_rcpt_to};
use crate::thread::TlsInfo;

/// A session after `EHLO helo`, `MAIL FROM:<from>` and one RCPT per recipient.
fn session(peer: &str, helo: &str, from: &str, rcpts: &[&str]) -> SmtpServerThread {
    let peer: SocketAddr = peer.parse().unwrap();
    let mut thread = SmtpServerThread::new(peer, peer, 1);
    thread.helo = true;
    thread.ehlo = true;
    thread.helo_name = helo.to_string();
    thread.from = Some(parse_mail_from(&format!("FROM:<{from}>"), true).unwrap());
    for rcpt in rcpts {
        let rcpt = parse_rcpt_to(&format!("TO:<{rcpt}>"), true).unwrap();
        thread.rcpt_list.push(rcpt);
    }
    thread
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn received_names_client_server_protocol_recipient_and_date() {
    let thread = session(
        "192.0.2.1:4321",
        "client.example",
        "a@b.example",
        &["bob@example.org"],
    );
    let line = received(&thread, "mx.example.org", Some("a1b2"), at(1_800_000_000));
    assert_eq!(
        line,
        "Received: from client.example ([192.0.2.1])\r\n\
         \tby mx.example.org with ESMTP id a1b2\r\n\
         \tfor <bob@example.org>; Fri, 15 Jan 2027 08:00:00 +0000\r\n"
    );
}

#[test]
fn received_names_no_recipient_of_several() {
    // RFC 5321 §7.2: each recipient would learn the others.
    let thread = session("192.0.2.1:1", "c.example", "a@b", &["x@y", "z@y"]);
    let line = received(&thread, "mx", None, at(0));
    assert_eq!(
        line,
        "Received: from c.example ([192.0.2.1])\r\n\tby mx with ESMTP; \
         Thu, 01 Jan 1970 00:00:00 +0000\r\n"
    );
}

#[test]
fn received_with_ipv6_and_mapped_peers() {
    let v6 = session("[2001:db8::7]:25", "[IPv6:2001:db8::7]", "", &["x@y"]);
    let line = received(&v6, "mx", None, at(0));
    assert!(line.starts_with("Received: from [IPv6:2001:db8::7] ([IPv6:2001:db8::7])\r\n"));
    let mapped = session("[::ffff:192.0.2.9]:25", "h.example", "", &["x@y"]);
    let line = received(&mapped, "mx", None, at(0));
    assert!(
        line.starts_with("Received: from h.example ([192.0.2.9])\r\n"),
        "{line}"
    );
}

#[test]
fn a_helo_name_that_is_no_domain_goes_in_a_comment() {
    let cases = [
        ("my laptop", "[192.0.2.1] ([192.0.2.1]) (HELO my laptop)"),
        (
            "x)\r\nX-Evil: 1 (",
            "[192.0.2.1] ([192.0.2.1]) (HELO x\\)??X-Evil: 1 \\()",
        ),
        (
            "back\\slash_",
            "[192.0.2.1] ([192.0.2.1]) (HELO back\\\\slash_)",
        ),
        ("", "[192.0.2.1] ([192.0.2.1])"),
        (
            "b\u{e4}r.example",
            "[192.0.2.1] ([192.0.2.1]) (HELO b\u{e4}r.example)",
        ),
        (
            "[300.1.1.1]",
            "[192.0.2.1] ([192.0.2.1]) (HELO [300.1.1.1])",
        ),
        // Found by fuzzing (trace_received): RFC 5321 §4.1.3's "::" stands for at least two
        // groups, so seven groups beside it are no IPv6-addr.
        (
            "[IPv6:1:2:3:4:5:6:7::]",
            "[192.0.2.1] ([192.0.2.1]) (HELO [IPv6:1:2:3:4:5:6:7::])",
        ),
        ("[IPv6:1:2:3:4:5:6::]", "[IPv6:1:2:3:4:5:6::] ([192.0.2.1])"),
    ];
    for (helo, from) in cases {
        let thread = session("192.0.2.1:1", helo, "a@b", &["x@y"]);
        let line = received(&thread, "mx", None, at(0));
        let first = line.split("\r\n").next().unwrap();
        assert_eq!(first, format!("Received: from {from}"), "HELO {helo:?}");
        assert_eq!(line.matches("\r\n").count(), 3, "{line:?}");
    }
    let long = "a b".repeat(200);
    let thread = session("192.0.2.1:1", &long, "a@b", &["x@y"]);
    let first = received(&thread, "mx", None, at(0));
    assert!(
        first.split("\r\n").next().unwrap().len() < 320,
        "the comment is bounded"
    );
}

#[test]
fn a_helo_name_of_four_octet_characters_keeps_the_line_within_998_octets() {
    // Found by fuzzing (trace_received): 255 characters of 4 octets each made a 1068-octet
    // first line (RFC 5322 §2.1.1: at most 998). An EHLO line of 1,027 octets is within the
    // server's 2,048-octet command line limit.
    let helo = "\u{1F600}".repeat(255);
    let thread = session("192.0.2.1:1", &helo, "a@b", &["x@y"]);
    let line = received(&thread, "mx", None, at(0));
    for l in line.split("\r\n") {
        assert!(l.len() <= 998, "{} octets: {l:?}", l.len());
    }
    let first = line.split("\r\n").next().unwrap();
    let kept = "\u{1F600}".repeat(63);
    assert_eq!(
        first,
        format!("Received: from [192.0.2.1] ([192.0.2.1]) (HELO {kept})")
    );
}

#[test]
fn protocol_names_follow_rfc_3848_and_6531() {
    let mut thread = session("192.0.2.1:1", "c.example", "a@b", &["x@y"]);
    let tls = TlsInfo {
        protocol_version: "TLSv1.3".into(),
        cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
        sni: None,
    };
    assert_eq!(protocol(&thread), "ESMTP");
    thread.logged_in = true;
    assert_eq!(protocol(&thread), "ESMTPA");
    thread.tls = Some(tls);
    assert_eq!(protocol(&thread), "ESMTPSA");
    thread.logged_in = false;
    assert_eq!(protocol(&thread), "ESMTPS");
    let line = received(&thread, "mx", None, at(0));
    assert!(
        line.starts_with(
            "Received: from c.example ([192.0.2.1]) (using TLSv1.3 with \
             TLS13_AES_128_GCM_SHA256)\r\n\tby mx with ESMTPS\r\n"
        ),
        "{line}"
    );
    thread.from = Some(parse_mail_from("FROM:<a@b> SMTPUTF8", true).unwrap());
    assert_eq!(protocol(&thread), "UTF8SMTPS");
    thread.logged_in = true;
    assert_eq!(protocol(&thread), "UTF8SMTPSA");
    thread.tls = None;
    assert_eq!(protocol(&thread), "UTF8SMTPA");
    thread.logged_in = false;
    assert_eq!(protocol(&thread), "UTF8SMTP");
    thread.ehlo = false;
    assert_eq!(protocol(&thread), "SMTP");
}

#[test]
fn an_id_that_is_no_atom_is_left_out() {
    let thread = session("192.0.2.1:1", "c.example", "a@b", &["x@y", "z@y"]);
    for id in ["", "a b", "x\r\nX-Evil: 1", "(c)", "a.b"] {
        let line = received(&thread, "mx", Some(id), at(0));
        assert!(!line.contains(" id "), "{id:?}: {line:?}");
    }
    let line = received(&thread, "mx", Some("1757M3P4Q5"), at(0));
    assert!(line.contains("with ESMTP id 1757M3P4Q5; "), "{line}");
}

#[test]
fn return_path_of_sender_and_null_sender() {
    let thread = session("192.0.2.1:1", "c.example", "alice@example.org", &["x@y"]);
    assert_eq!(return_path(&thread), "Return-Path: <alice@example.org>\r\n");
    let bounce = session("192.0.2.1:1", "c.example", "", &["x@y"]);
    assert_eq!(return_path(&bounce), "Return-Path: <>\r\n");
    let quoted = session("192.0.2.1:1", "c", "\"a (b) c\"@example.org", &["x@y"]);
    assert_eq!(
        return_path(&quoted),
        "Return-Path: <\"a (b) c\"@example.org>\r\n"
    );
}

#[test]
fn dates_across_leap_years_and_centuries() {
    let cases = [
        (0, "Thu, 01 Jan 1970 00:00:00 +0000"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
        (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 +0000"),
        (1_798_761_599, "Thu, 31 Dec 2026 23:59:59 +0000"),
        (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 +0000"),
        (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 +0000"),
    ];
    for (secs, text) in cases {
        assert_eq!(date(at(secs)), text, "{secs}");
    }
    assert_eq!(
        date(UNIX_EPOCH - Duration::from_secs(5)),
        "Thu, 01 Jan 1970 00:00:00 +0000"
    );
}
