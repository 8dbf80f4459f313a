//! Fuzzes the command-line parser (`indy_smtp::command::parse_command_line`) and what the
//! session does next with a parsed line: MAIL/RCPT arguments go to the path parser, and client
//! text is echoed through `fill_template` into a `Reply`.
//!
//! Checked for every line:
//! - the error kind is the right one (NUL, RFC 5321 §2.3.8; not UTF-8, RFC 6531 §3.3; blank;
//!   malformed verb, RFC 5321 §4.1.1 `Keyword`);
//! - a parsed command is faithful: the verb is the upper-cased first word (1 to 32 letters,
//!   digits or `-`), the parameters are the rest of the line with trailing SP/TAB removed,
//!   `params` is its white-space split, and re-parsing `VERB params` gives the same command;
//! - every reply built from client text is exactly one well-formed line (RFC 5321 §4.2:
//!   `NNN SP text CRLF`, no CR, LF or other control byte inside), so no echoed byte can forge a
//!   reply line;
//! - MAIL/RCPT arguments never panic the path parser, a parsed address is a slice of the line,
//!   and every path error reply is printable ASCII.
//!
//! Like smtp-proto's fuzz target, each input is tried as raw bytes, mapped into smtp-proto's
//! RFC 5321 alphabet (plus the bytes that matter here: upper case, `@`, `"`, TAB, NUL, CR/LF and
//! UTF-8 / invalid UTF-8 lead bytes), and mapped onto whole SMTP tokens (`MAIL `, `FROM:`, ...)
//! so that complete MAIL/RCPT commands come up often.
#![no_main]

use indy_smtp::address::{parse_mail_from, parse_rcpt_to, PathError};
use indy_smtp::command::{parse_command_line, Command, CommandError};
use indy_smtp::reply::fill_template;
use indy_smtp::Reply;
use libfuzzer_sys::fuzz_target;

/// smtp-proto's `RFC5321_ALPHABET` plus the bytes this parser treats specially.
const ALPHABET: &[u8] =
    b"0123456789abcdefghijklmnopqrstuvwxyz:=-<>,; \r\nMAILRCPTFOM@.\"[]\\\t\0\xc3\xa9\xff";

/// Whole tokens: verbs, keywords, path pieces and parameters.
const TOKENS: &[&[u8]] = &[
    b"MAIL ",
    b"RCPT ",
    b"mail\t",
    b"EHLO ",
    b"X-FOO ",
    b"FROM:",
    b"TO:",
    b"<",
    b">",
    b"<>",
    b"@",
    b"a",
    b".",
    b"\"",
    b"\\",
    b"[1.2.3.4]",
    b"[IPv6:::1]",
    b"@r.example,@s.example:",
    b"<Postmaster>",
    b" ",
    b"\t",
    b"  ",
    b" SIZE=10",
    b" BODY=8BITMIME",
    b" SMTPUTF8",
    b" NOTIFY=SUCCESS,DELAY",
    b" ORCPT=rfc822;a+2Bb@c",
    b" ENVID=x+41",
    b" RET=HDRS",
    b" AUTH=<>",
    b"=",
    b"\xc3\xa9",
    b"\xe3\x80\x80",
    b"\xff",
    b"\0",
    b"\r",
    b"\n",
    b"%s",
    b"%h",
];

/// Templates of `SmtpMessages` (both sets) that echo client text.
const TEMPLATES: &[&str] = &[
    "%h Hello %s",
    "<%s> Ok",
    "%s Address Okay",
    "Syntax Error - Command not understood: %s",
    "Unsupported parameter %s",
];

/// RFC 5321 §4.2: every line of a reply is `NNN` then `-` (more lines follow) or SP, then
/// printable US-ASCII text, then CRLF (a last line without text ends at its code); no other
/// CR, LF, control or non-ASCII byte.
fn check_wire(wire: &[u8]) {
    assert!(
        wire.ends_with(b"\r\n"),
        "reply not CRLF-terminated: {wire:?}"
    );
    let lines: Vec<&[u8]> = wire[..wire.len() - 2].split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = if i + 1 < lines.len() {
            line.strip_suffix(b"\r").expect("bare LF in reply")
        } else {
            line
        };
        assert!(line.len() >= 3, "short reply line {line:?}");
        assert!(line[..3].iter().all(u8::is_ascii_digit), "{line:?}");
        let last = i + 1 == lines.len();
        if line.len() > 3 {
            assert_eq!(line[3], if last { b' ' } else { b'-' }, "{line:?}");
        } else {
            assert!(last, "{line:?}: a code alone before the last line");
        }
        assert!(
            line.iter().all(|&b| (0x20..0x7f).contains(&b)),
            "control or non-ASCII byte in reply line {line:?}"
        );
    }
    assert!(std::str::from_utf8(wire).is_ok(), "reply is not UTF-8");
}

/// A reply that must be a single line (client text is never allowed to add one).
fn check_single_line(reply: &Reply) {
    for enhanced in [false, true] {
        let wire = reply.to_wire(enhanced);
        check_wire(&wire);
        let crlf = wire.windows(2).filter(|w| w == b"\r\n").count();
        assert_eq!(crlf, 1, "client text split the reply: {wire:?}");
    }
}

fn check_path_error(err: &PathError, for_rcpt: bool) {
    let (code, enhanced, text) = err.reply(for_rcpt);
    assert!(matches!(code, 501 | 552 | 553), "unexpected code {code}");
    assert!(text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{text:?}");
    check_single_line(&Reply::new(code, text).with_enhanced(enhanced));
}

fn valid_verb(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 32
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn check_command(line: &[u8], text: &str, c: &Command) {
    assert_eq!(c.raw_line.as_bytes(), line);
    assert!(valid_verb(&c.verb), "{:?}", c.verb);
    assert!(!c.verb.bytes().any(|b| b.is_ascii_lowercase()));
    // The verb is the first word as sent, upper-cased.
    let sent_verb = text.get(..c.verb.len()).expect("verb longer than the line");
    assert!(sent_verb.eq_ignore_ascii_case(&c.verb));
    let after = &text[c.verb.len()..];
    let trimmed = after.trim_end_matches([' ', '\t']);
    if trimmed.is_empty() {
        assert!(c.unparsed_params.is_empty());
    } else {
        // One SP or TAB separates the verb from its parameters (RFC 5321 §4.1.1).
        let sep = trimmed.as_bytes()[0];
        assert!(sep == b' ' || sep == b'\t', "verb runs into {sep:#x}");
        assert_eq!(c.unparsed_params, trimmed[1..]);
    }
    assert!(!c.unparsed_params.ends_with([' ', '\t']));
    let split: Vec<&str> = c.unparsed_params.split_whitespace().collect();
    assert_eq!(c.params, split);
    assert!(c
        .params
        .iter()
        .all(|p| !p.is_empty() && !p.contains(char::is_whitespace)));

    // Re-parsing the normalised line gives the same command.
    let again = if c.unparsed_params.is_empty() {
        c.verb.clone()
    } else {
        format!("{} {}", c.verb, c.unparsed_params)
    };
    let c2 = parse_command_line(again.as_bytes()).expect("normalised line refused");
    assert_eq!(
        (&c2.verb, &c2.unparsed_params, &c2.params),
        (&c.verb, &c.unparsed_params, &c.params)
    );
    // Verbs are case-insensitive (RFC 5321 §2.4).
    let lower =
        parse_command_line(text.to_ascii_lowercase().as_bytes()).expect("lower case refused");
    assert_eq!(lower.verb, c.verb);

    // Echoed client text stays inside one reply line.
    for template in TEMPLATES {
        for arg in [
            c.unparsed_params.as_str(),
            c.raw_line.as_str(),
            c.verb.as_str(),
        ] {
            let filled = fill_template(template, arg, "mx.example");
            check_single_line(&Reply::new(250, filled.clone()).with_enhanced("2.1.0"));
            check_single_line(&Reply::new(555, filled).with_enhanced("5.5.4"));
        }
    }

    // What the MAIL and RCPT handlers do with the parameters (src/verbs/envelope.rs).
    let args = c.unparsed_params.as_str();
    for utf8 in [false, true] {
        match c.verb.as_str() {
            "MAIL" => match parse_mail_from(args, utf8) {
                Ok(m) => {
                    assert!(args.contains(&m.address));
                    for p in &m.params {
                        let text = fill_template("Unsupported parameter %s", &p.keyword, "h");
                        check_single_line(&Reply::new(555, text));
                    }
                }
                Err(e) => check_path_error(&e, false),
            },
            "RCPT" => match parse_rcpt_to(args, utf8) {
                Ok(r) => {
                    assert!(!r.address.is_empty());
                    assert!(args.contains(&r.address));
                }
                Err(e) => check_path_error(&e, true),
            },
            _ => {}
        }
    }
}

fn check_line(line: &[u8]) {
    let result = parse_command_line(line);
    let text = std::str::from_utf8(line);
    match &result {
        Err(CommandError::Nul) => assert!(line.contains(&0)),
        Err(CommandError::NotUtf8) => assert!(!line.contains(&0) && text.is_err()),
        Err(CommandError::Empty) => {
            assert!(text
                .expect("Empty for non-UTF-8")
                .chars()
                .all(char::is_whitespace));
        }
        Err(CommandError::BadVerb) => {
            let text = text.expect("BadVerb for non-UTF-8");
            let word = text
                .trim_end_matches([' ', '\t'])
                .split([' ', '\t'])
                .next()
                .unwrap_or("");
            assert!(!valid_verb(word), "valid verb {word:?} refused");
            assert!(!text.chars().all(char::is_whitespace));
        }
        Ok(c) => {
            assert!(!line.contains(&0), "NUL accepted");
            check_command(line, text.expect("non-UTF-8 accepted"), c);
        }
        // CommandError is #[non_exhaustive]: a variant added later fails here until it has
        // its own check above.
        Err(e) => panic!("no check for {e:?}"),
    }
    if let Err(e) = &result {
        // The session's reply to a line it cannot parse (src/session.rs).
        check_single_line(&Reply::new(500, format!("Syntax error: {e}")).with_enhanced("5.5.2"));
    }
    // Indy 9's CustomError strings ("550 5.1.1 text") may come from anywhere: whatever parses
    // must still be framed correctly on the wire (multi-line if it holds LF).
    if let Some(r) = text.ok().and_then(Reply::parse) {
        assert!((200..=599).contains(&r.code()));
        for enhanced in [false, true] {
            check_wire(&r.to_wire(enhanced));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_line(data);
    let mapped: Vec<u8> = data
        .iter()
        .map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()])
        .collect();
    check_line(&mapped);
    let tokens: Vec<u8> = data
        .iter()
        .flat_map(|&b| TOKENS[usize::from(b) % TOKENS.len()].iter().copied())
        .collect();
    check_line(&tokens);
});
