//! The pure SASL parts of SMTP AUTH (RFC 4954): mechanism names, the base64
//! framing of 334 challenges and client responses, and the PLAIN (RFC 4616),
//! LOGIN (draft-murchison-sasl-login) and CRAM-MD5 (RFC 2195) exchanges.
//!
//! Nothing here does I/O: the session reads a response line, hands it to
//! [`decode_response`], then to the mechanism's parser, and maps a
//! [`SaslError`] to the reply documented on each variant.
//!
//! ```
//! use indy_smtp::auth::{decode_response, parse_plain, Mechanism};
//!
//! assert_eq!(Mechanism::from_name("plain"), Some(Mechanism::Plain));
//! let bytes = decode_response(b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm").unwrap();
//! let creds = parse_plain(&bytes).unwrap();
//! assert_eq!(creds.authcid, "tim");
//! assert_eq!(creds.password, "tanstaaftanstaaf");
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::Md5;

#[cfg(test)]
mod tests;

/// RFC 4616 §2: "The server MUST be capable of accepting authcid, authzid and
/// passwd productions of up to and including 255 octets"; we accept exactly
/// that much and no more, so that a handler never sees unbounded credentials.
pub const MAX_CREDENTIAL_LEN: usize = 255;

/// A SASL mechanism this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): authzid, authcid and password in one message.
    Plain,
    /// `LOGIN` (draft-murchison-sasl-login): username and password in two steps.
    Login,
    /// `CRAM-MD5` (RFC 2195): HMAC-MD5 over a server challenge.
    CramMd5,
}

impl Mechanism {
    /// All mechanisms, strongest first, in the order an EHLO `AUTH` keyword
    /// would advertise them (RFC 4954 §3 does not mandate an order; clients
    /// commonly pick the first one they support).
    pub const ALL: [Mechanism; 3] = [Mechanism::CramMd5, Mechanism::Plain, Mechanism::Login];

    /// Looks a mechanism up by its SASL name.
    ///
    /// RFC 4954 §4 / RFC 4422 §3.1: mechanism names are case-insensitive.
    ///
    /// ```
    /// use indy_smtp::auth::Mechanism;
    /// assert_eq!(Mechanism::from_name("Cram-MD5"), Some(Mechanism::CramMd5));
    /// assert_eq!(Mechanism::from_name("GSSAPI"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The canonical (upper-case) SASL name, as advertised after EHLO
    /// (RFC 4954 §3).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
        }
    }

    /// Whether the password travels in the clear (only base64-wrapped).
    ///
    /// RFC 4954 §4 and §14: such mechanisms must not be offered or accepted
    /// over an unprotected channel unless the administrator allows it.
    pub fn is_plaintext(self) -> bool {
        matches!(self, Mechanism::Plain | Mechanism::Login)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a SASL exchange step failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslError {
    /// The client sent `*`: RFC 4954 §4 requires `501 5.7.0` and the end of
    /// the exchange.
    Cancelled,
    /// The response was not valid base64: RFC 4954 §4 requires `501 5.5.2`.
    BadBase64,
    /// The decoded bytes do not follow the mechanism's grammar. A syntax
    /// problem is `501 5.5.2` (RFC 4954 §4); the session may instead answer
    /// `535 5.7.8` (RFC 4954 §6) so as not to tell an attacker which part was
    /// wrong. The text says what was wrong, for logs only.
    Malformed(&'static str),
    /// A response line longer than the server reads: RFC 4954 §6 answers
    /// `500 5.5.6 Authentication Exchange line is too long`.
    LineTooLong,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslError::Cancelled => f.write_str("authentication cancelled by the client"),
            SaslError::BadBase64 => f.write_str("invalid base64 in SASL response"),
            SaslError::Malformed(why) => write!(f, "malformed SASL response: {why}"),
            SaslError::LineTooLong => f.write_str("SASL response line too long"),
        }
    }
}

impl std::error::Error for SaslError {}

/// Decodes one client response line (without its CRLF).
///
/// * `*` cancels the exchange (RFC 4954 §4) → [`SaslError::Cancelled`].
/// * `=` is an empty initial response (RFC 4954 §4), decoded as no bytes.
/// * An empty line is the base64 encoding of no bytes, so it also decodes to
///   no bytes (the session decides whether an empty response is acceptable).
/// * Anything else must be strict RFC 4648 §4 base64: standard alphabet,
///   padding required, no whitespace, no non-zero trailing bits.
///
/// ```
/// use indy_smtp::auth::{decode_response, SaslError};
/// assert_eq!(decode_response(b"dGlt").unwrap(), b"tim");
/// assert_eq!(decode_response(b"*"), Err(SaslError::Cancelled));
/// assert_eq!(decode_response(b"dGk"), Err(SaslError::BadBase64));
/// ```
pub fn decode_response(line: &[u8]) -> Result<Vec<u8>, SaslError> {
    match line {
        b"*" => Err(SaslError::Cancelled),
        b"=" => Ok(Vec::new()),
        // The STANDARD engine requires canonical padding and rejects
        // whitespace and stray trailing bits, as RFC 4954 §4 asks for
        // ("the client ... MUST ... base64").
        _ => STANDARD.decode(line).map_err(|_| SaslError::BadBase64),
    }
}

/// Encodes challenge bytes for a `334` continuation line (RFC 4954 §4).
///
/// An empty challenge encodes to the empty string, so the line is `334 `
/// followed by nothing, which is what RFC 4954 §4 specifies for PLAIN without
/// an initial response.
///
/// ```
/// use indy_smtp::auth::encode_challenge;
/// assert_eq!(encode_challenge(b"Username:"), "VXNlcm5hbWU6");
/// assert_eq!(encode_challenge(b""), "");
/// ```
pub fn encode_challenge(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Credentials carried by one SASL PLAIN message (RFC 4616 §2).
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// Authorization identity: who the client wants to act as. `None` when
    /// the field is empty, meaning "the same as `authcid`" (RFC 4616 §2).
    pub authzid: Option<String>,
    /// Authentication identity: whose password this is.
    pub authcid: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for PlainCredentials {
    // A derived Debug would leak the password into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses a decoded PLAIN message.
///
/// RFC 4616 §2: `message = [authzid] UTF8NUL authcid UTF8NUL passwd`, each
/// part UTF-8 without NUL; `authcid` and `passwd` are `1*SAFE`, so they must
/// not be empty; each part is limited to [`MAX_CREDENTIAL_LEN`] octets.
///
/// ```
/// use indy_smtp::auth::parse_plain;
/// let creds = parse_plain(b"Ursel\0Kurt\0xipj3plmq").unwrap();
/// assert_eq!(creds.authzid.as_deref(), Some("Ursel"));
/// assert_eq!(creds.authcid, "Kurt");
/// assert!(parse_plain(b"Kurt\0xipj3plmq").is_err());
/// // SASLprep (RFC 4013) prohibits control characters: no line break in a user name.
/// assert!(parse_plain(b"\0bob\r\nX-Evil: 1\0pw").is_err());
/// ```
pub fn parse_plain(decoded: &[u8]) -> Result<PlainCredentials, SaslError> {
    let mut parts = decoded.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // RFC 4616 §2: exactly two NUL separators; more would make the
        // password ambiguous since passwd is 1*SAFE (no NUL).
        return Err(SaslError::Malformed(
            "PLAIN message needs exactly two NUL separators",
        ));
    };
    if authcid.is_empty() {
        return Err(SaslError::Malformed("empty authcid")); // RFC 4616 §2: 1*SAFE
    }
    if password.is_empty() {
        return Err(SaslError::Malformed("empty password")); // RFC 4616 §2: 1*SAFE
    }
    let authzid = if authzid.is_empty() {
        None
    } else {
        Some(identity(authzid, "authzid is not UTF-8")?)
    };
    Ok(PlainCredentials {
        authzid,
        authcid: identity(authcid, "authcid is not UTF-8")?,
        password: credential_utf8(password, "password is not UTF-8")?,
    })
}

/// UTF-8 check plus the RFC 4616 §2 length limit shared by every field.
fn credential_utf8(bytes: &[u8], not_utf8: &'static str) -> Result<String, SaslError> {
    if bytes.len() > MAX_CREDENTIAL_LEN {
        return Err(SaslError::Malformed("credential longer than 255 octets"));
    }
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| SaslError::Malformed(not_utf8))
}

/// [`credential_utf8`] for an identity (a user name): no ASCII control character either.
/// SASLprep (RFC 4013 §2.3, RFC 3454 C.2.1), which RFC 4616 §2 asks servers to apply,
/// prohibits them, and a CR or LF would reach `thread.username`, and from there logs and
/// headers.
fn identity(bytes: &[u8], not_utf8: &'static str) -> Result<String, SaslError> {
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(SaslError::Malformed("control character in a user name"));
    }
    credential_utf8(bytes, not_utf8)
}

/// Validates one decoded LOGIN field (the username or the password).
///
/// draft-murchison-sasl-login §2 sends each as a bare UTF-8 string; ASCII
/// control characters (NUL, CR, LF, ...) are refused in both, as SASLprep
/// prohibits them (RFC 4013 §2.3) and they could smuggle line breaks into logs
/// or headers (standards.md: never echo client bytes with CR/LF). Empty fields
/// and fields over [`MAX_CREDENTIAL_LEN`] octets are refused like their PLAIN
/// counterparts (RFC 4616 §2).
///
/// ```
/// use indy_smtp::auth::parse_login_field;
/// assert_eq!(parse_login_field(b"tim").unwrap(), "tim");
/// assert!(parse_login_field(b"tim\r\n").is_err());
/// ```
pub fn parse_login_field(decoded: &[u8]) -> Result<String, SaslError> {
    if decoded.is_empty() {
        return Err(SaslError::Malformed("empty LOGIN field"));
    }
    identity(decoded, "LOGIN field is not UTF-8")
}

/// Distinguishes challenges issued within one process, even within the same
/// clock tick.
static CHALLENGE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Makes a fresh CRAM-MD5 challenge `<unique.timestamp@hostname>`.
///
/// RFC 2195 §2: the challenge has the form of an RFC 822 msg-id and "MUST"
/// be different each time, or a recorded response could be replayed. The
/// unique part combines the process id (distinct across concurrent
/// processes) with a process-wide counter (distinct within a process); the
/// timestamp in nanoseconds keeps a restarted process with a recycled pid
/// from repeating earlier challenges.
///
/// Characters of `hostname` that cannot appear in a domain or address
/// literal are dropped, so a misconfigured name cannot break the msg-id
/// syntax or the 334 line.
///
/// ```
/// use indy_smtp::auth::cram_md5_challenge;
/// let c = cram_md5_challenge("mail.example.org");
/// assert!(c.starts_with('<') && c.ends_with("@mail.example.org>"));
/// assert_ne!(c, cram_md5_challenge("mail.example.org"));
/// ```
pub fn cram_md5_challenge(hostname: &str) -> String {
    let count = CHALLENGE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut host: String = hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        .collect();
    if host.is_empty() {
        host.push_str("localhost");
    }
    format!("<{}.{count}.{nanos}@{host}>", std::process::id())
}

/// Checks a decoded CRAM-MD5 response against the challenge that was sent.
///
/// RFC 2195 §2: the response is `username SP digest`, where the digest is
/// HMAC-MD5 (RFC 2104) keyed with the shared secret over the challenge, as
/// 32 hex digits. `secret_for` looks the secret up by username. Returns the
/// username on success, `None` for an unknown user, a wrong digest or a
/// malformed response (all of which the session answers with `535 5.7.8`,
/// RFC 4954 §6).
///
/// The digest comparison runs in constant time, and an unknown user costs the
/// same HMAC as a known one, so timing reveals neither the digest nor which
/// users exist.
///
/// ```
/// use indy_smtp::auth::cram_md5_verify;
/// let user = cram_md5_verify(
///     "<1896.697170952@postoffice.reston.mci.net>",
///     b"tim b913a602c7eda7a495b4e6e7334d3890",
///     &|u: &str| (u == "tim").then(|| "tanstaaftanstaaf".to_string()),
/// );
/// assert_eq!(user.as_deref(), Some("tim"));
/// ```
pub fn cram_md5_verify(
    challenge: &str,
    decoded_response: &[u8],
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    // RFC 2195 §2: the digest contains no space, so the last space splits it
    // from a user name that might itself contain spaces.
    let split = decoded_response.iter().rposition(|&b| b == b' ')?;
    let (user, digest_hex) = (&decoded_response[..split], &decoded_response[split + 1..]);
    let user = parse_login_field(user).ok()?;
    let digest = decode_hex_digest(digest_hex)?;

    let secret = secret_for(&user);
    // Unknown users still pay for one HMAC so response time does not reveal
    // whether the account exists.
    let key = secret.as_deref().unwrap_or("\0unknown-user\0");
    let mut mac = Hmac::<Md5>::new_from_slice(key.as_bytes()).ok()?;
    mac.update(challenge.as_bytes());
    // `verify_slice` compares in constant time (subtle::ConstantTimeEq).
    let digest_ok = mac.verify_slice(&digest).is_ok();
    (digest_ok && secret.is_some()).then_some(user)
}

/// Parses the 32 hex digits of an MD5 digest (RFC 2195 §2). Clients send
/// lowercase; uppercase is accepted as it denotes the same value.
fn decode_hex_digest(hex: &[u8]) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let hi = hex_value(*pair.first()?)?;
        let lo = hex_value(*pair.get(1)?)?;
        *byte = (hi << 4) | lo;
    }
    Some(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
