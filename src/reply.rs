//! SMTP replies (RFC 5321 §4.2) with optional enhanced status codes (RFC 2034, RFC 3463).

use std::fmt;

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
    enhanced: Option<String>,
    text: String,
}

impl Reply {
    /// A reply with this code and text and no enhanced status code; when the session has
    /// ENHANCEDSTATUSCODES on, the class default (`2.0.0`, `4.0.0`, `5.0.0`) is sent.
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: None,
            text: text.into(),
        }
    }

    /// The same reply carrying an enhanced status code such as `"5.1.1"` (RFC 3463 §2).
    pub fn with_enhanced(mut self, enhanced: &str) -> Reply {
        if is_enhanced_code(enhanced) {
            self.enhanced = Some(enhanced.to_string());
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
        self.enhanced.as_deref()
    }

    /// The reply text (lines separated by `\n`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True for 2xx and 3xx replies.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// The bytes sent on the wire; `enhanced` is whether the session uses ENHANCEDSTATUSCODES.
    pub fn to_wire(&self, enhanced: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 16);
        self.write_to(&mut out, enhanced);
        out
    }

    /// Appends the wire form to `out` (RFC 5321 §4.2.1: `NNN-` on all lines but the last).
    pub(crate) fn write_to(&self, out: &mut Vec<u8>, enhanced: bool) {
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
            out.extend_from_slice(itoa3(code).as_bytes());
            out.push(sep);
            if let Some(status) = &status {
                out.extend_from_slice(status.as_bytes());
                out.push(b' ');
            }
            push_sanitized(out, line.trim_end_matches('\r'));
            out.extend_from_slice(b"\r\n");
        }
    }

    fn enhanced_for(&self, code: u16, enhanced: bool) -> Option<String> {
        // RFC 2034 §4: intermediate 3xx replies carry no status code.
        if !enhanced || (300..400).contains(&code) {
            return None;
        }
        match &self.enhanced {
            Some(e) if e.as_bytes()[0] == code_class(code) => Some(e.clone()),
            _ => Some(format!("{}.0.0", code_class(code) as char)),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.enhanced {
            Some(e) => write!(f, "{} {} {}", self.code, e, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

fn code_class(code: u16) -> u8 {
    b'0' + (code / 100) as u8
}

fn itoa3(code: u16) -> String {
    format!("{code:03}")
}

/// RFC 3463 §2: `class "." subject "." detail`, class 2, 4 or 5, subject 1-3 digits, detail 1-3 digits.
fn is_enhanced_code(s: &str) -> bool {
    let mut parts = s.split('.');
    let ok = |p: Option<&str>, max: usize| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let class = parts.next();
    matches!(class, Some("2" | "4" | "5"))
        && ok(parts.next(), 3)
        && ok(parts.next(), 3)
        && parts.next().is_none()
}

/// Control characters (and DEL) would let echoed client text break the reply framing.
fn push_sanitized(out: &mut Vec<u8>, text: &str) {
    for &b in text.as_bytes() {
        out.push(if b < 0x20 || b == 0x7f { b'?' } else { b });
    }
}

/// Replaces `%s` with `arg` and `%h` with `host` in a reply template (the placeholders of
/// [`SmtpMessages`](crate::SmtpMessages)). Control characters in `arg` are removed and it is
/// cut at 256 bytes, so a client cannot smuggle text into a reply.
pub fn fill_template(template: &str, arg: &str, host: &str) -> String {
    if !template.contains('%') {
        return template.to_string();
    }
    let arg: String = arg
        .chars()
        .filter(|c| !c.is_control())
        .scan(0usize, |len, c| {
            *len += c.len_utf8();
            (*len <= 256).then_some(c)
        })
        .collect();
    template.replace("%s", &arg).replace("%h", host)
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
