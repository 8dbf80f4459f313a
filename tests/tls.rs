//! STARTTLS (RFC 3207), implicit TLS (RFC 8314) and certificate reload, over real sockets
//! with rcgen certificates made at test time, rustls clients (byte-exact) and lettre.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::tls_client::{cert, server_config, Cert, ClientExt, TlsClient};
use common::{start, Client, TestServer};
use indy_smtp::{Error, Reply, SmtpServer, TlsInfo};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use parking_lot::Mutex;

/// A test server with STARTTLS on `cert`.
fn tls_server(c: &Cert, configure: impl FnOnce(&mut SmtpServer)) -> TestServer {
    let config = server_config(c);
    start(move |s| {
        s.tls = Some(config);
        configure(s);
    })
}

fn lettre_tls(c: &Cert) -> TlsParameters {
    TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(c.pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn lettre_message(subject: &str) -> Message {
    Message::builder()
        .from("sender@example.com".parse().unwrap())
        .to("rcpt@example.com".parse().unwrap())
        .subject(subject)
        .body(String::from("Hello over TLS\r\n"))
        .unwrap()
}

/// True when the peer closed (EOF or reset) within the socket timeout; any bytes before
/// that are returned.
fn closed(stream: &mut TcpStream) -> (bool, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    for _ in 0..1000 {
        match stream.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (true, got),
            Err(_) => return (false, got),
        }
    }
    (false, got)
}

fn has_keyword(ehlo: &str, keyword: &str) -> bool {
    ehlo.lines().any(|l| l == keyword)
}

// RFC 3207 §4: STARTTLS is offered only when TLS can be started, and §4.2: not again once
// TLS is active. Without TLS configured the verb is not implemented (502).
#[test]
fn starttls_advertised_only_when_configured_and_not_active() {
    let plain = start(|_| {});
    let mut c = plain.client();
    assert!(!has_keyword(&c.expect("EHLO x", 250), "STARTTLS"));
    assert_eq!(c.cmd("STARTTLS").0, 502);

    let a = cert();
    let server = tls_server(&a, |_| {});
    let mut c = server.client();
    assert!(has_keyword(&c.expect("EHLO x", 250), "STARTTLS"));
    let mut t = TlsClient::starttls(c, &[&a]);
    let ehlo = t.expect("EHLO x", 250);
    assert!(
        !has_keyword(&ehlo, "STARTTLS"),
        "STARTTLS offered inside TLS: {ehlo}"
    );
    assert!(has_keyword(&ehlo, "PIPELINING"));
}

// RFC 3207 §4.2: after the handshake the server discards all knowledge from the client
// (EHLO, AUTH, the transaction); the client must send EHLO again.
#[test]
fn starttls_returns_to_the_fresh_state() {
    let a = cert();
    let server = tls_server(&a, |s| {
        s.auth_mode = true;
        s.allow_insecure_auth = true;
        s.check_user = Some(Box::new(|_, u, p| u == "alice" && p == "pw"));
    });
    let mut c = server.client();
    c.expect("EHLO x", 250);
    // AUTH PLAIN \0alice\0pw
    assert_eq!(c.cmd("AUTH PLAIN AGFsaWNlAHB3").0, 235);
    c.expect("MAIL FROM:<a@example.com>", 250);
    let mut t = TlsClient::starttls(c, &[&a]);
    // EHLO forgotten: MAIL right after the handshake is out of sequence.
    assert_eq!(t.cmd("MAIL FROM:<a@example.com>").0, 503);
    t.expect("EHLO x", 250);
    // AUTH forgotten: auth_mode refuses MAIL again, and AUTH is not "already done".
    let (code, text) = t.cmd("MAIL FROM:<a@example.com>");
    assert_eq!((code, text.starts_with("5.7.0")), (530, true), "{text}");
    let (code, text) = t.cmd("AUTH PLAIN AGFsaWNlAHB3");
    assert_eq!((code, text.starts_with("2.7.0")), (235, true), "{text}");
    t.expect("MAIL FROM:<a@example.com>", 250);
}

// RFC 3207 §4: "STARTTLS" takes no parameters (501); inside TLS a second STARTTLS is a bad
// sequence (503).
#[test]
fn starttls_parameters_and_repetition() {
    let a = cert();
    let server = tls_server(&a, |_| {});
    let mut c = server.client();
    c.expect("EHLO x", 250);
    let text = c.expect("STARTTLS now", 501);
    assert!(text.starts_with("5.5.4"), "{text}");
    let mut t = TlsClient::starttls(c, &[&a]);
    t.expect("EHLO x", 250);
    let text = t.expect("STARTTLS", 503);
    assert!(text.starts_with("5.5.1"), "{text}");
    // The TLS session is still usable.
    t.expect("NOOP", 250);
}

// RFC 3207 §4.1: a failed negotiation ends the connection; the server goes on serving.
#[test]
fn failed_handshake_closes_cleanly_and_server_keeps_serving() {
    let a = cert();
    let server = tls_server(&a, |_| {});
    let mut c = server.client();
    c.expect("EHLO x", 250);
    assert_eq!(
        c.read_line_after("STARTTLS"),
        "220 2.0.0 Ready to start TLS\r\n"
    );
    c.send(b"this is not a TLS ClientHello\r\nQUIT\r\n");
    let (is_closed, bytes) = closed(&mut c.writer);
    assert!(is_closed, "connection left open after a failed handshake");
    // A fatal TLS alert record (content type 21, level 2), never an SMTP reply in plaintext.
    assert!(
        bytes.len() >= 7 && bytes[0] == 0x15 && bytes[5] == 2,
        "unexpected bytes {bytes:?}"
    );

    let mut c = server.client();
    c.expect("EHLO y", 250);
    let mut t = TlsClient::starttls(c, &[&a]);
    t.expect("EHLO y", 250);
    t.expect("NOOP", 250);
    t.expect("QUIT", 221);
}

/// A client that never finishes its handshake is let go after `tls_handshake_timeout`, for
/// the whole handshake however it paces its bytes: silent on the implicit-TLS port, silent
/// after STARTTLS, and sending one byte of a ClientHello at a time. Found by an audit: the
/// socket had no read timeout during the handshake, so such clients held a thread (and a
/// `max_connections` place) for as long as they liked. Each check would fail on the client's
/// 10 s read timeout, with the server's limit at 1 s.
#[test]
fn an_unfinished_handshake_is_given_up_at_its_timeout() {
    let a = cert();
    let server = tls_server(&a, |s| {
        s.tls_bindings = vec!["127.0.0.1:0".parse().unwrap()];
        s.limits.tls_handshake_timeout = Duration::from_secs(1);
        s.limits.command_timeout = Duration::from_secs(60);
    });
    let implicit = server.handle.local_addrs()[1];
    let mut silent = TcpStream::connect(implicit).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(
        closed(&mut silent).0,
        "a silent implicit-TLS client was kept"
    );

    let mut c = server.client();
    c.expect("EHLO x", 250);
    assert_eq!(
        c.read_line_after("STARTTLS"),
        "220 2.0.0 Ready to start TLS\r\n"
    );
    assert!(
        closed(&mut c.writer).0,
        "a silent client after STARTTLS was kept"
    );

    // A ClientHello's first bytes, one every 200 ms: each read gets something, so only a
    // deadline for the whole handshake ends it. 40 bytes take 8 s.
    let mut trickle = TcpStream::connect(implicit).unwrap();
    trickle
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let cut_off = hello.iter().cycle().take(40).any(|byte| {
        std::thread::sleep(Duration::from_millis(200));
        let mut probe = [0u8; 64];
        // EOF, an alert or a reset: the server let go. Nothing yet: send the next byte.
        let let_go = match trickle.read(&mut probe) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        let_go || trickle.write_all(&[*byte]).is_err()
    });
    assert!(
        cut_off,
        "a client trickling its ClientHello was kept for 8 s"
    );
    assert!(common::wait_until(|| server.handle.active_sessions() == 0));
}

// RFC 8446 §6.1: each party sends close_notify before closing its write side, so the
// client can tell the end of the session from a truncation attack.
#[test]
fn quit_inside_tls_sends_close_notify() {
    let a = cert();
    let server = tls_server(&a, |s| {
        s.tls_bindings = vec!["127.0.0.1:0".parse().unwrap()]
    });
    let mut c = server.client();
    c.expect("EHLO x", 250);
    let starttls = TlsClient::starttls(c, &[&a]);
    let (implicit, _) = TlsClient::connect_implicit(server.handle.local_addrs()[1], &[&a]);
    for mut t in [starttls, implicit] {
        t.expect("QUIT", 221);
        let mut rest = Vec::new();
        // rustls reports EOF without close_notify as an UnexpectedEof error.
        let end = t.io.read_to_end(&mut rest);
        assert!(matches!(end, Ok(0)), "{end:?} {rest:?}");
    }
}

// RFC 3207 §4.2 and CVE-2011-0411: commands pipelined after STARTTLS in the same packet
// are discarded, neither answered in plaintext nor executed inside TLS.
#[test]
fn plaintext_injected_after_starttls_is_discarded() {
    let a = cert();
    let server = tls_server(&a, |_| {});
    let mut c = server.client();
    c.expect("EHLO x", 250);
    c.send(b"STARTTLS\r\nMAIL FROM:<a@b>\r\n");
    assert_eq!(c.read_line(), "220 2.0.0 Ready to start TLS\r\n");
    assert!(
        c.reader.buffer().is_empty(),
        "plaintext reply after the 220"
    );
    let mut t = TlsClient::handshake(c.writer, &[&a]).expect("handshake");
    // The first reply inside TLS is the EHLO's, not one for the injected MAIL.
    let (code, text) = t.cmd("EHLO x");
    assert_eq!(code, 250);
    assert!(text.starts_with("test.example"), "{text}");
    assert!(has_keyword(&text, "PIPELINING"), "{text}");
    // No transaction was opened by the injected MAIL (a nested MAIL would be 503).
    t.expect("MAIL FROM:<c@d>", 250);
    t.expect("RSET", 250);
    t.expect("QUIT", 221);
}

// RFC 3207 §4: with require_tls, MAIL and AUTH get 530 5.7.0 until TLS is up.
#[test]
fn require_tls_refuses_mail_and_auth_before_starttls() {
    let a = cert();
    let server = tls_server(&a, |s| {
        s.require_tls = true;
        s.check_user = Some(Box::new(|_, u, p| u == "alice" && p == "pw"));
    });
    let mut c = server.client();
    c.expect("EHLO x", 250);
    for line in ["MAIL FROM:<a@example.com>", "AUTH PLAIN AGFsaWNlAHB3"] {
        let (code, text) = c.cmd(line);
        assert_eq!(
            (code, text.as_str()),
            (530, "5.7.0 Must issue a STARTTLS command first")
        );
    }
    let mut t = TlsClient::starttls(c, &[&a]);
    t.expect("EHLO x", 250);
    t.expect("AUTH PLAIN AGFsaWNlAHB3", 235);
    t.expect("MAIL FROM:<a@example.com>", 250);
    t.expect("RCPT TO:<b@example.com>", 250);
}

// require_tls or an implicit-TLS binding without a TLS configuration is a start-up error.
#[test]
fn tls_settings_without_tls_config_refuse_to_start() {
    let mut s = SmtpServer::new();
    s.bindings = vec!["127.0.0.1:0".parse().unwrap()];
    s.on_receive_raw = Some(Box::new(|_, _| Ok(())));
    s.require_tls = true;
    assert!(matches!(s.start(), Err(Error::NoTlsConfig)));
    let mut s = SmtpServer::new();
    s.tls_bindings = vec!["127.0.0.1:0".parse().unwrap()];
    s.on_receive_raw = Some(Box::new(|_, _| Ok(())));
    assert!(matches!(s.start(), Err(Error::NoTlsConfig)));
}

/// What the receive event saw of the session.
#[derive(Clone, Debug, Default)]
struct Seen {
    tls: Option<TlsInfo>,
    username: String,
    data: Vec<u8>,
}

fn recording(s: &mut SmtpServer) -> Arc<Mutex<Vec<Seen>>> {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let sink = Arc::clone(&seen);
    s.on_receive_raw = Some(Box::new(move |thread, stream| {
        let mut data = Vec::new();
        stream
            .read_to_end(&mut data)
            .map_err(|e| Reply::new(451, e.to_string()))?;
        sink.lock().push(Seen {
            tls: thread.tls.clone(),
            username: thread.username.clone(),
            data,
        });
        Ok(())
    }));
    seen
}

// RFC 8314 §3.3: implicit TLS beside a plain listener; the session exposes the TLS details.
#[test]
fn implicit_tls_listener_with_lettre_wrapper() {
    let a = cert();
    let mut seen = None;
    let server = tls_server(&a, |s| {
        s.tls_bindings = vec!["127.0.0.1:0".parse().unwrap()];
        seen = Some(recording(s));
    });
    let seen = seen.unwrap();
    let addrs = server.handle.local_addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert_eq!(addrs[0], server.addr);
    // The plain listener still speaks plaintext.
    let c = Client::connect(addrs[0]);
    assert_eq!(c.greeting.0, 220);
    // Implicit TLS: the greeting comes inside TLS and STARTTLS is not offered.
    let (mut t, greeting) = TlsClient::connect_implicit(addrs[1], &[&a]);
    assert_eq!(greeting.0, 220);
    assert!(!has_keyword(&t.expect("EHLO x", 250), "STARTTLS"));
    t.expect("QUIT", 221);

    let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(addrs[1].port())
        .tls(Tls::Wrapper(lettre_tls(&a)))
        .timeout(Some(Duration::from_secs(10)))
        .build();
    mailer
        .send(&lettre_message("implicit"))
        .expect("lettre over implicit TLS");
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1);
    let info = seen[0]
        .tls
        .clone()
        .expect("thread.tls set in on_receive_raw");
    assert!(
        ["TLSv1.2", "TLSv1.3"].contains(&info.protocol_version.as_str()),
        "{info:?}"
    );
    assert!(info.cipher_suite.starts_with("TLS"), "{info:?}");
    assert_eq!(info.sni.as_deref(), Some("localhost"));
    assert!(String::from_utf8_lossy(&seen[0].data).contains("Subject: implicit"));
}

// RFC 3207 + RFC 4954: lettre upgrades with STARTTLS, then logs in with PLAIN or LOGIN (not
// offered before TLS since TLS is configured).
#[test]
fn lettre_starttls_with_plain_and_login() {
    let a = cert();
    let mut seen = None;
    let server = tls_server(&a, |s| {
        s.auth_mode = true;
        s.check_user = Some(Box::new(|_, u, p| u == "alice" && p == "tls-secret"));
        seen = Some(recording(s));
    });
    let seen = seen.unwrap();
    for mechanism in [Mechanism::Plain, Mechanism::Login] {
        let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
            .port(server.addr.port())
            .tls(Tls::Required(lettre_tls(&a)))
            .credentials(Credentials::new("alice".into(), "tls-secret".into()))
            .authentication(vec![mechanism])
            .timeout(Some(Duration::from_secs(10)))
            .build();
        mailer
            .send(&lettre_message(&format!("{mechanism:?}")))
            .expect("lettre STARTTLS + AUTH");
    }
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.username, "alice");
        assert_eq!(
            s.tls.as_ref().and_then(|t| t.sni.as_deref()),
            Some("localhost")
        );
    }
    // A wrong password is refused by the server, so lettre fails.
    let mailer = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(server.addr.port())
        .tls(Tls::Required(lettre_tls(&a)))
        .credentials(Credentials::new("alice".into(), "wrong".into()))
        .authentication(vec![Mechanism::Plain])
        .timeout(Some(Duration::from_secs(10)))
        .build();
    assert!(mailer.send(&lettre_message("bad")).is_err());
    assert_eq!(seen.len(), 2);
}

// ServerHandle::reload_tls: new handshakes get the new certificate, running sessions keep
// theirs.
#[test]
fn reload_tls_swaps_certificate_for_new_connections() {
    let (a, b) = (cert(), cert());
    assert_ne!(a.der, b.der);
    let server = tls_server(&a, |_| {});
    let mut c = server.client();
    c.expect("EHLO x", 250);
    let mut old = TlsClient::starttls(c, &[&a, &b]);
    assert_eq!(old.peer_cert(), a.der);
    old.expect("EHLO x", 250);

    server.handle.reload_tls(server_config(&b)).expect("reload");
    let mut c = server.client();
    c.expect("EHLO y", 250);
    let mut new = TlsClient::starttls(c, &[&a, &b]);
    assert_eq!(new.peer_cert(), b.der);
    new.expect("EHLO y", 250);
    // A client that trusts only A cannot connect any more.
    let mut c = server.client();
    c.expect("EHLO z", 250);
    assert_eq!(
        c.read_line_after("STARTTLS"),
        "220 2.0.0 Ready to start TLS\r\n"
    );
    assert!(TlsClient::handshake(c.writer, &[&a]).is_err());
    // The old session still works.
    old.expect("NOOP", 250);
    old.expect("QUIT", 221);
}

#[test]
fn reload_tls_without_tls_is_an_error() {
    let server = start(|_| {});
    let a = cert();
    assert!(matches!(
        server.handle.reload_tls(server_config(&a)),
        Err(Error::NoTlsConfig)
    ));
}

/// Implicit TLS behind a PROXY protocol proxy: the header and the ClientHello arrive in one
/// segment, and the server reads the header without taking any of the handshake with it.
#[test]
fn implicit_tls_behind_a_proxy_reads_no_further_than_the_header() {
    let c = cert();
    let config = server_config(&c);
    let peers = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&peers);
    let server = start(move |s| {
        s.tls = Some(config);
        s.tls_bindings = vec!["127.0.0.1:0".parse().unwrap()];
        s.proxy_protocol = Some(indy_smtp::proxy::ProxyProtocol::trusting(["127.0.0.1"
            .parse()
            .unwrap()]));
        s.on_command_mail = Some(Box::new(move |thread, _| {
            log.lock().push((thread.peer_addr, thread.is_tls()));
            indy_smtp::MailAction::Accept
        }));
    });
    let tls_addr = server.handle.local_addrs()[1];
    let tcp = Client::connect_silent(tls_addr).writer;
    let header = b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 465\r\n";
    let mut client = TlsClient::handshake_after(tcp, header, &[&c]).expect("handshake");
    assert_eq!(client.read_reply().0, 220);
    client.expect("EHLO client.example", 250);
    client.expect("MAIL FROM:<a@b.example>", 250);
    let want: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    assert_eq!(*peers.lock(), [(want, true)]);
}
