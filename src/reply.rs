//! SMTP replies (RFC 5321 §4.2) with optional enhanced status codes (RFC 2034, RFC 3463).

use std::{fmt, io};

/// An SMTP reply: a three-digit code, an optional enhanced status code and a text.
///
/// A text with `\n` in it becomes a multi-line reply (`250-first` ... `250 last`,
/// RFC 5321 §4.2.1). CR, LF and other control characters never reach the wire: they are
/// replaced when the reply is written, so client bytes echoed in a text cannot inject lines.
///
/// ```
/// use indy_smtp::Reply;
/// let r = Reply::new(550, "No such user").with_enhanced("5.1.1");
/// assert_eq!(r.to_wire(true), b"550 5.1.1 No such user\r\n");
/// assert_eq!(r.to_wire(false), b"550 No such user\r\n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    enhanced: Option<Enhanced>,
    text: String,
}

/// A valid enhanced status code (at most `5.999.999`), kept inline: a reply is built for
/// every command, and this saves an allocation each time (issue 5).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Enhanced {
    len: u8,
    bytes: [u8; 9],
}

impl Enhanced {
    /// `None` unless `s` is a valid code (RFC 3463 §2).
    fn new(s: &str) -> Option<Enhanced> {
        if !is_enhanced_code(s) || s.len() > 9 {
            return None;
        }
        let mut bytes = [0u8; 9];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(Enhanced {
            len: s.len() as u8,
            bytes,
        })
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and dots are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Enhanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Reply {
    /// A reply with this code and text and no enhanced status code; when the session has
    /// ENHANCEDSTATUSCODES on, the code the RFCs give a reply code with a single meaning is
    /// sent (`235 2.7.0` and `535 5.7.8` of AUTH, `530 5.7.0`, `500 5.5.2`, `503 5.5.1`,
    /// `251 2.1.5`, ...), else the class default (`2.0.0`, `4.0.0`, `5.0.0`).
    ///
    /// What is sent is always a well-formed reply: a code outside 200-599 goes out as `451`,
    /// and so does a 3xx where the client waits for a final reply (from `on_command_mail`,
    /// `on_command_rcpt` or a receive event), with an error logged (a 2xx or 3xx refusal from
    /// `on_connect` goes out as `421`); an enhanced
    /// code of the wrong class (`550` with `2.0.0`) is replaced by the class default; each
    /// line of `text` becomes one reply line, with control characters (and, outside an SMTPUTF8
    /// transaction, non-ASCII ones) replaced by `?`.
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: None,
            text: text.into(),
        }
    }

    /// The same reply carrying an enhanced status code such as `"5.1.1"` (RFC 3463 §2). A
    /// string that is not one (`"5.1"`, `"x.1.1"`) is ignored: the reply keeps its default.
    pub fn with_enhanced(mut self, enhanced: &str) -> Reply {
        if let Some(e) = Enhanced::new(enhanced) {
            self.enhanced = Some(e);
        }
        self
    }

    /// Parses a reply line the way Indy 9's `CustomError` strings were written:
    /// `"550 5.1.1 unknown user"` or `"550 unknown user"`. `None` when it does not start
    /// with a code from 200 to 599.
    ///
    /// ```
    /// use indy_smtp::Reply;
    /// let r = Reply::parse("550 5.7.1 relaying denied").unwrap();
    /// assert_eq!((r.code(), r.enhanced(), r.text()), (550, Some("5.7.1"), "relaying denied"));
    /// assert!(Reply::parse("hello").is_none());
    /// ```
    pub fn parse(line: &str) -> Option<Reply> {
        let line = line.trim();
        let code: u16 = line.get(..3)?.parse().ok()?;
        if !(200..=599).contains(&code) {
            return None;
        }
        let rest = line.get(3..)?.trim_start_matches([' ', '-']);
        let (first, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        if is_enhanced_code(first) {
            Some(Reply::new(code, tail).with_enhanced(first))
        } else {
            Some(Reply::new(code, rest))
        }
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code given to this reply, if any.
    pub fn enhanced(&self) -> Option<&str> {
        self.enhanced.as_ref().map(Enhanced::as_str)
    }

    /// The reply text (lines separated by `\n`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True for 2xx and 3xx replies.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// An application's reply where the client waits for a command's final one: a 3xx is an
    /// intermediate reply (RFC 5321 §4.2.1), which the client would take as leave to send
    /// data or a SASL response, so it goes out as 451 (as a code outside 2xx-5xx does).
    pub(crate) fn into_final(self) -> Reply {
        if !(300..400).contains(&self.code) {
            return self;
        }
        log::error!(
            "reply code {} is not a final reply; sending 451 instead",
            self.code
        );
        Reply {
            code: 451,
            enhanced: None,
            text: self.text,
        }
    }

    /// An application's refusal of a connection, sent in place of the greeting: RFC 5321
    /// §3.1 and §4.3.2 have 554 for it, or 421 for a temporary one. A reply that refuses
    /// nothing (2xx, 3xx) would have the client go on after it, so it goes out as 421.
    pub(crate) fn into_refusal(self) -> Reply {
        if self.code >= 400 {
            return self;
        }
        log::error!(
            "on_connect refused a client with {}, which is no refusal; sending 421 instead",
            self.code
        );
        Reply {
            code: 421,
            enhanced: None,
            text: self.text,
        }
    }

    /// The bytes sent on the wire; `enhanced` is whether the session uses ENHANCEDSTATUSCODES.
    /// The text is US-ASCII as RFC 5321 §4.2 has it: each other character becomes `?` (in a
    /// session, UTF-8 passes only within an SMTPUTF8 transaction).
    ///
    /// ```
    /// use indy_smtp::Reply;
    /// assert_eq!(Reply::new(550, "Grüße").to_wire(false), b"550 Gr??e\r\n");
    /// // A reply without text ends at its code (RFC 5321 §4.2: `Reply-code [ SP textstring ]`).
    /// assert_eq!(Reply::parse("550 5.1.1").unwrap().to_wire(true), b"550 5.1.1\r\n");
    /// ```
    pub fn to_wire(&self, enhanced: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 16);
        self.write_to(&mut out, enhanced, false);
        out
    }

    /// Appends the wire form to `out` (RFC 5321 §4.2.1: `NNN-` on all lines but the last).
    /// `utf8`: the text may keep non-ASCII characters (RFC 6531: the client declared SMTPUTF8
    /// for this transaction, and replies echo its UTF-8 addresses).
    pub(crate) fn write_to(&self, out: &mut Vec<u8>, enhanced: bool, utf8: bool) {
        let code = if (200..=599).contains(&self.code) {
            self.code
        } else {
            log::error!(
                "reply code {} is not 2xx-5xx; sending 451 instead",
                self.code
            );
            451
        };
        let status = self.enhanced_for(code, enhanced);
        let mut lines = self.text.split('\n').peekable();
        while let Some(line) = lines.next() {
            let sep = if lines.peek().is_some() { b'-' } else { b' ' };
            let line = line.trim_end_matches('\r');
            out.extend_from_slice(&digits3(code));
            // RFC 4954 §4: an empty AUTH challenge is still `334 SP`; any other empty last
            // line ends at its code, as `SP textstring` needs a text after the space.
            if sep == b'-' || status.is_some() || !line.is_empty() || code == 334 {
                out.push(sep);
            }
            if let Some(status) = status {
                out.extend_from_slice(status.as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            push_sanitized(out, line, utf8);
            out.extend_from_slice(b"\r\n");
        }
    }

    fn enhanced_for(&self, code: u16, enhanced: bool) -> Option<&str> {
        // RFC 2034 §4: intermediate 3xx replies carry no status code.
        if !enhanced || (300..400).contains(&code) {
            return None;
        }
        match &self.enhanced {
            Some(e) if e.bytes[0] == code_class(code) => Some(e.as_str()),
            _ => Some(default_enhanced(code)),
        }
    }
}

/// The enhanced code a reply without one gets: for a code with a single meaning in the RFCs,
/// the code they give it; otherwise the class default (RFC 3463 §3.1, "X.0.0").
fn default_enhanced(code: u16) -> &'static str {
    match code {
        251 => "2.1.5",       // RFC 5321 §3.4, RFC 3463 §3.2: recipient valid (forwarded)
        235 => "2.7.0",       // RFC 4954 §6: authentication succeeded
        432 => "4.7.12",      // RFC 4954 §6 / RFC 5248: password transition needed
        454 => "4.7.0",       // RFC 4954 §6: temporary authentication failure; RFC 3207 §4
        500 => "5.5.2",       // RFC 3463 §3.6: syntax error
        502 | 503 => "5.5.1", // RFC 3463 §3.6: invalid command
        501 | 504 | 555 => "5.5.4", // RFC 3463 §3.6: invalid command arguments
        530 => "5.7.0",       // RFC 4954 §6 / RFC 3207 §4: authentication or TLS required
        534 => "5.7.9",       // RFC 4954 §6: mechanism too weak
        535 => "5.7.8",       // RFC 4954 §6: credentials invalid
        538 => "5.7.11",      // RFC 4954 §6: encryption required for the mechanism
        // `code` is 2xx, 4xx or 5xx here (write_to maps anything else to 451).
        _ => match code_class(code) {
            b'2' => "2.0.0",
            b'4' => "4.0.0",
            _ => "5.0.0",
        },
    }
}

/// `?` on an I/O error in a receive event (`Result<(), Reply>`): the temporary failure RFC 5321
/// §4.2.3 has for it, so the client keeps the message and tries again. The error is logged;
/// its text is not sent, as it may name local paths.
///
/// ```
/// use indy_smtp::Reply;
/// let mut server = indy_smtp::SmtpServer::new();
/// server.on_receive_raw = Some(Box::new(|_thread, stream| {
///     let mut file = std::fs::File::create("/nonexistent-dir/message.eml")?; // 451 4.3.0
///     std::io::copy(stream, &mut file)?;
///     Ok(())
/// }));
/// ```
impl From<io::Error> for Reply {
    fn from(error: io::Error) -> Reply {
        log::error!("local error, answered as a temporary failure: {error}");
        local_failure(&error)
    }
}

/// `452 4.3.1` when the disk or the quota is full (RFC 5321 §4.2.3 "insufficient system
/// storage", RFC 3463 §3.4 "mail system full"), else `451 4.3.0` ("local error in processing").
pub(crate) fn local_failure(error: &io::Error) -> Reply {
    if storage_full(error) {
        return Reply::new(452, "Insufficient system storage").with_enhanced("4.3.1");
    }
    processing_failure()
}

/// `451 4.3.0`, "local error in processing" (RFC 5321 §4.2.3), whatever the error was.
pub(crate) fn processing_failure() -> Reply {
    Reply::new(451, "Requested action aborted: local error in processing").with_enhanced("4.3.0")
}

/// ENOSPC or EDQUOT (`io::ErrorKind::StorageFull` needs a newer Rust than this crate's).
fn storage_full(error: &io::Error) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let full = [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT].map(|e| e.raw_os_error());
    // ENOSPC is 28 on every Unix; EDQUOT differs, and other systems use other numbers.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let full = [if cfg!(unix) { 28 } else { -1 }];
    error
        .raw_os_error()
        .is_some_and(|code| full.contains(&code))
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.enhanced {
            Some(e) => write!(f, "{} {} {}", self.code, e.as_str(), self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

fn code_class(code: u16) -> u8 {
    b'0' + (code / 100) as u8
}

/// The three digits of a reply code (always 200..=599 when written).
fn digits3(code: u16) -> [u8; 3] {
    [
        b'0' + (code / 100 % 10) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]
}

/// RFC 3463 §2: `class "." subject "." detail`, class 2, 4 or 5, subject 1-3 digits, detail 1-3 digits.
fn is_enhanced_code(s: &str) -> bool {
    // Byte by byte: this runs for every reply (issue 5).
    let digits = |p: &[u8]| !p.is_empty() && p.len() <= 3 && p.iter().all(u8::is_ascii_digit);
    match s.as_bytes() {
        [b'2' | b'4' | b'5', b'.', rest @ ..] => match rest.iter().position(|&b| b == b'.') {
            Some(i) => digits(&rest[..i]) && digits(&rest[i + 1..]),
            None => false,
        },
        _ => false,
    }
}

/// Control characters (and DEL) would let echoed client text break the reply framing, and
/// RFC 5321 §4.2's `textstring` is printable US-ASCII: each such character becomes one `?`
/// (non-ASCII ones only when `utf8` is off).
fn push_sanitized(out: &mut Vec<u8>, text: &str, utf8: bool) {
    let bytes = text.as_bytes();
    if bytes.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        out.extend_from_slice(bytes);
        return;
    }
    for c in text.chars() {
        if c.is_control() || (!utf8 && !c.is_ascii()) {
            out.push(b'?');
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// Replaces `%s` with `arg` and `%h` with `host` in a reply template (the placeholders of
/// [`SmtpMessages`](crate::SmtpMessages)). Control characters in `arg` are removed and it is
/// cut at 256 bytes, so a client cannot smuggle text into a reply; placeholders are read from
/// the template only, so a `%h` the client sent stays as it is.
pub fn fill_template(template: &str, arg: &str, host: &str) -> String {
    if !template.contains('%') {
        return template.to_string();
    }
    // The common case (a short argument without control characters) is used as it is.
    let plain =
        |a: &str| a.bytes().all(|b| (0x20..0x7f).contains(&b)) || !a.chars().any(char::is_control);
    let arg: std::borrow::Cow<'_, str> = if arg.len() <= 256 && plain(arg) {
        arg.into()
    } else {
        arg.chars()
            .filter(|c| !c.is_control())
            .scan(0usize, |len, c| {
                *len += c.len_utf8();
                (*len <= 256).then_some(c)
            })
            .collect::<String>()
            .into()
    };
    // One pass over the template: the client's text is copied as it is, so a `%h` in it
    // stays literal instead of becoming the host name.
    let mut out = String::with_capacity(template.len() + arg.len() + host.len());
    let bytes = template.as_bytes();
    let mut last = 0;
    let mut from = 0;
    while let Some(p) = memchr::memchr(b'%', &bytes[from..]) {
        let at = from + p;
        let value = match bytes.get(at + 1) {
            Some(b's') => &*arg,
            Some(b'h') => host,
            _ => {
                from = at + 1;
                continue;
            }
        };
        out.push_str(&template[last..at]);
        out.push_str(value);
        last = at + 2;
        from = last;
    }
    out.push_str(&template[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_with_and_without_enhanced() {
        let r = Reply::new(250, "Ok");
        assert_eq!(r.to_wire(false), b"250 Ok\r\n");
        assert_eq!(r.to_wire(true), b"250 2.0.0 Ok\r\n");
        let r = Reply::new(550, "x").with_enhanced("5.1.1");
        assert_eq!(r.to_wire(true), b"550 5.1.1 x\r\n");
    }

    #[test]
    fn intermediate_replies_never_carry_enhanced_codes() {
        assert_eq!(Reply::new(354, "go").to_wire(true), b"354 go\r\n");
        assert_eq!(Reply::new(334, "").to_wire(true), b"334 \r\n");
    }

    #[test]
    fn mismatched_class_falls_back_to_class_default() {
        let r = Reply::new(250, "odd").with_enhanced("5.5.3");
        assert_eq!(r.to_wire(true), b"250 2.0.0 odd\r\n");
    }

    /// RFC 4954 §6 and RFC 3463: a code with one meaning gets its own enhanced code, so a
    /// ported `OnCommandAUTH` that writes `Reply::new(535, ..)` sends `535 5.7.8`.
    #[test]
    fn single_meaning_codes_get_their_rfc_enhanced_code() {
        let wire = |code| Reply::new(code, "x").to_wire(true);
        assert_eq!(wire(235), b"235 2.7.0 x\r\n");
        assert_eq!(wire(535), b"535 5.7.8 x\r\n");
        assert_eq!(wire(538), b"538 5.7.11 x\r\n");
        assert_eq!(wire(432), b"432 4.7.12 x\r\n");
        assert_eq!(wire(530), b"530 5.7.0 x\r\n");
        assert_eq!(wire(503), b"503 5.5.1 x\r\n");
        assert_eq!(wire(501), b"501 5.5.4 x\r\n");
        assert_eq!(wire(251), b"251 2.1.5 x\r\n");
        assert_eq!(wire(454), b"454 4.7.0 x\r\n");
        assert_eq!(wire(500), b"500 5.5.2 x\r\n");
        assert_eq!(wire(502), b"502 5.5.1 x\r\n");
        assert_eq!(wire(504), b"504 5.5.4 x\r\n");
        assert_eq!(wire(555), b"555 5.5.4 x\r\n");
        assert_eq!(wire(534), b"534 5.7.9 x\r\n");
        // Codes with several meanings keep the class default; a given code always wins.
        assert_eq!(wire(550), b"550 5.0.0 x\r\n");
        assert_eq!(wire(421), b"421 4.0.0 x\r\n");
        let given = Reply::new(535, "x").with_enhanced("5.7.1");
        assert_eq!(given.to_wire(true), b"535 5.7.1 x\r\n");
        assert_eq!(Reply::new(535, "x").to_wire(false), b"535 x\r\n");
    }

    /// RFC 5321 §4.2.1: 2yz and 3yz are positive; an on_connect "refusal" below 400 is not
    /// one, so it goes out as 421 with the application's text.
    #[test]
    fn positive_replies_refusals_and_display() {
        assert!(Reply::new(250, "x").is_positive() && Reply::new(354, "x").is_positive());
        assert!(!Reply::new(199, "x").is_positive() && !Reply::new(400, "x").is_positive());
        let kept = Reply::new(554, "go away")
            .with_enhanced("5.7.1")
            .into_refusal();
        assert_eq!(kept.to_wire(true), b"554 5.7.1 go away\r\n");
        let fixed = Reply::new(250, "welcome?").into_refusal();
        assert_eq!(
            (fixed.code(), fixed.enhanced(), fixed.text()),
            (421, None, "welcome?")
        );
        assert_eq!(Reply::new(550, "no").to_string(), "550 no");
        let given = Reply::new(550, "no").with_enhanced("5.1.1");
        assert_eq!(given.to_string(), "550 5.1.1 no");
    }

    #[test]
    fn io_errors_become_temporary_failures() {
        let full = Reply::from(io::Error::from_raw_os_error(28)); // ENOSPC
        assert_eq!(
            full.to_wire(true),
            b"452 4.3.1 Insufficient system storage\r\n"
        );
        let missing = Reply::from(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(
            missing.to_wire(true),
            b"451 4.3.0 Requested action aborted: local error in processing\r\n"
        );
    }

    /// RFC 5321 §4.2: `textstring` is HT, SP and printable US-ASCII; RFC 6531 lets an SMTPUTF8
    /// transaction's replies carry UTF-8, but never a control character (C0, DEL or C1).
    #[test]
    fn text_is_ascii_unless_the_transaction_is_smtputf8() {
        let r = Reply::new(550, "Grüße, 100% 用户\u{85}x");
        assert_eq!(r.to_wire(false), b"550 Gr??e, 100% ???x\r\n");
        let mut utf8 = Vec::new();
        r.write_to(&mut utf8, false, true);
        assert_eq!(utf8, "550 Grüße, 100% 用户?x\r\n".as_bytes());
    }

    /// `Reply-code [ SP textstring ] CRLF`: no space without a text after it, except the empty
    /// AUTH challenge, which RFC 4954 §4 writes `334 SP`.
    #[test]
    fn empty_text_has_no_trailing_space() {
        assert_eq!(Reply::new(250, "").to_wire(false), b"250\r\n");
        assert_eq!(Reply::new(250, "").to_wire(true), b"250 2.0.0\r\n");
        let parsed = Reply::parse("550 5.1.1").unwrap();
        assert_eq!(parsed.to_wire(true), b"550 5.1.1\r\n");
        assert_eq!(parsed.to_wire(false), b"550\r\n");
        assert_eq!(Reply::new(334, "").to_wire(true), b"334 \r\n");
        assert_eq!(Reply::new(250, "a\n").to_wire(false), b"250-a\r\n250\r\n");
    }

    #[test]
    fn multi_line() {
        let r = Reply::new(250, "host\nPIPELINING\nSIZE 10");
        assert_eq!(
            r.to_wire(false),
            b"250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
    }

    #[test]
    fn control_characters_are_neutralised() {
        let r = Reply::new(250, "a\r\x00b\x1b");
        assert_eq!(r.to_wire(false), b"250 a??b?\r\n");
        let r = Reply::new(250, "a\r\n250 fake");
        assert_eq!(r.to_wire(false), b"250-a\r\n250 250 fake\r\n");
    }

    #[test]
    fn invalid_code_becomes_451() {
        let go_ahead = Reply::new(354, "go ahead").into_final();
        assert_eq!(go_ahead.to_wire(true), b"451 4.0.0 go ahead\r\n");
        assert_eq!(Reply::new(550, "no").into_final().code(), 550);
        assert_eq!(Reply::new(999, "x").to_wire(false), b"451 x\r\n");
        assert_eq!(Reply::new(0, "x").to_wire(true), b"451 4.0.0 x\r\n");
    }

    #[test]
    fn parse_custom_error_strings() {
        type Parsed<'a> = Option<(u16, Option<&'a str>, &'a str)>;
        let cases: &[(&str, Parsed)] = &[
            ("550 5.1.1 unknown", Some((550, Some("5.1.1"), "unknown"))),
            ("550 unknown user", Some((550, None, "unknown user"))),
            ("451 4.3.0", Some((451, Some("4.3.0"), ""))),
            ("250-Ok", Some((250, None, "Ok"))),
            ("199 x", None),
            ("600 x", None),
            ("55", None),
            ("abc def", None),
            ("550 6.1.1 x", Some((550, None, "6.1.1 x"))),
        ];
        for (line, want) in cases {
            let got = Reply::parse(line);
            let got = got.as_ref().map(|r| (r.code(), r.enhanced(), r.text()));
            assert_eq!(got, *want, "{line}");
        }
    }

    #[test]
    fn enhanced_code_syntax() {
        for ok in ["2.0.0", "5.1.10", "4.999.999"] {
            assert!(is_enhanced_code(ok), "{ok}");
        }
        for bad in ["3.0.0", "2.0", "2.0.0.0", "2..0", "2.1000.0", "x.0.0", ""] {
            assert!(!is_enhanced_code(bad), "{bad}");
        }
    }

    /// Placeholders are filled from the template only: `%` elsewhere stays, and the client's
    /// text is copied verbatim, a `%h` or `%s` in it included.
    #[test]
    fn template_filling_reads_placeholders_from_the_template_only() {
        let cases = [
            ("<%s> Ok", "a@b", "<a@b> Ok"),
            ("%%s %h", "x", "%x mx"),
            ("%sh", "x%", "x%h"),
            ("%s%s%", "%h", "%h%h%"),
            ("100%% %s", "é", "100%% é"),
            ("%h %s %x", "", "mx  %x"),
            ("%", "y", "%"),
            ("Hi %s, I am %h", "%h%s", "Hi %h%s, I am mx"),
        ];
        for (template, arg, want) in cases {
            assert_eq!(
                fill_template(template, arg, "mx"),
                want,
                "{template:?} {arg:?}"
            );
        }
    }

    #[test]
    fn templates() {
        assert_eq!(fill_template("Hello %s", "client\r\n", "h"), "Hello client");
        assert_eq!(
            fill_template("%h ready", "", "mx.example"),
            "mx.example ready"
        );
        assert_eq!(fill_template("plain", "x", "h"), "plain");
        let long = "a".repeat(1000);
        assert_eq!(fill_template("%s", &long, "h").len(), 256);
    }
}
