//! Parsing of the arguments of MAIL and RCPT: the reverse-/forward-path (RFC 5321 §4.1.2,
//! §4.1.1.2, §4.1.1.3, §3.3) and the ESMTP parameters that follow it.
//!
//! Everything here is a pure function on `&str`; the session loop calls [`parse_mail_from`] and
//! [`parse_rcpt_to`] and turns a [`PathError`] into a reply with [`PathError::reply`].
//!
//! Deliberate choices (each one is a trade-off between the grammar and real clients):
//! - `FROM:`/`TO:` are matched case-insensitively (RFC 5234 §2.3 makes ABNF strings
//!   case-insensitive). RFC 5321 §3.3 forbids spaces on either side of the colon, but many
//!   clients send `MAIL FROM: <a@b>`, so spaces *after* the colon are tolerated (as Postfix and
//!   go-smtp do); a space *before* it (`FROM :`) is an error because it no longer matches the
//!   keyword at all. Trailing spaces after the last parameter are tolerated too.
//! - Angle brackets are required (RFC 5321 §4.1.2 `Path = "<" ... ">"`). Accepting a bare
//!   address would make the end of the path ambiguous (a quoted local part may contain spaces and
//!   `>`), which is how lenient parsers mangle odd RCPT forms (Indy issue #35).
//! - Only SP separates parameters (RFC 5321 §4.1.2 `Mail-parameters`); TAB, NUL and every other
//!   control character is an error wherever it appears, and error texts never echo raw control
//!   characters.
//! - IPv4 literals are validated with [`std::net::Ipv4Addr`], which also refuses leading zeros
//!   (`[01.2.3.4]`) that the `Snum` rule of RFC 5321 §4.1.3 would allow but that some stacks
//!   read as octal; IPv6 literals use [`std::net::Ipv6Addr`] (RFC 4291 text forms).
//! - With SMTPUTF8, non-ASCII characters are accepted wherever RFC 6531 §3.3 extends the grammar
//!   (atext, qtextSMTP, sub-domain as U-label, esmtp-value); U-labels are not checked against
//!   IDNA2008 (that needs Unicode tables this parser does not carry). C1 control
//!   characters (U+0080..U+009F) are refused like the C0 ones.

use std::fmt;

mod params;
mod path;
#[cfg(test)]
mod tests;

use params::{
    bad, check_value_ascii, decode_xtext, need_value, notify_value, orcpt_value, size_value,
    split_params, RawParam,
};
use path::{describe, parse_path, ParsedPath};

/// Whether `name` is an ASCII domain (`mail.example.org`) or an address literal
/// (`[192.0.2.1]`, `[IPv6:2001:db8::1]`): what the argument of EHLO and HELO must be
/// (RFC 5321 §4.1.1.1, §4.1.3). The built-in HELO/EHLO do not refuse other names (many clients
/// send names with `_` in them), but an application may, and [`trace::received`](crate::trace::received)
/// does not trust them as a domain.
///
/// ```
/// use indy_smtp::address::is_domain_or_address_literal;
/// assert!(is_domain_or_address_literal("mail.example.org"));
/// assert!(is_domain_or_address_literal("[IPv6:2001:db8::1]"));
/// assert!(!is_domain_or_address_literal("my laptop"));
/// assert!(!is_domain_or_address_literal("192.0.2.1]"));
/// ```
pub fn is_domain_or_address_literal(name: &str) -> bool {
    path::is_domain_or_address_literal(name)
}

/// Length limits for paths. The defaults are the minimums of RFC 5321 §4.5.3.1, which a
/// server may raise ("accept longer if configured").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathLimits {
    /// Maximum local-part length in octets (RFC 5321 §4.5.3.1.1: 64).
    pub local_part: usize,
    /// Maximum domain length in octets (RFC 5321 §4.5.3.1.2: 255).
    pub domain: usize,
    /// Maximum path length in octets including `<`, `>` and any source route
    /// (RFC 5321 §4.5.3.1.3: 256).
    pub path: usize,
}

impl PathLimits {
    /// The limits of RFC 5321 §4.5.3.1.
    pub const RFC5321: PathLimits = PathLimits {
        local_part: 64,
        domain: 255,
        path: 256,
    };
}

impl Default for PathLimits {
    fn default() -> Self {
        PathLimits::RFC5321
    }
}

/// One ESMTP parameter of MAIL or RCPT, as received (RFC 5321 §4.1.2 `esmtp-param`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsmtpParam {
    /// The keyword, upper-cased (keywords are case-insensitive, RFC 5321 §2.4).
    pub keyword: String,
    /// The raw value after `=` (not xtext-decoded), or `None` for a bare keyword.
    pub value: Option<String>,
    /// `true` for the parameters this module understands; the server sets it when an event
    /// claims an unknown one. Unclaimed parameters are answered `555 5.5.4` (RFC 5321 §4.1.1.11).
    pub claimed: bool,
}

/// The `BODY=` value of MAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// `BODY=7BIT` (RFC 6152 §2).
    SevenBit,
    /// `BODY=8BITMIME` (RFC 6152 §2).
    EightBitMime,
    /// `BODY=BINARYMIME` (RFC 3030 §3).
    BinaryMime,
}

/// The DSN `RET=` value of MAIL (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// Return the full message in a DSN.
    Full,
    /// Return only the headers.
    Hdrs,
}

/// The DSN `NOTIFY=` value of RCPT (RFC 3461 §4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notify {
    /// `NEVER`: no DSN at all (never combined with the others).
    pub never: bool,
    /// `SUCCESS` was listed.
    pub success: bool,
    /// `FAILURE` was listed.
    pub failure: bool,
    /// `DELAY` was listed.
    pub delay: bool,
}

/// The DSN `ORCPT=` value of RCPT (RFC 3461 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orcpt {
    /// The address type as received, e.g. `rfc822` or `utf-8`; compare case-insensitively.
    pub addr_type: String,
    /// The original recipient, xtext-decoded.
    pub address: String,
}

/// A parsed `MAIL FROM:` command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailFrom {
    /// `""` for the null reverse-path `<>`; otherwise `local@domain` as received (a quoted
    /// local part keeps its quotes and backslashes), with any source route dropped.
    pub address: String,
    /// Every parameter in order, as received (keyword upper-cased).
    pub params: Vec<EsmtpParam>,
    /// `SIZE=` (RFC 1870).
    pub size: Option<u64>,
    /// `BODY=` (RFC 6152, RFC 3030).
    pub body: Option<BodyType>,
    /// The `SMTPUTF8` parameter was present (RFC 6531 §3.4).
    pub smtputf8: bool,
    /// DSN `RET=` (RFC 3461 §4.3).
    pub ret: Option<Ret>,
    /// DSN `ENVID=`, xtext-decoded (RFC 3461 §4.4).
    pub envid: Option<String>,
    /// `AUTH=`, xtext-decoded; `"<>"` means the client does not know the identity
    /// (RFC 4954 §5).
    pub auth: Option<String>,
}

/// A parsed `RCPT TO:` command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RcptTo {
    /// `local@domain` as received (source route dropped), or the bare `Postmaster` as sent.
    pub address: String,
    /// Every parameter in order, as received (keyword upper-cased).
    pub params: Vec<EsmtpParam>,
    /// DSN `NOTIFY=` (RFC 3461 §4.1).
    pub notify: Option<Notify>,
    /// DSN `ORCPT=` (RFC 3461 §4.2).
    pub orcpt: Option<Orcpt>,
}

fn unclaimed(params: &[EsmtpParam]) -> impl Iterator<Item = &EsmtpParam> {
    params.iter().filter(|p| !p.claimed)
}

fn claim_in<'a>(params: &'a mut [EsmtpParam], keyword: &str) -> Option<&'a str> {
    let p = params
        .iter_mut()
        .find(|p| p.keyword.eq_ignore_ascii_case(keyword))?;
    p.claimed = true;
    Some(p.value.as_deref().unwrap_or(""))
}

impl MailFrom {
    /// `true` for `MAIL FROM:<>` (RFC 5321 §4.5.5: bounces use the null reverse-path).
    pub fn is_null_sender(&self) -> bool {
        self.address.is_empty()
    }

    /// The parameters nobody understood yet; the server answers `555 5.5.4` if any remain.
    pub fn unclaimed_params(&self) -> impl Iterator<Item = &EsmtpParam> {
        unclaimed(&self.params)
    }

    /// Marks the parameter `keyword` (case-insensitive) as claimed and returns its raw value:
    /// `None` if absent, `Some("")` for a bare keyword (an empty value is a syntax error, so
    /// `""` is unambiguous).
    pub fn claim(&mut self, keyword: &str) -> Option<&str> {
        claim_in(&mut self.params, keyword)
    }
}

impl RcptTo {
    /// `true` for the domain-less `RCPT TO:<Postmaster>` (any case), which every server must
    /// accept (RFC 5321 §4.1.1.3, §4.5.1).
    pub fn is_postmaster(&self) -> bool {
        self.address.eq_ignore_ascii_case("postmaster")
    }

    /// `true` for `<Postmaster>` or `<postmaster@domain>` (local part case-insensitive,
    /// RFC 5321 §4.5.1) where `our_domain` is one of ours, compared case-insensitively.
    pub fn is_postmaster_for(&self, our_domain: &str) -> bool {
        self.is_postmaster()
            || (local_part(&self.address).eq_ignore_ascii_case("postmaster")
                && domain(&self.address).eq_ignore_ascii_case(our_domain))
    }

    /// The parameters nobody understood yet; the server answers `555 5.5.4` if any remain.
    pub fn unclaimed_params(&self) -> impl Iterator<Item = &EsmtpParam> {
        unclaimed(&self.params)
    }

    /// Marks the parameter `keyword` as claimed and returns its raw value (see
    /// [`MailFrom::claim`]).
    pub fn claim(&mut self, keyword: &str) -> Option<&str> {
        claim_in(&mut self.params, keyword)
    }
}

/// Why a MAIL or RCPT argument was refused; [`PathError::reply`] gives the SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// The argument does not start with `FROM:` / `TO:`.
    MissingKeyword,
    /// The path is missing or not enclosed in `<` `>`.
    MissingAngleBrackets,
    /// The path breaks the Mailbox grammar; the reason names the problem (no raw controls).
    Syntax(String),
    /// `RCPT TO:<>`: the null path is only a reverse-path (RFC 5321 §4.1.2 `Forward-path`).
    NullRecipient,
    /// The local part is longer than the limit (RFC 5321 §4.5.3.1.1).
    LocalPartTooLong {
        /// Length received, in octets.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A domain (of the mailbox or of the source route) is too long (RFC 5321 §4.5.3.1.2).
    DomainTooLong {
        /// Length received, in octets.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The whole path is too long (RFC 5321 §4.5.3.1.3).
    PathTooLong {
        /// Length received, in octets, including the brackets.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Non-ASCII in the path while SMTPUTF8 is not in effect (RFC 6531 §3.4, §3.5).
    NonAsciiWithoutSmtpUtf8,
    /// The text after the path is not `SP` followed by parameters.
    ParameterSyntax(String),
    /// A parameter's keyword or value is malformed; `keyword` is escaped and shortened.
    BadParameter {
        /// The keyword as received (escaped, at most 32 characters).
        keyword: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same keyword appeared twice (upper-cased).
    DuplicateParameter(String),
    /// `SIZE=` is syntactically valid (RFC 1870 §3 `1*20DIGIT`) but does not fit in a `u64`.
    SizeTooLarge,
}

impl PathError {
    /// (basic code, enhanced code, human text) for this error; `for_rcpt` selects the RCPT
    /// wording and the recipient enhanced codes.
    ///
    /// Codes: command syntax is `501` (RFC 5321 §4.2.2) with `5.5.4` "invalid command
    /// arguments" (RFC 3463 §3.6); a malformed sender/recipient is `501` with `5.1.7`/`5.1.3`
    /// (RFC 3463 §3.2). For over-long parts we follow RFC 5321 §4.5.3.1, which gives
    /// "501 Path too long" as the example reply, with the same `5.1.7`/`5.1.3` detail because
    /// the address itself is unusable. Non-ASCII without SMTPUTF8 is `553 5.6.7`
    /// (RFC 6531 §3.5). An unrepresentable SIZE is `552 5.3.4` (RFC 1870 §6.1, RFC 3463 §3.4).
    ///
    /// ```
    /// use indy_smtp::address::parse_mail_from;
    /// let err = parse_mail_from("FROM:<a b@example.com>", false).unwrap_err();
    /// assert_eq!(err.reply(false).0, 501);
    /// assert_eq!(err.reply(false).1, "5.1.7");
    /// ```
    pub fn reply(&self, for_rcpt: bool) -> (u16, &'static str, String) {
        let usage = if for_rcpt {
            "Syntax: RCPT TO:<address>"
        } else {
            "Syntax: MAIL FROM:<address>"
        };
        let (who, addr_code) = if for_rcpt {
            ("recipient", "5.1.3")
        } else {
            ("sender", "5.1.7")
        };
        match self {
            PathError::MissingKeyword => (501, "5.5.4", usage.to_string()),
            PathError::MissingAngleBrackets => {
                (501, "5.5.4", format!("{usage} (angle brackets required)"))
            }
            PathError::Syntax(r) => (501, addr_code, format!("Bad {who} address syntax: {r}")),
            PathError::NullRecipient => (501, "5.1.3", "Null recipient <> not allowed".into()),
            PathError::LocalPartTooLong { .. }
            | PathError::DomainTooLong { .. }
            | PathError::PathTooLong { .. } => (501, addr_code, format!("Path too long: {self}")),
            PathError::NonAsciiWithoutSmtpUtf8 => (
                553,
                "5.6.7",
                format!("Non-ASCII addresses not permitted for that {who} without SMTPUTF8"),
            ),
            PathError::ParameterSyntax(_)
            | PathError::BadParameter { .. }
            | PathError::DuplicateParameter(_) => (501, "5.5.4", self.to_string()),
            PathError::SizeTooLarge => (
                552,
                "5.3.4",
                // Also when no maximum is set: the value is past what a u64 can count.
                "Message size exceeds what this server can accept".into(),
            ),
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::MissingKeyword => f.write_str("missing FROM:/TO: keyword"),
            PathError::MissingAngleBrackets => f.write_str("path must be enclosed in <>"),
            PathError::Syntax(r) => write!(f, "bad address syntax: {r}"),
            PathError::NullRecipient => f.write_str("null recipient <> not allowed"),
            PathError::LocalPartTooLong { len, max } => {
                write!(f, "local part is {len} octets, limit {max}")
            }
            PathError::DomainTooLong { len, max } => {
                write!(f, "domain is {len} octets, limit {max}")
            }
            PathError::PathTooLong { len, max } => write!(f, "path is {len} octets, limit {max}"),
            PathError::NonAsciiWithoutSmtpUtf8 => f.write_str("non-ASCII address without SMTPUTF8"),
            PathError::ParameterSyntax(r) => write!(f, "Syntax error in parameters: {r}"),
            PathError::BadParameter { keyword, reason } => {
                write!(f, "Bad {keyword} parameter: {reason}")
            }
            PathError::DuplicateParameter(k) => write!(f, "Duplicate {k} parameter"),
            PathError::SizeTooLarge => f.write_str("SIZE value too large"),
        }
    }
}

impl std::error::Error for PathError {}

/// Parses everything after `MAIL` (e.g. `"FROM:<a@b> SIZE=10"`) with the RFC 5321 limits.
///
/// `utf8_allowed` is true when SMTPUTF8 is enabled on the server; UTF-8 in the path is then
/// valid only if this command carries the SMTPUTF8 parameter (RFC 6531 §3.4). The SMTPUTF8
/// parameter is only claimed when `utf8_allowed`, so a server that does not offer the
/// extension answers it with 555 like any unknown parameter.
///
/// ```
/// use indy_smtp::address::parse_mail_from;
/// let m = parse_mail_from("FROM:<a@example.com> SIZE=10", false).unwrap();
/// assert_eq!(m.address, "a@example.com");
/// assert_eq!(m.size, Some(10));
/// ```
pub fn parse_mail_from(args: &str, utf8_allowed: bool) -> Result<MailFrom, PathError> {
    parse_mail_from_with_limits(args, utf8_allowed, &PathLimits::RFC5321)
}

/// [`parse_mail_from`] with configurable length limits.
pub fn parse_mail_from_with_limits(
    args: &str,
    utf8_allowed: bool,
    limits: &PathLimits,
) -> Result<MailFrom, PathError> {
    let (path, raw) = parse_command(args, "FROM:", false)?;
    // RFC 6531 §3.4: UTF-8 is in effect only when offered *and* requested on this MAIL.
    let has_utf8 = raw.iter().any(|p| p.upper == "SMTPUTF8");
    let utf8 = utf8_allowed && has_utf8;
    check_path(&path, limits, utf8)?;
    let mut m = MailFrom {
        address: path.address,
        params: Vec::with_capacity(raw.len()),
        size: None,
        body: None,
        smtputf8: has_utf8,
        ret: None,
        envid: None,
        auth: None,
    };
    for p in &raw {
        check_value_ascii(p, utf8)?;
        let claimed = match p.upper.as_str() {
            "SIZE" => {
                m.size = Some(size_value(p)?);
                true
            }
            "BODY" => {
                m.body = Some(match need_value(p)?.to_ascii_uppercase().as_str() {
                    "7BIT" => BodyType::SevenBit,
                    "8BITMIME" => BodyType::EightBitMime,
                    "BINARYMIME" => BodyType::BinaryMime,
                    // RFC 6152 §2 and RFC 3030 §3 define exactly these three.
                    _ => return Err(bad(p, "must be 7BIT, 8BITMIME or BINARYMIME")),
                });
                true
            }
            "SMTPUTF8" => {
                // RFC 6531 §3.4: the parameter has no value.
                if p.value.is_some() {
                    return Err(bad(p, "takes no value"));
                }
                utf8_allowed
            }
            "RET" => {
                m.ret = Some(match need_value(p)?.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Hdrs,
                    _ => return Err(bad(p, "must be FULL or HDRS (RFC 3461 section 4.3)")),
                });
                true
            }
            "ENVID" => {
                let v = need_value(p)?;
                // RFC 3461 §4.4: at most 100 characters, applied to the xtext as sent.
                if v.len() > 100 {
                    return Err(bad(p, "longer than 100 characters (RFC 3461 section 4.4)"));
                }
                let d = decode_xtext(v).map_err(|r| bad(p, &r))?;
                // RFC 3461 §4.4: the decoded ENVID is printable US-ASCII.
                if !d.bytes().all(|b| (b' '..=b'~').contains(&b)) {
                    return Err(bad(
                        p,
                        "decoded value is not printable US-ASCII (RFC 3461 section 4.4)",
                    ));
                }
                m.envid = Some(d);
                true
            }
            "AUTH" => {
                // RFC 4954 §5: xtext or "<>"; "<>" is valid xtext and decodes to itself.
                m.auth = Some(decode_xtext(need_value(p)?).map_err(|r| bad(p, &r))?);
                true
            }
            _ => false,
        };
        m.params.push(p.to_param(claimed));
    }
    Ok(m)
}

/// Parses everything after `RCPT` (e.g. `"TO:<a@b> NOTIFY=NEVER"`) with the RFC 5321 limits.
/// `utf8_allowed` is true when the transaction's MAIL carried SMTPUTF8 (RFC 6531 §3.4).
///
/// ```
/// use indy_smtp::address::parse_rcpt_to;
/// let r = parse_rcpt_to("TO:<Postmaster>", false).unwrap();
/// assert!(r.is_postmaster());
/// ```
pub fn parse_rcpt_to(args: &str, utf8_allowed: bool) -> Result<RcptTo, PathError> {
    parse_rcpt_to_with_limits(args, utf8_allowed, &PathLimits::RFC5321)
}

/// [`parse_rcpt_to`] with configurable length limits.
pub fn parse_rcpt_to_with_limits(
    args: &str,
    utf8_allowed: bool,
    limits: &PathLimits,
) -> Result<RcptTo, PathError> {
    let (path, raw) = parse_command(args, "TO:", true)?;
    check_path(&path, limits, utf8_allowed)?;
    let mut r = RcptTo {
        address: path.address,
        params: Vec::with_capacity(raw.len()),
        notify: None,
        orcpt: None,
    };
    for p in &raw {
        check_value_ascii(p, utf8_allowed)?;
        let claimed = match p.upper.as_str() {
            "NOTIFY" => {
                r.notify = Some(notify_value(p)?);
                true
            }
            "ORCPT" => {
                r.orcpt = Some(orcpt_value(p, utf8_allowed)?);
                true
            }
            _ => false,
        };
        r.params.push(p.to_param(claimed));
    }
    Ok(r)
}

/// The local part of `address`: everything before the last `@` outside quotes and address
/// literals, or the whole string when there is none (e.g. `Postmaster`).
pub fn local_part(address: &str) -> &str {
    match split_at(address) {
        Some(i) => address.get(..i).unwrap_or(address),
        None => address,
    }
}

/// The domain of `address` (after the last `@` outside quotes and address literals), or `""`.
pub fn domain(address: &str) -> &str {
    match split_at(address) {
        Some(i) => address.get(i + 1..).unwrap_or(""),
        None => "",
    }
}

/// Byte index of the separating `@`. Brackets are tracked because a general address literal
/// may contain `@` (RFC 5321 §4.1.3 `dcontent`).
fn split_at(address: &str) -> Option<usize> {
    let (mut quoted, mut escaped, mut bracket, mut at) = (false, false, false, None);
    for (i, b) in address.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' if !bracket => quoted = !quoted,
            b'[' if !quoted => bracket = true,
            b']' if !quoted => bracket = false,
            b'@' if !quoted && !bracket => at = Some(i),
            _ => {}
        }
    }
    at
}

// Command level: keyword, path, parameters.

fn parse_command<'a>(
    args: &'a str,
    keyword: &str,
    rcpt: bool,
) -> Result<(ParsedPath, Vec<RawParam<'a>>), PathError> {
    let s = args.trim_start_matches(' ');
    let head = s.as_bytes().get(..keyword.len());
    if !head.is_some_and(|h| h.eq_ignore_ascii_case(keyword.as_bytes())) {
        return Err(PathError::MissingKeyword);
    }
    // The keyword is ASCII and matched byte for byte, so this is a char boundary.
    let s = s.get(keyword.len()..).unwrap_or("").trim_start_matches(' ');
    if !s.starts_with('<') {
        return Err(PathError::MissingAngleBrackets);
    }
    let path = parse_path(s, rcpt)?;
    let rest = s.get(path.path_len..).unwrap_or("");
    match rest.chars().next() {
        None | Some(' ') => {}
        // RFC 5321 §4.1.1.2: `Reverse-path [SP Mail-parameters]`, so `<a@b>SIZE=1` is refused.
        Some(c) => {
            return Err(PathError::ParameterSyntax(format!(
                "expected SP after the path, found {}",
                describe(c)
            )))
        }
    }
    Ok((path, split_params(rest)?))
}

fn check_path(path: &ParsedPath, limits: &PathLimits, utf8: bool) -> Result<(), PathError> {
    if path.local_len > limits.local_part {
        return Err(PathError::LocalPartTooLong {
            len: path.local_len,
            max: limits.local_part,
        });
    }
    if path.domain_len > limits.domain {
        return Err(PathError::DomainTooLong {
            len: path.domain_len,
            max: limits.domain,
        });
    }
    if path.path_len > limits.path {
        return Err(PathError::PathTooLong {
            len: path.path_len,
            max: limits.path,
        });
    }
    if !utf8 && !path.ascii {
        return Err(PathError::NonAsciiWithoutSmtpUtf8);
    }
    Ok(())
}
