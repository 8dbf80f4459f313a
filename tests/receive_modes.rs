//! DATA in every receive mode and raw stream type, over real loopback sockets, with `lettre` as
//! the client and the raw `Client` for byte-exact checks (issue 2 item 4, issue 3 smuggling).
mod common;

use std::io::ErrorKind::{TimedOut, WouldBlock};
use std::io::{BufRead, Read, Seek};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{start, TestServer};
use indy_smtp::message::{EmailAddress, Message as Parsed};
use indy_smtp::{BareNewlinePolicy, RawStream, RawStreamType, ReceiveMode, Reply, SmtpServer};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::{Message, SmtpTransport, Transport};
use parking_lot::Mutex;

/// What a conforming client writes after DATA: every line starting with "." doubled by hand
/// (RFC 5321 §4.5.2), including a line that is just "." (sent as "..").
const STUFFED: &[u8] =
    b"Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\n..\r\nmid.line . dot\r\n.\r\n";
/// What the server must hand over for `STUFFED`: one leading dot removed per line, the CRLF
/// before the terminating "." kept (RFC 5321 §4.1.1.4).
const UNSTUFFED: &[u8] =
    b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nmid.line . dot\r\n";

/// Bytes shown as text in assertion diffs.
fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mailer(server: &TestServer) -> SmtpTransport {
    SmtpTransport::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .timeout(Some(Duration::from_secs(10)))
        .build()
}

/// From/To/Cc/Bcc/Subject, an RFC 2047-encoded subject and body lines that need transparency.
fn text_message() -> Message {
    Message::builder()
        .from("Ann Sender <ann@example.org>".parse().unwrap())
        .to("Bob <bob@example.com>".parse().unwrap())
        .cc("carl@example.net".parse().unwrap())
        .bcc("hidden@example.net".parse().unwrap())
        .subject("Grüße aus Köln")
        .message_id(Some("<id-1@client.example>".into()))
        .date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .header(ContentType::TEXT_PLAIN)
        .body(String::from(
            "Hello Bob,\r\n.a line with a leading dot\r\n..and two\r\n.\r\nbye\r\n",
        ))
        .unwrap()
}

fn multipart_message(payload: &[u8]) -> Message {
    let octets = ContentType::parse("application/octet-stream").unwrap();
    Message::builder()
        .from("ann@example.org".parse().unwrap())
        .to("bob@example.com".parse().unwrap())
        .subject("report")
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(String::from("See the attachment.")))
                .singlepart(Attachment::new("report.bin".into()).body(payload.to_vec(), octets)),
        )
        .unwrap()
}

/// lettre sends the formatted message, dot-stuffed, then CRLF "." CRLF: after unstuffing the
/// server holds the message plus that first CRLF (RFC 5321 §4.1.1.4).
fn lettre_data(message: &Message) -> Vec<u8> {
    let mut data = message.formatted();
    data.extend_from_slice(b"\r\n");
    data
}

/// A payload bigger than one 64 KiB read buffer, with every byte value.
fn payload() -> Vec<u8> {
    (0..=255u8).cycle().take(70_000).collect()
}

/// Sends `STUFFED` through the raw client and checks the transaction is reset afterwards
/// (RFC 5321 §4.1.1.4: after the end of data the envelope is cleared, so RCPT is out of order).
fn send_stuffed(server: &TestServer) {
    let mut c = server.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<raw@example.org>", 250);
    c.expect("RCPT TO:<dots@example.com>", 250);
    c.expect("DATA", 354);
    c.send(STUFFED);
    assert_eq!(c.read_reply().0, 250);
    c.expect("RCPT TO:<late@example.com>", 503);
    c.expect("MAIL FROM:<raw@example.org>", 250);
    c.expect("QUIT", 221);
}

#[derive(Debug)]
struct RawSeen {
    kind: &'static str,
    start_pos: Option<u64>,
    data: Vec<u8>,
    rcpts: Vec<String>,
}

fn kind_of(stream: &RawStream<'_>) -> &'static str {
    match stream {
        RawStream::Memory(_) => "memory",
        RawStream::File(_) => "file",
        RawStream::Direct(_) => "direct",
    }
}

/// How an `on_receive_raw` handler reads its stream.
type ReadFn = fn(&mut RawStream<'_>) -> std::io::Result<Vec<u8>>;

/// A Raw-mode server of the given stream type whose handler reads with `read`.
fn raw_server(kind: RawStreamType, read: ReadFn) -> (TestServer, Arc<Mutex<Vec<RawSeen>>>) {
    let seen: Arc<Mutex<Vec<RawSeen>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let server = start(move |s| {
        s.raw_stream_type = kind;
        s.on_receive_raw = Some(Box::new(move |thread, stream| {
            let kind = kind_of(stream);
            let start_pos = stream.stream_position().ok();
            let data = read(stream).map_err(|e| Reply::new(451, e.to_string()))?;
            let rcpts = thread
                .rcpt_addresses()
                .iter()
                .map(|r| r.to_string())
                .collect();
            sink.lock().push(RawSeen {
                kind,
                start_pos,
                data,
                rcpts,
            });
            Ok(())
        }));
    });
    (server, seen)
}

fn read_all(stream: &mut RawStream<'_>) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    stream.read_to_end(&mut data)?;
    Ok(data)
}

/// Read in small pieces, so that reads end in the middle of decoded blocks.
fn read_small(stream: &mut RawStream<'_>) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        match stream.read(&mut buf)? {
            0 => return Ok(data),
            n => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// Line by line through `BufRead` (only a Direct stream is one).
fn read_lines(stream: &mut RawStream<'_>) -> std::io::Result<Vec<u8>> {
    let RawStream::Direct(reader) = stream else {
        return Err(std::io::Error::other("not a Direct stream"));
    };
    let mut data = Vec::new();
    while reader.read_until(b'\n', &mut data)? > 0 {}
    Ok(data)
}

/// Indy rmRaw: lettre's text and multipart messages and the hand-stuffed one arrive byte-exact,
/// in a stream of the configured type positioned at its start.
fn raw_round_trip(kind: RawStreamType, expect_kind: &str, read: ReadFn) {
    let (server, seen) = raw_server(kind, read);
    let text = text_message();
    let multi = multipart_message(&payload());
    let mailer = mailer(&server);
    mailer.send(&text).expect("lettre sends the text message");
    mailer
        .send(&multi)
        .expect("lettre sends the multipart message");
    send_stuffed(&server);
    let seen = seen.lock();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for s in seen.iter() {
        assert_eq!(s.kind, expect_kind);
        // A Direct stream cannot seek; the others are handed over rewound.
        let rewound = (expect_kind != "direct").then_some(0);
        assert_eq!(s.start_pos, rewound);
    }
    assert!(
        seen[0].data == lettre_data(&text),
        "text message not byte-exact"
    );
    assert!(
        seen[1].data == lettre_data(&multi),
        "multipart not byte-exact"
    );
    assert_eq!(text_of(&seen[2].data), text_of(UNSTUFFED));
    let mut rcpts = seen[0].rcpts.clone();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["bob@example.com", "carl@example.net", "hidden@example.net"]
    );
}

// --- Raw mode, one test per RawStreamType (Indy's stFileStream / stMemoryStream, and Direct) ---

#[test]
fn raw_file_is_byte_exact_and_rewound() {
    raw_round_trip(RawStreamType::File, "file", read_all);
}

#[test]
fn raw_memory_is_byte_exact_and_rewound() {
    raw_round_trip(RawStreamType::Memory, "memory", read_all);
}

#[test]
fn raw_direct_read_in_small_pieces_is_byte_exact() {
    raw_round_trip(RawStreamType::Direct, "direct", read_small);
}

#[test]
fn raw_direct_bufread_lines_are_byte_exact() {
    raw_round_trip(RawStreamType::Direct, "direct", read_lines);
}

/// A Direct handler that reads nothing: the server drains the data itself up to CRLF.CRLF
/// (RFC 5321 §4.1.1.4), answers 250, and command-like lines in the body are never executed.
#[test]
fn raw_direct_handler_reading_nothing_keeps_the_session_in_sync() {
    let (server, seen) = raw_server(RawStreamType::Direct, |_| Ok(Vec::new()));
    let mut body =
        b"Subject: unread\r\n\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\n".to_vec();
    for i in 0..5_000 {
        body.extend_from_slice(
            format!(".line {i} of filler text for several blocks\r\n").as_bytes(),
        );
    }
    let mut c = server.client();
    assert_eq!(
        c.send_mail("a@example.org", &["b@example.com"], &body).0,
        250
    );
    // HELP is unassigned (502): an extra 250 here would mean body lines ran as commands.
    c.expect("HELP", 502);
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RCPT TO:<c@example.com>", 250);
    c.expect("DATA", 354);
    c.send(STUFFED);
    assert_eq!(c.read_reply().0, 250);
    let seen = seen.lock();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].rcpts, ["c@example.com"]);
}

// --- Message mode (Indy rmMessage): header block and body split, nothing parsed ---

type Inbox = Arc<Mutex<Vec<Parsed>>>;

fn message_server(
    mode: ReceiveMode,
    configure: impl FnOnce(&mut SmtpServer),
) -> (TestServer, Inbox) {
    let inbox: Inbox = Arc::default();
    let sink = Arc::clone(&inbox);
    let server = start(move |s| {
        s.receive_mode = mode;
        let handler: indy_smtp::ReceiveMessageHandler = Box::new(move |_thread, msg| {
            sink.lock().push(msg.clone());
            Ok(())
        });
        match mode {
            ReceiveMode::Message => s.on_receive_message = Some(handler),
            _ => s.on_receive_message_parsed = Some(handler),
        }
        configure(s);
    });
    (server, inbox)
}

#[test]
fn message_mode_splits_headers_and_body_unparsed() {
    let (server, inbox) = message_server(ReceiveMode::Message, |s| {
        s.messages.x_server = "XS-Test/1".into();
    });
    let text = text_message();
    mailer(&server).send(&text).expect("lettre sends");
    send_stuffed(&server);
    let inbox = inbox.lock();
    assert_eq!(inbox.len(), 2);
    let msg = &inbox[0];
    assert!(msg.raw() == lettre_data(&text), "raw() not byte-exact");
    assert!(!msg.is_parsed());
    assert!(msg.subject.is_none() && msg.from.is_empty() && msg.text_bodies.is_empty());
    assert!(msg.header_bytes().ends_with(b"\r\n\r\n"));
    assert!(
        msg.body().starts_with(b"Hello Bob,\r\n"),
        "{:?}",
        String::from_utf8_lossy(msg.body())
    );
    assert_eq!([msg.header_bytes(), msg.body()].concat(), msg.raw());
    assert_eq!(
        msg.header("message-id").as_deref(),
        Some("<id-1@client.example>")
    );
    assert_eq!(msg.x_server.as_deref(), Some("XS-Test/1"));
    assert_eq!(inbox[1].raw(), UNSTUFFED);
    assert_eq!(
        inbox[1].body(),
        &UNSTUFFED[b"Subject: dots\r\n\r\n".len()..]
    );
}

#[test]
fn message_mode_without_x_server_text_leaves_it_unset() {
    let (server, inbox) = message_server(ReceiveMode::Message, |s| s.messages.x_server.clear());
    send_stuffed(&server);
    let inbox = inbox.lock();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].x_server, None);
    assert!(!inbox[0]
        .raw()
        .windows(8)
        .any(|w| w.eq_ignore_ascii_case(b"X-Server")));
}

// --- MessageParsed (Indy rmMessageParsed): mailparse fields, RFC 2047, BCC reconciliation ---

#[test]
fn message_parsed_fills_fields_and_reconciles_bcc() {
    let (server, inbox) = message_server(ReceiveMode::MessageParsed, |_| {});
    let text = text_message();
    let data = payload();
    let multi = multipart_message(&data);
    let mailer = mailer(&server);
    mailer.send(&text).expect("lettre sends the text message");
    mailer
        .send(&multi)
        .expect("lettre sends the multipart message");
    let inbox = inbox.lock();
    assert_eq!(inbox.len(), 2);
    let msg = &inbox[0];
    assert!(msg.is_parsed());
    assert!(msg.raw() == lettre_data(&text), "raw() not byte-exact");
    assert_eq!(
        msg.from,
        [EmailAddress::with_name("Ann Sender", "ann@example.org")]
    );
    assert_eq!(msg.to, [EmailAddress::with_name("Bob", "bob@example.com")]);
    assert_eq!(msg.cc, [EmailAddress::new("carl@example.net")]);
    // lettre drops the Bcc header: the Bcc recipient is known from the envelope only.
    assert_eq!(msg.bcc_list, ["hidden@example.net"]);
    // RFC 2047: the wire carries an encoded-word, the field the decoded text.
    let header_text = text_of(msg.header_bytes()).to_ascii_lowercase();
    assert!(header_text.contains("=?utf-8?"), "{header_text}");
    assert_eq!(msg.subject.as_deref(), Some("Grüße aus Köln"));
    assert_eq!(msg.date, msg.header("date"));
    assert!(
        msg.date.as_deref().is_some_and(|d| d.contains("2023")),
        "{:?}",
        msg.date
    );
    assert_eq!(msg.message_id.as_deref(), Some("<id-1@client.example>"));
    assert_eq!(msg.text_bodies.len(), 1);
    assert!(msg.text_bodies[0]
        .text
        .contains(".a line with a leading dot\r\n..and two\r\n.\r\nbye"));
    assert!(msg.attachments.is_empty());
    assert!(!msg.no_encode && !msg.no_decode);
    assert_eq!(msg.x_server.as_deref(), Some("indy-smtp"));

    let msg = &inbox[1];
    assert!(msg.raw() == lettre_data(&multi), "raw() not byte-exact");
    assert_eq!(msg.content_type.as_deref(), Some("multipart/mixed"));
    assert_eq!(msg.text_bodies.len(), 1);
    assert_eq!(msg.text_bodies[0].text.trim_end(), "See the attachment.");
    assert_eq!(msg.attachments.len(), 1);
    assert_eq!(msg.attachments[0].filename.as_deref(), Some("report.bin"));
    assert_eq!(msg.attachments[0].content_type, "application/octet-stream");
    assert!(
        msg.attachments[0].data == data,
        "attachment not decoded byte-exact"
    );
    assert!(msg.bcc_list.is_empty());
}

#[test]
fn message_parsed_no_decode_keeps_encoded_words_and_no_encode_is_carried() {
    let (server, inbox) = message_server(ReceiveMode::MessageParsed, |s| {
        s.no_decode = true;
        s.no_encode = true;
    });
    let multi = multipart_message(b"attached");
    mailer(&server).send(&text_message()).expect("lettre sends");
    mailer(&server).send(&multi).expect("lettre sends");
    let inbox = inbox.lock();
    assert_eq!(inbox.len(), 2);
    let msg = &inbox[0];
    assert!(msg.no_decode && msg.no_encode);
    let subject = msg.subject.as_deref().unwrap_or_default();
    assert!(
        subject.to_ascii_lowercase().starts_with("=?utf-8?"),
        "{subject:?}"
    );
    assert_eq!(msg.subject, msg.header("subject"));
    // Without decoding the body is kept whole and not split into parts.
    let msg = &inbox[1];
    assert_eq!(msg.text_bodies.len(), 1);
    assert_eq!(msg.text_bodies[0].text.as_bytes(), msg.body());
    assert!(msg.attachments.is_empty());
}

/// BCC reconciliation compares whole addresses, the domain case-insensitively and the local
/// part exactly (RFC 5321 §2.4); Indy 9's substring test let `a@b.com` hide behind `aa@b.com`.
#[test]
fn message_parsed_bcc_matches_whole_addresses_case_insensitive_in_domain_only() {
    let (server, inbox) = message_server(ReceiveMode::MessageParsed, |_| {});
    let body = b"From: a@x.org\r\nTo: Bob@Example.COM, aa@b.com\r\nCc: carl@c.org\r\nSubject: bcc\r\n\r\nhi\r\n";
    let rcpts = [
        "Bob@example.com",
        "bob@example.com",
        "a@b.com",
        "carl@c.org",
        "hidden@x.org",
    ];
    let mut c = server.client();
    assert_eq!(c.send_mail("a@x.org", &rcpts, body).0, 250);
    let inbox = inbox.lock();
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        inbox[0].bcc_list,
        ["bob@example.com", "a@b.com", "hidden@x.org"]
    );
    assert_eq!(inbox[0].raw(), body);
}

// --- The final reply waits for the handler (RFC 5321 §4.1.1.4: 250 means the message is taken) ---

/// The handler blocks until released: no reply may reach the client before it returns.
fn reply_waits_for_handler(mode: ReceiveMode, kind: RawStreamType) {
    let (entered_tx, entered_rx) = crossbeam_channel::bounded::<()>(1);
    let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
    let block = move || {
        entered_tx.send(()).ok();
        release_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| Reply::new(451, "never released"))
    };
    let server = start(move |s| {
        s.receive_mode = mode;
        s.raw_stream_type = kind;
        match mode {
            ReceiveMode::Raw => s.on_receive_raw = Some(Box::new(move |_, _| block())),
            _ => s.on_receive_message_parsed = Some(Box::new(move |_, _| block())),
        }
    });
    let mut c = server.client();
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RCPT TO:<b@example.com>", 250);
    c.expect("DATA", 354);
    c.send(STUFFED);
    entered_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("handler called");
    // Nothing may arrive while the handler is blocked (a short poll, then the normal timeout).
    let timeout = |ms| {
        c.writer
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap()
    };
    timeout(200);
    let early = c.reader.fill_buf().map(text_of);
    let timed_out = |e: &std::io::Error| matches!(e.kind(), WouldBlock | TimedOut);
    assert!(
        early.as_ref().is_err_and(timed_out),
        "reply before the handler returned: {early:?}"
    );
    timeout(10_000);
    release_tx.send(()).unwrap();
    assert_eq!(c.read_reply().0, 250);
}

#[test]
fn final_reply_waits_for_the_handler_in_each_mode() {
    reply_waits_for_handler(ReceiveMode::Raw, RawStreamType::Memory);
    reply_waits_for_handler(ReceiveMode::MessageParsed, RawStreamType::File);
    // Regression: with Direct the 354 used to stay buffered until the handler's first read.
    reply_waits_for_handler(ReceiveMode::Raw, RawStreamType::Direct);
}

/// Indy's CustomError: the handler's `Err(reply)` is the final reply, in every mode, and the
/// transaction is reset all the same (RFC 5321 §4.1.1.4).
#[test]
fn handler_error_reply_is_sent_instead_and_transaction_reset() {
    let configs = [
        (ReceiveMode::Raw, RawStreamType::File),
        (ReceiveMode::Raw, RawStreamType::Memory),
        (ReceiveMode::Raw, RawStreamType::Direct),
        (ReceiveMode::Message, RawStreamType::File),
        (ReceiveMode::MessageParsed, RawStreamType::File),
    ];
    for (mode, kind) in configs {
        let refuse = || Err(Reply::new(554, "content refused").with_enhanced("5.7.1"));
        let server = start(move |s| {
            s.receive_mode = mode;
            s.raw_stream_type = kind;
            s.on_receive_raw = Some(Box::new(move |_, _| refuse()));
            s.on_receive_message = Some(Box::new(move |_, _| refuse()));
            s.on_receive_message_parsed = Some(Box::new(move |_, _| refuse()));
        });
        let mut c = server.client();
        let (code, text) = c.send_mail("a@example.org", &["b@example.com"], UNSTUFFED);
        assert_eq!(
            (code, text.as_str()),
            (554, "5.7.1 content refused"),
            "{mode:?} {kind:?}"
        );
        c.expect("RCPT TO:<b@example.com>", 503);
        c.expect("DATA", 503);
        c.expect("MAIL FROM:<a@example.org>", 250);
    }
}

// --- SMTP smuggling (RFC 5321 §4.1.1.4, §2.3.8; CVE-2023-51764/51765/51766) ---

/// Lax end-of-data forms a smuggler puts before a second, hidden transaction.
const SEQS: [&[u8]; 5] = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r"];
const SMUGGLED: &[u8] = b"MAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\nsmuggled\r\n";
const HEAD: &[u8] = b"Subject: s\r\n\r\nhello";

/// Sends every smuggling form in one session; `stored[i]` is what `SEQS[i]` must become in the
/// one delivered message, or `None` when the message must be refused with 550 5.6.11.
fn smuggle(policy: BareNewlinePolicy, kind: RawStreamType, stored: [Option<&[u8]>; 5]) {
    let server = start(|s| {
        s.bare_newline_policy = policy;
        s.raw_stream_type = kind;
    });
    let mut c = server.client();
    c.expect("EHLO client.example", 250);
    for (seq, stored) in SEQS.iter().zip(stored) {
        let before = server.messages().len();
        c.expect("MAIL FROM:<alice@example.org>", 250);
        c.expect("RCPT TO:<bob@example.com>", 250);
        c.expect("DATA", 354);
        c.send(&[HEAD, seq, SMUGGLED, b"\r\n.\r\n"].concat());
        let (code, text) = c.read_reply();
        // HELP is unassigned (502): another reply first would mean the hidden commands ran.
        c.expect("HELP", 502);
        let got = server.messages();
        match stored {
            Some(stored) => {
                assert_eq!(code, 250, "{seq:?}: {text}");
                assert_eq!(got.len(), before + 1, "{seq:?}: exactly one message");
                let last = got.last().unwrap();
                assert_eq!(
                    (last.from.as_str(), &last.rcpts[..]),
                    ("alice@example.org", &["bob@example.com".to_string()][..])
                );
                let expect = [HEAD, stored, SMUGGLED, b"\r\n"].concat();
                assert_eq!(text_of(&last.data), text_of(&expect), "{seq:?}");
            }
            None => {
                assert_eq!(code, 550, "{seq:?}: {text}");
                assert!(text.starts_with("5.6.11 "), "{seq:?}: {text}");
                assert_eq!(got.len(), before, "{seq:?}: nothing delivered");
            }
        }
    }
    // The session goes on normally after every form.
    let (code, _) = c.send_mail("alice@example.org", &["bob@example.com"], UNSTUFFED);
    assert_eq!(code, 250);
}

/// Normalize (Postfix's `normalize`): a bare LF is a line end stored as CRLF, and a "." that
/// starts the following line is unstuffed (RFC 5321 §4.5.2) but never ends the data; a bare CR
/// is data.
const NORMALIZED: [Option<&[u8]>; 5] = [
    Some(b"\r\n\r\n"),
    Some(b"\r\n\r\n"),
    Some(b"\r\n\r\n"),
    Some(b"\r.\r\n"),
    Some(b"\r\n\r"),
];

#[test]
fn smuggling_normalize_delivers_one_message() {
    smuggle(
        BareNewlinePolicy::Normalize,
        RawStreamType::Memory,
        NORMALIZED,
    );
}

#[test]
fn smuggling_normalize_direct_stream_delivers_one_message() {
    smuggle(
        BareNewlinePolicy::Normalize,
        RawStreamType::Direct,
        NORMALIZED,
    );
}

/// Pass (go-smtp): bare CR and LF are kept; only a "." right after a real CRLF is unstuffed.
#[test]
fn smuggling_pass_keeps_bytes_and_delivers_one_message() {
    smuggle(
        BareNewlinePolicy::Pass,
        RawStreamType::File,
        [
            Some(b"\n.\n"),
            Some(b"\n.\r\n"),
            Some(b"\r\n\n"),
            Some(b"\r.\r\n"),
            Some(b"\r\n\r"),
        ],
    );
}

/// Reject (Postfix's strict mode): every form holds a bare CR or LF, so 550 5.6.11 after the
/// real end of data, nothing delivered, the session goes on.
#[test]
fn smuggling_reject_refuses_and_session_continues() {
    smuggle(BareNewlinePolicy::Reject, RawStreamType::Memory, [None; 5]);
}
