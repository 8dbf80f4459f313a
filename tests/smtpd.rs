//! `examples/smtpd`: the Maildir server users run. The example's own `parse_args` and
//! `build_server` are compiled in here, so these tests drive exactly the configuration the
//! binary runs; tests/smtpd_binary.rs runs the binary itself.
mod common;
#[path = "../examples/smtpd.rs"]
#[allow(dead_code)]
mod smtpd;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::lettre_client::{builder, lettre_mail};
use common::Client;
use indy_smtp::maildir::trace_header;
use indy_smtp::{ReceiveMode, ServerHandle};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};

/// A server built by smtpd's own code, on 127.0.0.1:0, with a Maildir in a temp dir.
struct Smtpd {
    handle: Option<ServerHandle>,
    addr: SocketAddr,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn start(args: &[&str]) -> Smtpd {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail/box");
    let mut argv = os(&["--listen", "127.0.0.1:0", "--maildir"]);
    argv.push(maildir.clone().into());
    argv.extend(os(args));
    let smtpd::Command::Run(options) = smtpd::parse_args(argv).unwrap() else {
        panic!("not a run command line")
    };
    let handle = smtpd::build_server(&options).unwrap().start().unwrap();
    let addr = handle.local_addr();
    Smtpd {
        handle: Some(handle),
        addr,
        maildir,
        _dir: dir,
    }
}

impl Smtpd {
    fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().unwrap()
    }

    fn files(&self, sub: &str) -> Vec<Vec<u8>> {
        let mut paths: Vec<_> = fs::read_dir(self.maildir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        paths.iter().map(|p| fs::read(p).unwrap()).collect()
    }

    /// A message file is open in tmp/: named there, or unnamed (O_TMPFILE) and open in this
    /// process, which runs the server.
    fn writing_in_tmp(&self) -> bool {
        if !self.files("tmp").is_empty() {
            return true;
        }
        let tmp = self.maildir.join("tmp");
        let Ok(fds) = fs::read_dir("/proc/self/fd") else {
            return false;
        };
        fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
            .any(|target| target.starts_with(&tmp))
    }

    /// Waits (bounded) until every session has ended.
    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.handle().active_sessions() > 0 {
            assert!(Instant::now() < deadline, "sessions did not end");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn assert_nothing_stored(&self) {
        assert_eq!(self.files("new").len(), 0, "something in new/");
        assert_eq!(self.files("tmp").len(), 0, "litter in tmp/");
    }

    fn mailer(&self) -> SmtpTransport {
        builder(self.addr.port()).build()
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop();
        }
    }
}

const MODES: [&str; 3] = ["raw", "message", "parsed"];

fn localhost() -> std::net::IpAddr {
    [127, 0, 0, 1].into()
}

// ---- Maildir layout (maildir(5): tmp/, new/, cur/) --------------------------------------

#[test]
fn maildir_directories_created_and_discard_stores_nothing() {
    let s = start(&[]);
    for sub in ["tmp", "new", "cur"] {
        assert!(s.maildir.join(sub).is_dir(), "{sub}/ missing");
    }
    // --discard: the message is accepted (250) and no Maildir is even created.
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("unused");
    let mut argv = os(&["--listen", "127.0.0.1:0", "--discard", "--maildir"]);
    argv.push(md.clone().into());
    let smtpd::Command::Run(o) = smtpd::parse_args(argv).unwrap() else {
        panic!()
    };
    let handle = smtpd::build_server(&o).unwrap().start().unwrap();
    let mut c = Client::connect(handle.local_addr());
    assert_eq!(
        c.send_mail("a@x", &["b@y"], b"Subject: x\r\n\r\nhi\r\n").0,
        250
    );
    handle.stop();
    assert!(!md.exists());
}

// ---- Byte-exact storage in every receive mode (RFC 5321 §4.5.2 transparency; issue 2 #7) --

#[test]
fn lettre_message_stored_with_trace_headers_in_each_mode() {
    for mode in MODES {
        let s = start(&["--receive-mode", mode]);
        let mail = lettre_mail("hello", "Hi Bob,\r\n.a line with a dot\r\nbye\r\n");
        s.mailer().send(&mail).unwrap();
        let files = s.files("new");
        assert_eq!(files.len(), 1, "{mode}");
        let mut expected = trace_header(
            localhost(),
            "ann@a.example",
            &["bob@b.example", "cy@c.example"],
        );
        expected.extend_from_slice(&mail.formatted());
        // lettre ends the data with CRLF "." CRLF after the formatted message.
        expected.extend_from_slice(b"\r\n");
        assert_eq!(
            String::from_utf8_lossy(&files[0]),
            String::from_utf8_lossy(&expected),
            "{mode}"
        );
        assert_eq!(s.files("tmp").len(), 0);
    }
}

#[test]
fn raw_bytes_stored_exactly_in_each_mode() {
    let body: &[u8] =
        b"From: a@x.example\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n\
        \xc3\xa9t\xc3\xa9 8-bit \t \r\n\r\n  \r\nlast line\r\n";
    let big: Vec<u8> = b"Subject: big\r\n\r\n"
        .iter()
        .copied()
        .chain((0..40_000).flat_map(|i| format!(".line {i}\r\n").into_bytes()))
        .collect();
    for mode in MODES {
        let s = start(&["--receive-mode", mode]);
        let mut c = Client::connect(s.addr);
        assert_eq!(
            c.send_mail("a@x.example", &["b@y.example", "c@z.example"], body)
                .0,
            250
        );
        // Second transaction in the session: null sender, one recipient, a 400 KB body.
        c.expect("MAIL FROM:<>", 250);
        c.expect("RCPT TO:<d@y.example>", 250);
        c.expect("DATA", 354);
        c.send(&indy_smtp::data::dot_stuff(&big));
        assert_eq!(c.read_reply().0, 250);
        let files = s.files("new");
        assert_eq!(files.len(), 2, "{mode}");
        let mut first = trace_header(localhost(), "a@x.example", &["b@y.example", "c@z.example"]);
        first.extend_from_slice(body);
        let mut second = b"X-Peer: 127.0.0.1\r\nX-MailFrom: \r\nX-RcptTo: d@y.example\r\n".to_vec();
        second.extend_from_slice(&big);
        assert!(files.contains(&first), "{mode}: first message differs");
        assert!(files.contains(&second), "{mode}: second message differs");
    }
}

/// RFC 3030 CHUNKING: a message sent in BDAT chunks is stored byte-exact in each mode, a
/// chunk's `CRLF.CRLF` being plain data. (That raw mode's `Direct` collects the chunks in a
/// temporary file, not in memory, is checked in tests/chunking.rs.)
#[test]
fn bdat_message_stored_exactly_in_each_mode() {
    let chunks: [&[u8]; 3] = [
        b"From: a@x.example\r\nSubject: chunks\r\n\r\n",
        b"first\r\n.\r\n",
        b"..second\r\n",
    ];
    for mode in MODES {
        let s = start(&["--receive-mode", mode]);
        let mut c = Client::connect(s.addr);
        c.expect("EHLO client.example", 250);
        c.expect("MAIL FROM:<a@x.example>", 250);
        c.expect("RCPT TO:<b@y.example>", 250);
        for (i, chunk) in chunks.iter().enumerate() {
            let last = if i == chunks.len() - 1 { " LAST" } else { "" };
            c.send(format!("BDAT {}{last}\r\n", chunk.len()).as_bytes());
            c.send(chunk);
            assert_eq!(c.read_reply().0, 250, "{mode}: chunk {i}");
        }
        let mut want = trace_header(localhost(), "a@x.example", &["b@y.example"]);
        want.extend(chunks.concat());
        assert_eq!(s.files("new"), [want], "{mode}");
        assert!(s.files("tmp").is_empty(), "{mode}");
    }
}

// ---- Header injection (RFC 5322 §2.2: no CR/LF in a field body) --------------------------

#[test]
fn envelope_cannot_inject_header_lines() {
    let s = start(&[]);
    let mut c = Client::connect(s.addr);
    c.expect("EHLO x", 250);
    // The CRLF ends the command: "MAIL FROM:<a" is a syntax error, "X-Evil:..." an unknown verb.
    c.send(b"MAIL FROM:<a\r\nX-Evil: 1@b>\r\n");
    assert_eq!(c.read_reply().0, 501);
    assert_eq!(c.read_reply().0, 500);
    c.expect("RCPT TO:<b@y>", 503);
    // SMTPUTF8 addresses (RFC 6531) could carry a C1 control (U+0085 NEL) or a Unicode line
    // separator (U+2028/U+2029): the parser refuses the control; whatever it accepts reaches
    // the file without them.
    assert_eq!(c.cmd("MAIL FROM:<a\u{85}b@x.example> SMTPUTF8").0 / 100, 5);
    s.assert_nothing_stored();
    let (code, _) = c.cmd("MAIL FROM:<a\u{2028}b@x.example> SMTPUTF8");
    if code == 250 {
        c.expect("RCPT TO:<b\u{2029}c@y.example>", 250);
        c.expect("DATA", 354);
        c.send(b"Subject: t\r\n\r\nx\r\n.\r\n");
        assert_eq!(c.read_reply().0, 250);
        let file = String::from_utf8(s.files("new").remove(0)).unwrap();
        let want = "X-Peer: 127.0.0.1\r\nX-MailFrom: ab@x.example\r\nX-RcptTo: bc@y.example\r\n";
        assert!(file.starts_with(want), "{file:?}");
    } else {
        assert_eq!(code / 100, 5, "MAIL with U+2028 answered {code}");
    }
}

/// A message whose first line starts with white space would continue `X-RcptTo:` in the
/// file (RFC 5322 §2.2.3 folding) and add the client's text to the recipients: it is refused
/// with 554 5.6.0 in every mode and nothing is stored; the session goes on.
#[test]
fn data_cannot_continue_the_trace_header() {
    for mode in MODES {
        let s = start(&["--receive-mode", mode]);
        let mut c = Client::connect(s.addr);
        for first in [
            &b" , injected@evil.example\r\n"[..],
            b"\tX-Peer: 10.9.9.9\r\n",
        ] {
            let body = [first, b"Subject: t\r\n\r\nbody\r\n"].concat();
            let (code, text) = c.send_mail("a@x.example", &["b@y.example"], &body);
            assert_eq!((code, &text[..5]), (554, "5.6.0"), "{mode}: {text}");
            s.assert_nothing_stored();
            c.expect("RSET", 250);
        }
        let (code, _) = c.send_mail("a@x.example", &["b@y.example"], b"Subject: ok\r\n\r\nx\r\n");
        assert_eq!(code, 250, "{mode}");
        assert_eq!(s.files("new").len(), 1, "{mode}");
    }
}

// ---- Concurrency: unique Maildir names across threads (maildir(5) naming) -----------------

#[test]
fn concurrent_senders_lose_nothing() {
    let s = start(&[]);
    let port = s.addr.port();
    let senders: Vec<_> = (0..8)
        .map(|t| {
            thread::spawn(move || {
                let mailer = builder(port).build();
                for i in 0..20 {
                    mailer
                        .send(&lettre_mail(
                            &format!("m {t}-{i}"),
                            &format!("id={t}-{i}\r\n"),
                        ))
                        .unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    let ids: BTreeSet<String> = s
        .files("new")
        .iter()
        .map(|f| {
            let text = String::from_utf8_lossy(f);
            let at = text.find("id=").expect("id in body");
            text[at..].lines().next().unwrap().to_string()
        })
        .collect();
    assert_eq!(s.files("new").len(), 160);
    assert_eq!(ids.len(), 160, "duplicate or lost messages");
    assert_eq!(s.files("tmp").len(), 0);
}

// ---- Refused and broken transactions leave nothing (RFC 1870 §6; RFC 5321 §4.1.1.4) -------

#[test]
fn oversize_message_refused_and_not_stored() {
    for mode in MODES {
        let s = start(&["--receive-mode", mode, "--max-message-size", "1000"]);
        let mut c = Client::connect(s.addr);
        let body = [b"Subject: big\r\n\r\n".as_slice(), &[b'x'; 70].repeat(1000)].concat();
        let (code, text) = c.send_mail("a@x", &["b@y"], &body);
        assert_eq!(code, 552, "{mode}: {text}");
        assert!(text.starts_with("5.3.4"), "{text}");
        s.assert_nothing_stored();
        // The session goes on and a message within the limit is stored.
        c.expect("MAIL FROM:<a@x>", 250);
        c.expect("RCPT TO:<b@y>", 250);
        c.expect("DATA", 354);
        c.send(b"Subject: small\r\n\r\nok\r\n.\r\n");
        assert_eq!(c.read_reply().0, 250);
        assert_eq!(s.files("new").len(), 1, "{mode}");
        assert_eq!(s.files("tmp").len(), 0, "{mode}");
    }
}

#[test]
fn disconnect_mid_data_leaves_nothing() {
    for mode in MODES {
        let s = start(&["--receive-mode", mode]);
        let mut c = Client::connect(s.addr);
        c.expect("EHLO x", 250);
        c.expect("MAIL FROM:<a@x>", 250);
        c.expect("RCPT TO:<b@y>", 250);
        c.expect("DATA", 354);
        c.send(b"Subject: cut\r\n\r\n");
        c.send(
            &b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n".repeat(2000),
        );
        if mode == "raw" {
            // Direct mode writes while the data arrives: wait for the partial file in tmp/
            // (on Linux an unnamed O_TMPFILE, seen only among this process's descriptors).
            let deadline = Instant::now() + Duration::from_secs(10);
            while !s.writing_in_tmp() {
                assert!(Instant::now() < deadline, "no file in tmp/ while receiving");
                thread::sleep(Duration::from_millis(5));
            }
        }
        drop(c);
        s.wait_idle();
        s.assert_nothing_stored();
    }
}

// ---- AUTH, limits and timeouts flags (RFC 4954, RFC 5321 §4.5.3) ---------------------------

#[test]
fn auth_recipient_limit_and_timeout_flags() {
    let s = start(&[
        "--auth",
        "joe:se:cret",
        "--require-auth",
        "--max-recipients",
        "2",
    ]);
    let mut c = Client::connect(s.addr);
    c.expect("EHLO x", 250);
    c.expect("MAIL FROM:<a@x>", 530);
    c.expect("AUTH PLAIN AGpvZQBzZTpjcmV0", 235); // \0joe\0se:cret
    c.expect("MAIL FROM:<a@x>", 250);
    c.expect("RCPT TO:<b@y>", 250);
    c.expect("RCPT TO:<c@y>", 250);
    assert_eq!(c.cmd("RCPT TO:<d@y>").0, 452);
    // --timeout 1: an idle client is told 421 and closed (RFC 5321 §4.5.3.2.7).
    let t = start(&["--timeout", "1"]);
    let mut idle = Client::connect(t.addr);
    idle.expect("EHLO x", 250);
    assert_eq!(idle.read_reply().0, 421);
    assert!(idle.is_closed());
    let mailer = builder(s.addr.port())
        .credentials(Credentials::new("joe".into(), "se:cret".into()))
        .build();
    mailer.send(&lettre_mail("auth", "x\r\n")).unwrap();
    let bad = builder(s.addr.port())
        .credentials(Credentials::new("joe".into(), "wrong".into()))
        .build();
    assert!(bad.send(&lettre_mail("auth", "x\r\n")).is_err());
    assert_eq!(s.files("new").len(), 1);
}

// ---- TLS flags: STARTTLS (RFC 3207) and implicit TLS (RFC 8314) ---------------------------

#[test]
fn tls_flags_starttls_and_implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    fs::write(&cert, ck.cert.pem()).unwrap();
    fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let s = start(&[
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--tls-listen",
        "127.0.0.1:0",
        "--auth",
        "u:p",
    ]);
    let mut c = Client::connect(s.addr);
    let ehlo = c.expect("EHLO x", 250);
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    // RFC 4954 §4: no plaintext mechanism before TLS.
    assert!(!ehlo.contains("PLAIN"), "{ehlo}");
    let params = TlsParameters::builder("localhost".into())
        .dangerous_accept_invalid_certs(true)
        .build()
        .unwrap();
    let creds = Credentials::new("u".into(), "p".into());
    let starttls = builder(s.addr.port())
        .tls(Tls::Required(params.clone()))
        .credentials(creds.clone())
        .build();
    starttls.send(&lettre_mail("starttls", "a\r\n")).unwrap();
    let implicit = builder(s.handle().local_addrs()[1].port())
        .tls(Tls::Wrapper(params))
        .credentials(creds)
        .build();
    implicit.send(&lettre_mail("implicit", "b\r\n")).unwrap();
    assert_eq!(s.files("new").len(), 2);
}

// ---- The command line (fixed: other tools depend on it) -----------------------------------

#[test]
fn command_line_parsing() {
    let run = |args: &[&str]| match smtpd::parse_args(os(args)) {
        Ok(smtpd::Command::Run(o)) => o,
        other => panic!("{args:?}: {other:?}"),
    };
    let d = run(&[]);
    assert_eq!(d.listen, ["127.0.0.1:2525".parse::<SocketAddr>().unwrap()]);
    assert_eq!(d.maildir, Path::new("./maildir"));
    assert_eq!(d.receive_mode, ReceiveMode::Raw);
    assert!(!d.discard && !d.fsync && !d.require_auth && d.auth.is_empty());
    let o = run(&words(
        "--listen 127.0.0.1:1 --listen=[::1]:2 --maildir /m --hostname mx.example --auth a:b:c \
         --auth=d: --require-auth --max-connections 5 --receive-mode parsed \
         --max-message-size 0 --max-recipients 7 --timeout 9 --discard --fsync",
    ));
    assert_eq!(o.listen.len(), 2);
    assert_eq!(
        o.auth,
        [("a".into(), "b:c".into()), ("d".into(), String::new())]
    );
    assert_eq!(o.hostname.as_deref(), Some("mx.example"));
    assert_eq!(
        (o.max_connections, o.max_message_size, o.max_recipients),
        (Some(5), Some(0), Some(7))
    );
    assert_eq!(o.timeout, Some(Duration::from_secs(9)));
    assert!(o.discard && o.fsync && o.require_auth && o.receive_mode == ReceiveMode::MessageParsed);
    assert_eq!(
        smtpd::parse_args(os(&["--listen", "127.0.0.1:1", "--help"])).unwrap(),
        smtpd::Command::Help
    );
    for bad in [
        "--bogus",
        "--listen",
        "--listen nonsense",
        "--maildir a --maildir b",
        "--receive-mode mime",
        "--max-connections -1",
        "--max-message-size 10k",
        "--timeout 0",
        "--auth nopass",
        "--auth :p",
        "--require-auth",
        "--tls-cert c.pem",
        "--tls-listen 127.0.0.1:465",
        "--fsync=yes",
        "--hostname=a\x01b",
        "extra",
    ] {
        match smtpd::parse_args(os(&words(bad))) {
            Err(f) => assert_eq!(f.status, 2, "{bad:?}"),
            Ok(c) => panic!("{bad:?} accepted: {c:?}"),
        }
    }
    let tls = run(&[
        "--tls-cert",
        "/nonexistent/c.pem",
        "--tls-key",
        "/nonexistent/k.pem",
    ]);
    assert_eq!(smtpd::build_server(&tls).err().map(|f| f.status), Some(2));
}
