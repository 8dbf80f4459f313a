//! The path grammar of RFC 5321 §4.1.2 and §4.1.3, extended by RFC 6531 §3.3.

use super::PathError;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A path as parsed, before the limits and the SMTPUTF8 rule are applied.
pub(super) struct ParsedPath {
    pub(super) address: String,
    /// The whole `<...>` as received, for the path-length and non-ASCII checks.
    pub(super) path_len: usize,
    pub(super) ascii: bool,
    pub(super) local_len: usize,
    /// The longest domain in the path (mailbox or source route).
    pub(super) domain_len: usize,
}

/// Names a character for an error text without echoing raw controls or non-ASCII.
pub(super) fn describe(c: char) -> String {
    match c {
        ' ' => "SP".into(),
        '\t' => "TAB (U+0009)".into(),
        c if c.is_ascii_graphic() => format!("'{c}'"),
        c if c.is_control() => format!("control character U+{:04X}", c as u32),
        c => format!("non-ASCII character U+{:04X}", c as u32),
    }
}

/// Client text made safe for a reply: at most 32 characters, non-printables escaped.
pub(super) fn escape(s: &str) -> String {
    s.chars().take(32).flat_map(char::escape_default).collect()
}

/// A position in the path; it only ever moves by whole characters, so slicing cannot panic.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos..).and_then(|r| r.chars().next())
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    /// Consumes characters while `f` holds; returns how many bytes were consumed.
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        self.pos - start
    }
    fn slice(&self, from: usize) -> &str {
        self.s.get(from..self.pos).unwrap_or("")
    }
}

/// Characters a U-label may add to the ASCII grammar (RFC 6531 §3.3 `UTF8-non-ascii`).
fn utf8_non_ascii(c: char) -> bool {
    !c.is_ascii() && !c.is_control()
}

/// RFC 5322 §3.2.3 atext, as used by RFC 5321 §4.1.2 `Atom`.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || utf8_non_ascii(c)
}

/// `s` starts with `<`. Parses `"<>"`, `"<Postmaster>"` (RCPT only) or
/// `"<" [ A-d-l ":" ] Mailbox ">"`.
pub(super) fn parse_path(s: &str, rcpt: bool) -> Result<ParsedPath, PathError> {
    let syntax = PathError::Syntax;
    let simple = |address: &str, len| ParsedPath {
        address: address.to_string(),
        path_len: len,
        ascii: true,
        local_len: address.len(),
        domain_len: 0,
    };
    if s.starts_with("<>") {
        // RFC 5321 §4.1.2: "<>" is a Reverse-path only.
        return if rcpt {
            Err(PathError::NullRecipient)
        } else {
            Ok(simple("", 2))
        };
    }
    // RFC 5321 §4.1.1.3: "<Postmaster>" without a domain, RCPT only, case-insensitive.
    if rcpt
        && s.get(1..12)
            .is_some_and(|p| p.eq_ignore_ascii_case("postmaster>"))
    {
        return Ok(simple(s.get(1..11).unwrap_or("Postmaster"), 12));
    }
    let mut c = Cursor { s, pos: 1 };
    let mut domain_len = 0;
    if c.peek() == Some('@') {
        // A-d-l = At-domain *( "," At-domain ); the route is parsed then dropped
        // (RFC 5321 §4.1.1.3 and Appendix C: servers SHOULD ignore it).
        loop {
            c.bump();
            domain_len = domain_len.max(parse_domain(&mut c, "source route").map_err(syntax)?);
            match c.bump() {
                Some(',') if c.peek() == Some('@') => {}
                Some(':') => break,
                Some(',') => return Err(syntax("expected '@' after ',' in source route".into())),
                Some('>') => return Err(syntax("source route without ':' and mailbox".into())),
                Some(ch) => {
                    return Err(syntax(format!(
                        "{} not allowed in source route",
                        describe(ch)
                    )))
                }
                None => return Err(syntax("unterminated source route".into())),
            }
        }
    }
    let local_start = c.pos;
    if c.peek() == Some('"') {
        quoted_string(&mut c).map_err(syntax)?;
    } else {
        dot_string(&mut c).map_err(syntax)?;
    }
    let local_len = c.pos - local_start;
    match c.bump() {
        Some('@') => {}
        Some('>') | None => return Err(syntax("missing '@domain'".into())),
        Some(ch) => {
            return Err(syntax(format!(
                "{} not allowed in local part",
                describe(ch)
            )))
        }
    }
    let dom_len = if c.peek() == Some('[') {
        address_literal(&mut c).map_err(syntax)?
    } else {
        parse_domain(&mut c, "domain").map_err(syntax)?
    };
    let address = c.slice(local_start).to_string();
    match c.bump() {
        Some('>') => {}
        None => return Err(syntax("missing closing '>'".into())),
        Some(ch) => return Err(syntax(format!("{} not allowed in domain", describe(ch)))),
    }
    Ok(ParsedPath {
        address,
        path_len: c.pos,
        ascii: c.slice(0).is_ascii(),
        local_len,
        domain_len: domain_len.max(dom_len),
    })
}

/// Dot-string = Atom *("." Atom) (RFC 5321 §4.1.2).
fn dot_string(c: &mut Cursor<'_>) -> Result<(), String> {
    let start = c.pos;
    loop {
        if c.take_while(is_atext) == 0 {
            return Err(match c.peek() {
                Some('.') if c.pos == start => "local part starts with '.'".into(),
                Some('.') => "'..' in local part".into(),
                Some('@') | Some('>') | None if c.pos == start => "empty local part".into(),
                Some('@') | Some('>') | None => "local part ends with '.'".into(),
                Some(ch) => format!("{} not allowed in local part", describe(ch)),
            });
        }
        if c.peek() != Some('.') {
            return Ok(());
        }
        c.bump();
    }
}

/// Quoted-string = DQUOTE *QcontentSMTP DQUOTE (RFC 5321 §4.1.2); qtextSMTP gains UTF-8 with
/// SMTPUTF8 (RFC 6531 §3.3) but quoted-pairSMTP stays `%d92 %d32-126`.
fn quoted_string(c: &mut Cursor<'_>) -> Result<(), String> {
    c.bump();
    loop {
        match c.bump() {
            None => return Err("unterminated quoted local part".into()),
            Some('"') => return Ok(()),
            Some('\\') => match c.bump() {
                Some(' '..='~') => {}
                Some(ch) => {
                    return Err(format!(
                        "{} cannot be escaped in a quoted local part",
                        describe(ch)
                    ))
                }
                None => return Err("unterminated quoted local part".into()),
            },
            // qtextSMTP = %d32-33 / %d35-91 / %d93-126
            Some(' '..='!' | '#'..='[' | ']'..='~') => {}
            Some(ch) if utf8_non_ascii(ch) => {}
            Some(ch) => {
                return Err(format!(
                    "{} not allowed in a quoted local part",
                    describe(ch)
                ))
            }
        }
    }
}

/// Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str] (RFC 5321 §4.1.2),
/// or a U-label with SMTPUTF8 (RFC 6531 §3.3). Returns the length in octets.
fn parse_domain(c: &mut Cursor<'_>, what: &str) -> Result<usize, String> {
    let start = c.pos;
    loop {
        let label_start = c.pos;
        if c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '-' || utf8_non_ascii(ch)) == 0 {
            return Err(match c.peek() {
                Some('.') => format!("empty label in {what}"),
                None | Some('>' | ',' | ':') if c.pos == start => format!("missing {what}"),
                None | Some('>' | ',' | ':') => format!("{what} ends with '.'"),
                Some(ch) => format!("{} not allowed in {what}", describe(ch)),
            });
        }
        let label = c.slice(label_start);
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("{what} label starts or ends with '-'"));
        }
        if c.peek() != Some('.') {
            return Ok(c.pos - start);
        }
        c.bump();
    }
}

/// Whether all of `s` is an ASCII `Domain` or an `address-literal`, what an EHLO or HELO
/// argument must be (RFC 5321 §4.1.1.1), and at most 255 octets (§4.5.3.1.2).
pub(super) fn is_domain_or_address_literal(s: &str) -> bool {
    if !s.is_ascii() || s.is_empty() || s.len() > 255 {
        return false;
    }
    let mut c = Cursor { s, pos: 0 };
    let parsed = if s.starts_with('[') {
        address_literal(&mut c)
    } else {
        parse_domain(&mut c, "domain")
    };
    parsed.is_ok() && c.pos == s.len()
}

/// address-literal = "[" ( IPv4 / "IPv6:" IPv6 / Standardized-tag ":" 1*dcontent ) "]"
/// (RFC 5321 §4.1.3). Returns the length in octets including the brackets.
fn address_literal(c: &mut Cursor<'_>) -> Result<usize, String> {
    let start = c.pos;
    c.bump();
    // dcontent = %d33-90 / %d94-126 (no "[", "\", "]"); the literal is ASCII even with SMTPUTF8.
    let body_start = c.pos;
    c.take_while(|ch| matches!(ch, '!'..='Z' | '^'..='~'));
    let body = c.s.get(body_start..c.pos).unwrap_or("");
    match c.bump() {
        Some(']') => {}
        None => return Err("unterminated address literal".into()),
        Some(ch) => return Err(format!("{} not allowed in address literal", describe(ch))),
    }
    match body.split_once(':') {
        // "IPv6" is an ABNF string, so case-insensitive (RFC 5234 §2.3).
        Some((tag, v6)) if tag.eq_ignore_ascii_case("IPv6") => {
            v6.parse::<Ipv6Addr>()
                .map_err(|_| "invalid IPv6 address literal".to_string())?;
            // RFC 5321 §4.1.3 IPv6-comp / IPv6v4-comp: "::" stands for at least 2 groups, so
            // at most 6 groups (4 beside an IPv4 tail) may be written with it. Rust's parser
            // also takes `1:2:3:4:5:6:7::` (RFC 4291, "::" for one group).
            let groups = v6
                .split(':')
                .filter(|g| !g.is_empty() && !g.contains('.'))
                .count();
            let max = if v6.contains('.') { 4 } else { 6 };
            if v6.contains("::") && groups > max {
                return Err("invalid IPv6 address literal".into());
            }
        }
        // Standardized-tag = Ldh-str: letters, digits, hyphens, ending in a letter or digit.
        Some((tag, content)) => {
            let ldh = tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ldh || !tag.ends_with(|ch: char| ch.is_ascii_alphanumeric()) {
                return Err("invalid address literal tag".into());
            }
            if content.is_empty() {
                return Err("empty general address literal".into());
            }
        }
        None => {
            body.parse::<Ipv4Addr>()
                .map_err(|_| "invalid IPv4 address literal".to_string())?;
        }
    }
    Ok(c.pos - start)
}
