//! Property tests of DATA over a real socket (issue 3 "Proof"): any byte string, dot-stuffed
//! (RFC 5321 §4.5.2) and ended with CRLF.CRLF (§4.1.1.4), arrives byte-exact under
//! `BareNewlinePolicy::Pass`, whether it is written at once or in random small pieces.
//! One server and one connection serve all the cases of a property (sockets are slow).

mod common;

use std::cell::RefCell;
use std::io::Write;

use common::{start, Client, TestServer};
use indy_smtp::data::{dot_stuff, DataDecoder};
use indy_smtp::{BareNewlinePolicy, RawStreamType};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Bytes biased towards the ones that matter to DATA framing, so CRLF, "." at line starts,
/// bare CR/LF and smuggling forms such as `\n.\n` or `\r\n.\r` turn up often.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        2 => Just(b'\r'),
        2 => Just(b'\n'),
        2 => Just(b'.'),
        1 => Just(0u8),
    ];
    prop_oneof![
        proptest::collection::vec(byte, 0..4096),
        proptest::collection::vec(
            prop_oneof![
                Just(&b"\r\n"[..]),
                Just(&b"."[..]),
                Just(&b"\r\n.\r\n"[..]),
                Just(&b"x"[..])
            ],
            0..200
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// What the server must hand over: the body plus the CRLF `dot_stuff` adds when missing.
fn expected(body: &[u8]) -> Vec<u8> {
    let mut want = body.to_vec();
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        want.extend_from_slice(b"\r\n");
    }
    want
}

fn pass_server() -> (TestServer, Client) {
    let s = start(|srv| srv.bare_newline_policy = BareNewlinePolicy::Pass);
    let c = greeted_client(&s);
    (s, c)
}

/// A client past EHLO that sends each write at once.
fn greeted_client(s: &TestServer) -> Client {
    let mut c = s.client();
    c.writer.set_nodelay(true).unwrap();
    c.expect("EHLO client.example", 250);
    c
}

/// 64 cases of a random body sent in random small writes, each checked by `round_trip`
/// against `want(body)`; the session must still be in step afterwards.
fn small_writes_property(s: &TestServer, c: Client, want: impl Fn(&[u8]) -> Vec<u8>) {
    let c = RefCell::new(c);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    let strategy = (body(), proptest::collection::vec(1usize..=64, 1..32));
    runner
        .run(&strategy, |(body, pieces)| {
            round_trip(s, &mut c.borrow_mut(), &body, &pieces, &want(&body))
        })
        .unwrap();
    assert_eq!(c.into_inner().cmd("NOOP").0, 250);
}

/// Sends `body` dot-stuffed in writes of the given sizes (cycled) and checks that the server
/// stored exactly `want`.
fn round_trip(
    s: &TestServer,
    c: &mut Client,
    body: &[u8],
    pieces: &[usize],
    want: &[u8],
) -> Result<(), TestCaseError> {
    c.expect("MAIL FROM:<a@b.example>", 250);
    c.expect("RCPT TO:<c@d.example>", 250);
    c.expect("DATA", 354);
    let wire = dot_stuff(body);
    let mut rest = &wire[..];
    for &n in pieces.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (now, later) = rest.split_at(n.min(rest.len()));
        c.writer.write_all(now).expect("write");
        rest = later;
    }
    let (code, text) = c.read_reply();
    prop_assert_eq!(code, 250, "{}", text);
    let got = s.inbox.lock().pop().expect("a message was delivered");
    prop_assert!(s.inbox.lock().is_empty());
    prop_assert_eq!(got.data, want);
    Ok(())
}

#[test]
fn any_body_arrives_byte_exact() {
    let (s, c) = pass_server();
    let c = RefCell::new(c);
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&body(), |body| {
            round_trip(
                &s,
                &mut c.borrow_mut(),
                &body,
                &[usize::MAX],
                &expected(&body),
            )
        })
        .unwrap();
    let mut c = c.into_inner();
    // The session is still in step with the client after every case.
    assert_eq!(c.cmd("NOOP").0, 250);
}

#[test]
fn any_body_split_into_small_writes_arrives_identical() {
    let (s, c) = pass_server();
    small_writes_property(&s, c, expected);
}

/// A `Direct` stream hands the message out from the connection's read buffer, in pieces (runs
/// of input, and the CR LF that `Normalize` puts for a bare LF): what the handler reads must be
/// exactly what the decoder makes of the same bytes in one piece.
#[test]
fn direct_stream_reads_exactly_what_the_decoder_decodes() {
    let s = start(|srv| {
        srv.raw_stream_type = RawStreamType::Direct;
        srv.bare_newline_policy = BareNewlinePolicy::Normalize;
    });
    let c = greeted_client(&s);
    small_writes_property(&s, c, |body| {
        let mut want = Vec::new();
        DataDecoder::new(BareNewlinePolicy::Normalize).decode(&dot_stuff(body), &mut want);
        want
    });
}

#[test]
fn smuggling_forms_are_data_under_every_policy() {
    // RFC 5321 §4.1.1.4: only CRLF.CRLF ends the data (CVE-2023-51764 class).
    for policy in [BareNewlinePolicy::Pass, BareNewlinePolicy::Normalize] {
        let s = start(|srv| srv.bare_newline_policy = policy);
        let mut c = s.client();
        c.expect("EHLO client.example", 250);
        c.expect("MAIL FROM:<a@b>", 250);
        c.expect("RCPT TO:<c@d>", 250);
        c.expect("DATA", 354);
        c.send(b"a\n.\nMAIL FROM:<x@y>\r\nb\r\n.\nc\r.\r\nd\n.\r\n");
        c.send(b"e\r\n.\r\n");
        assert_eq!(c.read_reply().0, 250, "{policy:?}");
        assert_eq!(c.cmd("NOOP").0, 250, "{policy:?}: no smuggled command ran");
        let m = s.messages();
        assert_eq!(m.len(), 1, "{policy:?}");
        assert!(m[0].data.ends_with(b"e\r\n"), "{policy:?}");
        assert!(
            m[0].data.windows(13).any(|w| w == b"MAIL FROM:<x@"),
            "{policy:?}"
        );
    }
}
