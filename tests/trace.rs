//! RFC 5321 §4.4 trace fields over a real connection: a Maildir asked for them starts each
//! stored message with `Return-Path:` and `Received:`, which mailparse reads back as header
//! fields, before the `X-` lines and the exact data.
mod common;

use std::fs;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::lettre_client::{builder, lettre_mail};
use common::Client;
use indy_smtp::maildir::{maildir_handler, Maildir};
use indy_smtp::{RawStreamType, ServerHandle, SmtpServer};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::Transport;

struct Store {
    handle: ServerHandle,
    new_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A server storing into a Maildir that adds the trace fields as `mx.test`; alice:secret
/// may log in (PLAIN over cleartext: this server has no TLS).
fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let maildir = Maildir::create(dir.path().join("md"))
        .unwrap()
        .with_received_header("mx.test");
    let new_dir = maildir.new_dir().to_path_buf();
    let mut server = SmtpServer::new();
    server.bindings = vec!["127.0.0.1:0".parse().unwrap()];
    server.raw_stream_type = RawStreamType::Direct;
    server.on_receive_raw = Some(maildir_handler(Arc::new(maildir), false));
    server.check_user = Some(Box::new(|_, user, password| {
        user == "alice" && password == "secret"
    }));
    let handle = server.start().unwrap();
    Store {
        handle,
        new_dir,
        _dir: dir,
    }
}

impl Store {
    fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    fn only_file(&self) -> Vec<u8> {
        let files: Vec<_> = fs::read_dir(&self.new_dir).unwrap().collect();
        assert_eq!(files.len(), 1, "one stored message");
        fs::read(files[0].as_ref().unwrap().path()).unwrap()
    }
}

fn now() -> i64 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    secs.as_secs() as i64
}

/// The stored file's header fields, as mailparse reads them.
fn fields(file: &[u8]) -> Vec<(String, String)> {
    let (headers, _) = mailparse::parse_headers(file).unwrap();
    headers
        .iter()
        .map(|h| (h.get_key(), h.get_value()))
        .collect()
}

#[test]
fn stored_message_starts_with_return_path_and_received() {
    let store = store();
    let mut client = Client::connect(store.addr());
    let body = b"Subject: hi\r\n\r\nbody\r\n";
    let before = now();
    let (code, text) = client.send_mail("ann@a.example", &["bob@b.example"], body);
    assert_eq!(code, 250, "{text}");
    let file = store.only_file();
    let text = String::from_utf8(file.clone()).unwrap();
    let (received, rest) = text
        .strip_prefix("Return-Path: <ann@a.example>\r\n")
        .and_then(|t| t.split_once("; "))
        .expect("Return-Path first, then Received");
    assert_eq!(
        received,
        "Received: from client.example ([127.0.0.1])\r\n\tby mx.test with ESMTP\r\n\
         \tfor <bob@b.example>"
    );
    let (date, rest) = rest.split_once("\r\n").unwrap();
    let stamp = mailparse::dateparse(date).unwrap();
    assert!(stamp >= before - 1 && stamp <= now() + 1, "{date} is now");
    assert!(rest.starts_with("X-Peer: 127.0.0.1\r\nX-MailFrom: ann@a.example\r\n"));
    assert!(file.ends_with(body), "the data follows unchanged");
    let keys: Vec<String> = fields(&file).into_iter().map(|(k, _)| k).collect();
    let want = [
        "Return-Path",
        "Received",
        "X-Peer",
        "X-MailFrom",
        "X-RcptTo",
        "Subject",
    ];
    assert_eq!(keys, want);
}

#[test]
fn lettre_with_auth_is_esmtpa_and_several_recipients_are_not_named() {
    let store = store();
    let mailer = builder(store.addr().port())
        .credentials(Credentials::new("alice".into(), "secret".into()))
        .authentication(vec![Mechanism::Plain])
        .build();
    mailer.send(&lettre_mail("trace", "Hello\r\n")).unwrap();
    let file = store.only_file();
    let received = fields(&file)
        .into_iter()
        .find(|(k, _)| k == "Received")
        .map(|(_, v)| v)
        .expect("a Received field");
    assert!(
        received.contains(" ([127.0.0.1]) by mx.test with ESMTPA; "),
        "{received}"
    );
    assert!(!received.contains(" for "), "two recipients: {received}");
}

#[test]
fn a_hostile_helo_name_stays_inside_its_comment() {
    let store = store();
    let mut client = Client::connect(store.addr());
    client.expect("HELO evil) by forged.example (x\\", 250);
    client.expect("MAIL FROM:<>", 250);
    client.expect("RCPT TO:<bob@b.example>", 250);
    client.expect("DATA", 354);
    client.send(b"Subject: x\r\n\r\n.\r\n");
    assert_eq!(client.read_reply().0, 250);
    let file = String::from_utf8(store.only_file()).unwrap();
    let first_lines: Vec<&str> = file.split("\r\n").take(3).collect();
    assert_eq!(
        first_lines,
        [
            "Return-Path: <>",
            "Received: from [127.0.0.1] ([127.0.0.1]) (HELO evil\\) by forged.example \\(x\\\\)",
            "\tby mx.test with SMTP",
        ]
    );
}
