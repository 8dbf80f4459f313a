//! Fuzzes reply building and parsing (`indy_smtp::Reply`, `indy_smtp::reply::fill_template`)
//! with client text in every position it can reach: the reply text, the enhanced status code,
//! `Reply::parse` (Indy 9 `CustomError` strings, which applications often build from client
//! input) and the `%s` argument of every `SmtpMessages` template (default and Indy 9 sets).
//!
//! Input: bytes 0-1 = reply code (u16, big-endian), byte 2 = flags, rest = lossy UTF-8 split
//! at `\x1f` into (enhanced code, text/argument, template).
//!
//! Checked besides "no panic": every wire form is CRLF-terminated `NNN[- ]text` lines (RFC 5321
//! §4.2.1; a last line without text ends at its code, the AUTH challenge `334 ` excepted), same
//! code on every line, 200-599, `-` on all lines but the last, printable US-ASCII only inside a
//! line, one line per `\n` of the text and no more, the enhanced code
//! (when sent) of the reply's class and absent on 3xx (RFC 2034 §4); a template filled with
//! client text gives as many lines as the template has (no line injected), holds no control
//! character the template or host name did not, and the argument adds at most 256 bytes per
//! `%s`; a parsed reply re-parses from its Display to the same code and enhanced code.
#![no_main]

use indy_smtp::reply::fill_template;
use indy_smtp::{Reply, SmtpMessages};
use libfuzzer_sys::fuzz_target;

fn check_wire(wire: &[u8], reply: &Reply, enhanced: bool) {
    assert!(wire.ends_with(b"\r\n"), "{wire:?} not CRLF-terminated");
    let body = &wire[..wire.len() - 2];
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    assert_eq!(
        lines.len(),
        reply.text().split('\n').count(),
        "{wire:?}: line count differs from the text's"
    );
    let mut first_code: Option<&[u8]> = None;
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        let line = if last {
            *line
        } else {
            line.strip_suffix(b"\r")
                .unwrap_or_else(|| panic!("{wire:?}: bare LF"))
        };
        // `Reply-code [ SP textstring ]`: a last line without text ends at its code (only
        // the empty AUTH challenge is written `334 SP`, RFC 4954 §4).
        assert!(line.len() >= 3, "{wire:?}: short line");
        let code = &line[..3];
        assert!(code.iter().all(u8::is_ascii_digit), "{wire:?}: bad code");
        let n: u16 = std::str::from_utf8(code).unwrap().parse().unwrap();
        assert!((200..=599).contains(&n), "{wire:?}: code {n}");
        if (200..=599).contains(&reply.code()) {
            assert_eq!(n, reply.code());
        } else {
            assert_eq!(n, 451);
        }
        assert_eq!(*first_code.get_or_insert(code), code, "{wire:?}: codes differ");
        if line.len() == 3 {
            assert!(last && n != 334, "{wire:?}: a code alone");
            assert!(!enhanced || (300..400).contains(&n), "{wire:?}: no enhanced code");
        } else {
            assert_eq!(line[3], if last { b' ' } else { b'-' }, "{wire:?}: separator");
        }
        let no_text = reply.text().split('\n').nth(i).map(|t| t.trim_end_matches('\r'));
        if last && no_text == Some("") {
            assert!(line.last() != Some(&b' ') || n == 334, "{wire:?}: space, no text");
        }
        // RFC 5321 §4.2: textstring is printable US-ASCII (to_wire is outside SMTPUTF8).
        assert!(
            line.iter().all(|&b| (0x20..0x7f).contains(&b)),
            "{wire:?}: control or non-ASCII byte inside a line"
        );
        let rest = line.get(4..).unwrap_or_default();
        if enhanced && !(300..400).contains(&n) {
            let sp = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            let e = std::str::from_utf8(&rest[..sp]).unwrap();
            assert_eq!(e.as_bytes()[0], code[0], "{wire:?}: enhanced class");
            let parts: Vec<&str> = e.split('.').collect();
            assert!(
                parts.len() == 3
                    && parts[1..]
                        .iter()
                        .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())),
                "{wire:?}: enhanced code {e:?}"
            );
        }
        if let Some(e) = reply.enhanced() {
            if enhanced && !(300..400).contains(&n) && e.as_bytes()[0] == code[0] {
                assert!(rest.starts_with(e.as_bytes()), "{wire:?}: lost {e}");
            }
        }
    }
}

fn check_reply(r: &Reply) {
    check_wire(&r.to_wire(false), r, false);
    check_wire(&r.to_wire(true), r, true);
    let _ = r.to_string();
}

fn templates(m: &SmtpMessages) -> Vec<&str> {
    vec![
        &m.greeting.welcome,
        &m.greeting.hello_reply,
        &m.greeting.no_hello,
        &m.greeting.auth_failed,
        &m.greeting.ehlo_not_supported,
        &m.greeting.ehlo_reply,
        &m.rcpt_replies.address_ok,
        &m.rcpt_replies.address_error,
        &m.rcpt_replies.address_will_forward,
        &m.data_replies.start_data,
        &m.data_replies.end_data,
        &m.error_reply,
        &m.sequence_error,
        &m.not_logged_in,
        &m.noop_reply,
        &m.rset_reply,
        &m.quit_reply,
        &m.reply_unknown_command,
        &m.max_connection_reply,
        &m.cannot_vrfy,
        &m.line_too_long,
        &m.syntax_error,
        &m.too_many_recipients,
        &m.message_too_large,
        &m.bare_newline,
        &m.unknown_parameter,
        &m.no_valid_recipients,
        &m.local_error,
        &m.timeout,
        &m.too_many_errors,
        &m.shutting_down,
        &m.ready_to_start_tls,
        &m.must_start_tls,
        &m.encryption_required,
        &m.auth_succeeded,
        // Fixed texts the verbs fill with client text.
        "%s octets received",
        "%h Syntax: BDAT size [LAST]; closing, as the chunk cannot be skipped",
    ]
    .into_iter()
    .map(|s| s as &str)
    .collect()
}

fn check_template(template: &str, arg: &str, host: &str, code: u16) {
    let out = fill_template(template, arg, host);
    let ctrl = |s: &str| s.chars().filter(|c| c.is_control()).count();
    let n_s = template.matches("%s").count();
    let n_h = template.matches("%h").count();
    assert!(
        ctrl(&out) <= ctrl(template) + n_h * ctrl(host),
        "client control characters in {out:?} (template {template:?}, arg {arg:?})"
    );
    assert!(
        out.len() <= template.len() + n_h * host.len() + n_s * 256,
        "argument over 256 bytes in {out:?}"
    );
    // Client text never turns into the host name or a placeholder of its own.
    if !template.contains('%') {
        assert_eq!(out, template);
    }
    let r = Reply::new(code, out.clone()).with_enhanced("5.5.2");
    check_reply(&r);
    assert_eq!(
        r.to_wire(false).iter().filter(|&&b| b == b'\n').count(),
        template.split('\n').count() + n_h * host.matches('\n').count(),
        "line injected by {arg:?} into {template:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let code = u16::from_be_bytes([data[0], data[1]]);
    let flags = data[2];
    let text = String::from_utf8_lossy(&data[3..]);
    let mut fields = text.splitn(3, '\x1f');
    let enh = fields.next().unwrap_or("");
    let arg = fields.next().unwrap_or("");
    let tmpl = fields.next();
    // A valid code most of the time, so that enhanced codes and classes are exercised.
    let code = if flags & 1 != 0 { code } else { 200 + code % 400 };

    // Reply::new / with_enhanced with client text.
    let r = Reply::new(code, arg).with_enhanced(enh);
    if let Some(e) = r.enhanced() {
        assert_eq!(e, enh);
    }
    check_reply(&r);
    let r = Reply::new(code, &*text);
    check_reply(&r);

    // Reply::parse of client-built strings.
    for line in [&*text, arg, enh] {
        if let Some(p) = Reply::parse(line) {
            assert!((200..=599).contains(&p.code()));
            check_reply(&p);
            let again = Reply::parse(&p.to_string()).expect("Display does not re-parse");
            assert_eq!(again.code(), p.code());
            if p.enhanced().is_some() {
                assert_eq!(again.enhanced(), p.enhanced(), "{line:?} -> {p}");
            }
        }
    }

    // Every template with the client's text as %s.
    let host = "mx.example.org";
    for set in [SmtpMessages::default(), SmtpMessages::indy9()] {
        for t in templates(&set) {
            check_template(t, arg, host, code);
        }
    }
    if let Some(t) = tmpl {
        // An arbitrary (application-chosen) template: the client's part still cannot inject.
        let t: String = t.chars().filter(|c| !c.is_control()).collect();
        check_template(&t, arg, host, code);
        check_template(&t, arg, "", code);
    }
    // The host name goes only where the template says %h: client text is never expanded.
    assert_eq!(
        fill_template("%s", arg, "HOST"),
        fill_template("%s", arg, "QQQQ"),
        "%h in client text expanded"
    );
});
