//! SMTP AUTH (RFC 4954) with PLAIN (RFC 4616), LOGIN and CRAM-MD5 (RFC 2195), over raw
//! sockets: every reply code of the exchange, the cleartext policy and the failure limit.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::tls_client::{cert, server_config};
use common::{start, Client, TestServer};
use hmac::{Hmac, Mac};
use indy_smtp::{Reply, SmtpServer};
use md5::Md5;
use parking_lot::Mutex;

const USER: &str = "alice";
const PASSWORD: &str = "Pw-never-logged-7781";

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn plain(authzid: &str, user: &str, password: &str) -> String {
    b64(format!("{authzid}\0{user}\0{password}").as_bytes())
}

/// A server whose `check_user` and `credentials` know alice.
fn auth_server(configure: impl FnOnce(&mut SmtpServer)) -> TestServer {
    start(|s| {
        s.check_user = Some(Box::new(|_, u, p| u == USER && p == PASSWORD));
        s.credentials = Some(Box::new(|_, u| (u == USER).then(|| PASSWORD.to_string())));
        configure(s);
    })
}

fn ehlo_client(server: &TestServer) -> (Client, String) {
    let mut c = server.client();
    let ehlo = c.expect("EHLO client.example", 250);
    (c, ehlo)
}

fn auth_line(ehlo: &str) -> Option<&str> {
    ehlo.lines().find(|l| l.starts_with("AUTH"))
}

/// Asserts the code and the enhanced status code at the start of the text.
fn check(reply: (u16, String), code: u16, enhanced: &str) {
    assert_eq!(reply.0, code, "{reply:?}");
    assert!(
        reply.1.starts_with(enhanced),
        "expected {code} {enhanced}, got {reply:?}"
    );
}

/// Decodes a 334 challenge text.
fn challenge(reply: (u16, String)) -> Vec<u8> {
    assert_eq!(reply.0, 334, "{reply:?}");
    STANDARD
        .decode(reply.1.as_bytes())
        .expect("334 text is base64")
}

fn cram_response(user: &str, secret: &str, challenge: &[u8]) -> String {
    let mut mac = Hmac::<Md5>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(challenge);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    b64(format!("{user} {hex}").as_bytes())
}

// RFC 4954 §3: EHLO lists exactly the mechanisms that can be checked: CRAM-MD5 needs the
// secret (`credentials`), PLAIN/LOGIN need `check_user` or `credentials`; none → no AUTH.
#[test]
fn ehlo_advertises_only_checkable_mechanisms() {
    let both = auth_server(|_| {});
    assert_eq!(
        auth_line(&ehlo_client(&both).1),
        Some("AUTH CRAM-MD5 PLAIN LOGIN")
    );
    let check_only = start(|s| s.check_user = Some(Box::new(|_, _, _| true)));
    assert_eq!(
        auth_line(&ehlo_client(&check_only).1),
        Some("AUTH PLAIN LOGIN")
    );
    let none = start(|_| {});
    let (mut c, ehlo) = ehlo_client(&none);
    assert_eq!(auth_line(&ehlo), None);
    // Indy 9 logged anyone in here; now nothing can check a login, so AUTH is not offered.
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", "x", "y"))),
        502,
        "5.5.1",
    );
}

// RFC 4616 §2 / RFC 4954 §4: PLAIN with an initial response; success 235 2.7.0, failure
// 535 5.7.8; the mechanism name is case-insensitive.
#[test]
fn plain_with_initial_response() {
    let server = auth_server(|_| {});
    let (mut c, _) = ehlo_client(&server);
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", USER, "wrong"))),
        535,
        "5.7.8",
    );
    let (code, text) = c.cmd(&format!("auth plain {}", plain("", USER, PASSWORD)));
    assert_eq!(
        (code, text.as_str()),
        (235, "2.7.0 Authentication successful")
    );
}

// RFC 4954 §4: without an initial response the server sends "334 " with an empty challenge.
#[test]
fn plain_via_empty_334_challenge() {
    let server = auth_server(|_| {});
    let (mut c, _) = ehlo_client(&server);
    c.send(b"AUTH PLAIN\r\n");
    assert_eq!(c.read_line(), "334 \r\n");
    // RFC 4954 §6: a response longer than the line limit is 500 5.5.6, and AUTH may be
    // tried again.
    check(c.cmd(&"QUFB".repeat(1500)), 500, "5.5.6");
    c.send(b"AUTH PLAIN\r\n");
    assert_eq!(c.read_line(), "334 \r\n");
    check(c.cmd(&plain("", USER, PASSWORD)), 235, "2.7.0");
}

// Without check_user, PLAIN and LOGIN are checked against the secret from `credentials`.
#[test]
fn plain_checked_against_credentials_without_check_user() {
    let server = start(|s| {
        s.credentials = Some(Box::new(|_, u| (u == USER).then(|| PASSWORD.to_string())));
    });
    let (mut c, _) = ehlo_client(&server);
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", "mallory", PASSWORD))),
        535,
        "5.7.8",
    );
    check(
        c.cmd(&format!(
            "AUTH PLAIN {}",
            plain("", USER, "Pw-never-logged-778")
        )),
        535,
        "5.7.8",
    );
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", USER, PASSWORD))),
        235,
        "2.7.0",
    );
}

// RFC 4616 §2: an authzid equal to the authcid is the same identity; acting as someone
// else is refused (no policy allows it).
#[test]
fn plain_authzid() {
    let server = auth_server(|_| {});
    let (mut c, _) = ehlo_client(&server);
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("bob", USER, PASSWORD))),
        535,
        "5.7.8",
    );
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain(USER, USER, PASSWORD))),
        235,
        "2.7.0",
    );
}

// draft-murchison-sasl-login: "Username:" and "Password:" prompts; an initial response is
// the user name.
#[test]
fn login_with_and_without_initial_response() {
    let server = auth_server(|_| {});
    let (mut c, _) = ehlo_client(&server);
    assert_eq!(challenge(c.cmd("AUTH LOGIN")), b"Username:");
    assert_eq!(challenge(c.cmd(&b64(USER.as_bytes()))), b"Password:");
    check(c.cmd(&b64(PASSWORD.as_bytes())), 235, "2.7.0");

    let (mut c, _) = ehlo_client(&server);
    assert_eq!(
        challenge(c.cmd(&format!("AUTH LOGIN {}", b64(USER.as_bytes())))),
        b"Password:"
    );
    check(c.cmd(&b64(b"wrong")), 535, "5.7.8");
    assert_eq!(
        challenge(c.cmd(&format!("AUTH LOGIN {}", b64(USER.as_bytes())))),
        b"Password:"
    );
    check(c.cmd(&b64(PASSWORD.as_bytes())), 235, "2.7.0");
}

// RFC 2195 §2: the challenge is a msg-id, the response "user HMAC-MD5(secret, challenge)"
// in hex; the secret comes from `credentials`.
#[test]
fn cram_md5_with_credentials() {
    let server = auth_server(|_| {});
    let (mut c, _) = ehlo_client(&server);
    let nonce = challenge(c.cmd("AUTH CRAM-MD5"));
    assert!(
        nonce.starts_with(b"<") && nonce.ends_with(b"@test.example>"),
        "{nonce:?}"
    );
    check(
        c.cmd(&cram_response(USER, "not-the-secret", &nonce)),
        535,
        "5.7.8",
    );
    let nonce2 = challenge(c.cmd("AUTH CRAM-MD5"));
    assert_ne!(nonce, nonce2, "RFC 2195: a fresh challenge each time");
    // The response to the old challenge is not accepted (no replay).
    check(c.cmd(&cram_response(USER, PASSWORD, &nonce)), 535, "5.7.8");
    let nonce3 = challenge(c.cmd("AUTH CRAM-MD5"));
    check(c.cmd(&cram_response(USER, PASSWORD, &nonce3)), 235, "2.7.0");
}

// RFC 4954 §4: "*" cancels (501 5.7.0), bad base64 is 501 5.5.2, an unknown mechanism
// 504 5.5.4.
#[test]
fn cancel_bad_base64_and_unknown_mechanism() {
    let server = auth_server(|_| {});
    let (mut c, _) = ehlo_client(&server);
    challenge(c.cmd("AUTH PLAIN"));
    check(c.cmd("*"), 501, "5.7.0");
    challenge(c.cmd("AUTH LOGIN"));
    challenge(c.cmd(&b64(USER.as_bytes())));
    check(c.cmd("*"), 501, "5.7.0");
    check(c.cmd("AUTH PLAIN *"), 501, "5.7.0");
    check(c.cmd("AUTH PLAIN !!not-base64!!"), 501, "5.5.2");
    challenge(c.cmd("AUTH PLAIN"));
    check(c.cmd("AGFsaWNl@@@"), 501, "5.5.2");
    check(c.cmd("AUTH GSSAPI"), 504, "5.5.4");
    check(c.cmd("AUTH X-UNKNOWN dGVzdA=="), 504, "5.5.4");
    // None of these logged in or counted as failed logins.
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", USER, PASSWORD))),
        235,
        "2.7.0",
    );
}

// RFC 4954 §4: AUTH only after EHLO, once per session, and not inside a transaction
// (503 5.5.1).
#[test]
fn auth_sequence_errors() {
    let server = auth_server(|_| {});
    let good = format!("AUTH PLAIN {}", plain("", USER, PASSWORD));
    let mut c = server.client();
    assert_eq!(c.cmd(&good).0, 503);
    c.expect("HELO client.example", 250);
    assert_eq!(c.cmd(&good).0, 503, "AUTH is an EHLO extension");

    let (mut c, _) = ehlo_client(&server);
    c.expect("MAIL FROM:<a@example.com>", 250);
    check(c.cmd(&good), 503, "5.5.1");
    c.expect("RSET", 250);
    check(c.cmd(&good), 235, "2.7.0");
    check(c.cmd(&good), 503, "5.5.1");
}

// RFC 4954 §4 and §14: with TLS configured, PLAIN and LOGIN are neither offered nor
// accepted in cleartext (538 5.7.11) unless allow_insecure_auth; CRAM-MD5 stays.
#[test]
fn plaintext_mechanisms_need_tls_when_tls_is_configured() {
    let config = server_config(&cert());
    let strict = auth_server(|s| s.tls = Some(Arc::clone(&config)));
    let (mut c, ehlo) = ehlo_client(&strict);
    assert_eq!(auth_line(&ehlo), Some("AUTH CRAM-MD5"));
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", USER, PASSWORD))),
        538,
        "5.7.11",
    );
    check(c.cmd("AUTH LOGIN"), 538, "5.7.11");
    let nonce = challenge(c.cmd("AUTH CRAM-MD5"));
    check(c.cmd(&cram_response(USER, PASSWORD, &nonce)), 235, "2.7.0");

    let lax = auth_server(|s| {
        s.tls = Some(Arc::clone(&config));
        s.allow_insecure_auth = true;
    });
    let (mut c, ehlo) = ehlo_client(&lax);
    assert_eq!(auth_line(&ehlo), Some("AUTH CRAM-MD5 PLAIN LOGIN"));
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", USER, PASSWORD))),
        235,
        "2.7.0",
    );
}

// Without TLS configured there is no better channel: PLAIN and LOGIN work in cleartext.
#[test]
fn plaintext_mechanisms_offered_without_tls() {
    let server = start(|s| s.check_user = Some(Box::new(|_, u, p| u == USER && p == PASSWORD)));
    let (mut c, ehlo) = ehlo_client(&server);
    assert_eq!(auth_line(&ehlo), Some("AUTH PLAIN LOGIN"));
    challenge(c.cmd(&format!("AUTH LOGIN {}", b64(USER.as_bytes()))));
    check(c.cmd(&b64(PASSWORD.as_bytes())), 235, "2.7.0");
}

// Failed logins are counted per session: after max_auth_failures the server answers 421
// and closes (brute-force guard).
#[test]
fn too_many_failures_close_the_session() {
    let server = auth_server(|s| s.limits.max_auth_failures = 3);
    let (mut c, _) = ehlo_client(&server);
    for _ in 0..2 {
        check(
            c.cmd(&format!("AUTH PLAIN {}", plain("", USER, "bad"))),
            535,
            "5.7.8",
        );
    }
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", USER, "bad"))),
        535,
        "5.7.8",
    );
    assert_eq!(c.read_reply().0, 421);
    assert!(c.is_closed());
    // Another session starts from zero.
    let (mut c, _) = ehlo_client(&server);
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", USER, "bad"))),
        535,
        "5.7.8",
    );
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", USER, PASSWORD))),
        235,
        "2.7.0",
    );
}

// auth_mode (Indy's AuthMode): MAIL needs a login first (530 5.7.0).
#[test]
fn auth_mode_requires_login_before_mail() {
    let server = auth_server(|s| s.auth_mode = true);
    let (mut c, _) = ehlo_client(&server);
    check(c.cmd("MAIL FROM:<a@example.com>"), 530, "5.7.0");
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", USER, PASSWORD))),
        235,
        "2.7.0",
    );
    c.expect("MAIL FROM:<a@example.com>", 250);
}

// auth_mode on a TLS server whose mechanisms are all hidden in cleartext: the MAIL refusal
// points at STARTTLS (RFC 3207 §4), as AUTH is not even offered yet; with CRAM-MD5 offered
// in cleartext it still asks for a login.
#[test]
fn auth_mode_in_cleartext_points_at_starttls_when_no_mechanism_is_offered() {
    let config = server_config(&cert());
    let tls_only = start(|s| {
        s.tls = Some(Arc::clone(&config));
        s.auth_mode = true;
        s.check_user = Some(Box::new(|_, u, p| u == USER && p == PASSWORD));
    });
    let (mut c, ehlo) = ehlo_client(&tls_only);
    assert_eq!(auth_line(&ehlo), None);
    let (code, text) = c.cmd("MAIL FROM:<a@example.com>");
    assert_eq!(
        (code, text.as_str()),
        (530, "5.7.0 Must issue a STARTTLS command first")
    );

    let cram = auth_server(|s| {
        s.tls = Some(Arc::clone(&config));
        s.auth_mode = true;
    });
    let (mut c, ehlo) = ehlo_client(&cram);
    assert_eq!(auth_line(&ehlo), Some("AUTH CRAM-MD5"));
    let (code, text) = c.cmd("MAIL FROM:<a@example.com>");
    assert_eq!(
        (code, text.as_str()),
        (530, "5.7.0 Authentication required")
    );
}

// Indy's OnCommandAUTH: the handler replaces the whole built-in exchange, and the built-in
// mechanisms are no longer advertised; the application's own AUTH keyword is.
#[test]
fn on_command_auth_replaces_builtin() {
    let server = auth_server(|s| {
        s.extensions.extra.push("AUTH X-TOKEN".into());
        s.on_command_auth = Some(Arc::new(|ctx, command| {
            ctx.reply(Reply::new(334, "Z28="))?;
            let answer = ctx.read_line()?;
            ctx.reply(Reply::new(
                235,
                format!("custom {} {answer}", command.params.join(",")),
            ))
        }));
    });
    let (mut c, ehlo) = ehlo_client(&server);
    let auth_lines: Vec<&str> = ehlo.lines().filter(|l| l.starts_with("AUTH")).collect();
    assert_eq!(auth_lines, ["AUTH X-TOKEN"]);
    assert_eq!(c.cmd("AUTH X-TOKEN abc"), (334, "Z28=".to_string()));
    let (code, text) = c.cmd("hello");
    assert_eq!(code, 235);
    assert!(text.ends_with("custom X-TOKEN,abc hello"), "{text}");
    // A too-long answer: the handler's `?` on Error::LineTooLong gives the client a
    // 500 5.5.6 (RFC 5321 §4.5.3.1.4), and the session goes on.
    assert_eq!(c.cmd("AUTH X-TOKEN abc"), (334, "Z28=".to_string()));
    let (code, text) = c.cmd(&"x".repeat(5000));
    assert_eq!((code, text.as_str()), (500, "5.5.6 Line too long"));
    c.expect("NOOP", 250);
}

// Indy 9 called OnCommandAUTH only after EHLO and advertised `AUTH LOGIN`; RFC 4954 §4's 503
// cases (before EHLO, after a login, inside a transaction) come before the custom exchange, and
// the 535s it sends count towards max_auth_failures (RFC 4954 §6 / the 421 after the limit).
#[test]
fn on_command_auth_keeps_the_rfc_4954_sequence_and_failure_limit() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let server = auth_server(move |s| {
        s.limits.max_auth_failures = 2;
        s.on_command_auth = Some(Arc::new(move |ctx, command| {
            counted.fetch_add(1, Ordering::SeqCst);
            if command.params.first().map(String::as_str) == Some("good") {
                ctx.thread.logged_in = true;
                ctx.thread.username = "porter".into();
                return ctx.reply(Reply::new(235, "ok").with_enhanced("2.7.0"));
            }
            ctx.reply(Reply::new(535, "no").with_enhanced("5.7.8"))
        }));
    });
    let mut early = server.client();
    check(early.cmd("AUTH good"), 503, "");
    early.expect("HELO client.example", 250);
    check(early.cmd("AUTH good"), 503, "");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "called without EHLO");

    let (mut c, ehlo) = ehlo_client(&server);
    assert_eq!(auth_line(&ehlo), Some("AUTH LOGIN"));
    c.expect("MAIL FROM:<a@example.org>", 250);
    check(c.cmd("AUTH good"), 503, "5.5.1");
    c.expect("RSET", 250);
    check(c.cmd("AUTH good"), 235, "2.7.0");
    check(c.cmd("AUTH good"), 503, "5.5.1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let (mut c, _) = ehlo_client(&server);
    check(c.cmd("AUTH bad"), 535, "5.7.8");
    check(c.cmd("AUTH bad"), 535, "5.7.8");
    check(c.read_reply(), 421, "4.7.0");
    let mut rest = String::new();
    let read = c.reader.read_to_string(&mut rest).unwrap_or(0);
    assert_eq!(read, 0, "still open after the limit: {rest:?}");
}

// Indy's CheckUser got the thread and porters kept what they looked up on it (a custom
// ThreadClass); here check_user stores it in `thread.data`, and later events read and update it
// through `data_as` / `data_as_mut`.
#[test]
fn check_user_keeps_per_session_data_for_later_events() {
    struct Account {
        id: u32,
        mails: u32,
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let server = auth_server(move |s| {
        s.check_user = Some(Box::new(|thread, user, password| {
            let ok = user == USER && password == PASSWORD;
            if ok {
                thread.data = Some(Box::new(Account { id: 42, mails: 0 }));
            }
            ok
        }));
        s.on_command_mail = Some(Box::new(move |thread, _| {
            if let Some(account) = thread.data_as_mut::<Account>() {
                account.mails += 1;
            }
            let wrong_type = thread.data_as::<String>().is_some();
            let account = thread.data_as::<Account>().map(|a| (a.id, a.mails));
            record.lock().push((account, wrong_type));
            indy_smtp::MailAction::Accept
        }));
    });
    let (mut c, _) = ehlo_client(&server);
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RSET", 250);
    let plain = STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    check(c.cmd(&format!("AUTH PLAIN {plain}")), 235, "2.7.0");
    c.expect("MAIL FROM:<a@example.org>", 250);
    c.expect("RSET", 250);
    c.expect("MAIL FROM:<a@example.org>", 250);
    assert_eq!(
        *seen.lock(),
        [
            (None, false),
            (Some((42, 1)), false),
            (Some((42, 2)), false)
        ]
    );
}

/// Every log record of this test binary.
static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.lock().push(format!(
            "{} {}: {}",
            record.level(),
            record.target(),
            record.args()
        ));
    }
    fn flush(&self) {}
}

// RFC 4954 §14 and the issue: failures are logged, the password never is (in clear or in
// its base64 forms).
#[test]
fn password_never_logged() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
    let secret = "S3cr3t-in-no-log-5521";
    let server = start(|s| {
        s.check_user = Some(Box::new(move |_, u, p| u == "carol" && p == secret));
        s.credentials = Some(Box::new(move |_, u| {
            (u == "carol").then(|| secret.to_string())
        }));
    });
    let (mut c, _) = ehlo_client(&server);
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", "carol", "wrong"))),
        535,
        "5.7.8",
    );
    challenge(c.cmd("AUTH LOGIN"));
    challenge(c.cmd(&b64(b"carol")));
    // A password sent as a malformed field still must not be echoed into the log.
    check(c.cmd(&b64(format!("{secret}\0").as_bytes())), 501, "5.5.2");
    let nonce = challenge(c.cmd("AUTH CRAM-MD5"));
    check(
        c.cmd(&cram_response("carol", "guess", &nonce)),
        535,
        "5.7.8",
    );
    check(
        c.cmd(&format!("AUTH PLAIN {}", plain("", "carol", secret))),
        235,
        "2.7.0",
    );
    c.expect("QUIT", 221);
    assert!(c.is_closed());
    drop(server); // stops and joins the sessions: every record is in.

    let records = RECORDS.lock().clone();
    assert!(
        records
            .iter()
            .any(|r| r.contains("AUTH PLAIN failed") && r.contains("carol")),
        "the failure was not logged: {records:#?}"
    );
    let forbidden = [
        secret.to_string(),
        plain("", "carol", secret),
        b64(secret.as_bytes()),
        b64(format!("{secret}\0").as_bytes()),
    ];
    for record in &records {
        for f in &forbidden {
            assert!(
                !record.contains(f.as_str()),
                "password in log record {record:?}"
            );
        }
    }
}
