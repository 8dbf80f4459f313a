//! The message handed to the `on_receive_message` and `on_receive_message_parsed` events.
//!
//! Indy 9's two receive modes that build a `TIdMessage`:
//! **rmMessage** is [`Message::unparsed`] (the header block is split from the body at the first
//! empty line, nothing is parsed) and **rmMessageParsed** is [`Message::parse`] (header fields
//! and MIME structure parsed with `mailparse`; envelope recipients in neither To nor Cc become
//! [`Message::bcc_list`], see [`reconcile_bcc`]). Either way the message owns the exact bytes it
//! was built from (the DATA after dot unstuffing, RFC 5321 §4.5.2) as its single buffer, since
//! applications store mail byte-exact; parsed fields are copies taken out of it.
//!
//! Deliberate differences from Indy 9:
//! * A message with no empty line is all header with an empty body (Indy 9 lost
//!   its place in the stream).
//! * BCC reconciliation compares whole addresses, ignoring case in the domain only
//!   (RFC 5321 §2.4), instead of Indy 9's case-sensitive substring test.
//! * `X-Server` stays in [`Message::x_server`]; the raw bytes are never modified.
//! * MIME nesting is followed [`MAX_MIME_DEPTH`] levels deep without recursion, so a hostile
//!   message cannot exhaust a connection thread's stack. `mailparse::parse_mail` recurses once
//!   per level with no bound (a 1000-deep message overflows a 256 KiB stack), so the tree is
//!   walked here with an explicit stack, splitting multipart bodies exactly as `mailparse` does
//!   and calling only its non-recursive pieces (`parse_headers`, `parse_content_type`,
//!   `addrparse_header`, [`mailparse::body::Body`]).
//! * Hostile input stays cheap: `mailparse`'s RFC 2047 decoder is cubic on lines full of `=?`
//!   and `?=`, so each header value's decoding cost is estimated first and taken from a
//!   budget per message (a few tens of milliseconds); a value that does not fit is kept as
//!   received. Only the first 64 parameters of a Content-Type or Content-Disposition are
//!   parsed, and at most [`MAX_MIME_PARTS`] parts are examined (`mailparse`'s decoders are
//!   quadratic on such input).
//! * A malformed address field does not fail the message: as in Indy 9 (which checks no
//!   syntax) entries `mailparse` rejects are kept as bare text.

use std::fmt;

use mailparse::{parse_headers, MailParseError};

mod fields;
mod mime;
#[cfg(test)]
mod tests;

use fields::{address_list, is_blank, lossy, strip_eol, text_header, unfold, Decoding};
use mime::{content_type_of, find_byte, walk_mime};

/// How many multipart levels [`Message::parse`] descends into.
///
/// RFC 2046 §5.1 sets no nesting limit; real mail rarely goes past 4 or 5 levels. A multipart
/// entity nested deeper than this is not split: it becomes one [`Attachment`] whose `data` is
/// its undecoded body (multipart bodies carry no transfer encoding, RFC 2045 §6.4).
pub const MAX_MIME_DEPTH: usize = 32;

/// How many MIME parts [`Message::parse`] examines in one message.
///
/// Each parsed part costs a [`TextPart`] or an [`Attachment`]: a hostile 10 MB message of
/// empty parts would otherwise become 2 million of them (an audit measured 287 MB). The parts
/// of a multipart entity past the limit are not examined: their bytes, delimiters left out,
/// become one [`Attachment`] with the multipart's type, so nothing in them is hidden from a
/// content check.
pub const MAX_MIME_PARTS: usize = 1024;

/// A mailbox from an address header (From, To, Cc, Reply-To, Sender), like Indy's
/// `TIdEMailAddressItem`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EmailAddress {
    /// Display name (RFC 5322 §3.4 `display-name`), RFC 2047-decoded unless the message was
    /// parsed with `no_decode`. `None` when the mailbox has no name.
    pub name: Option<String>,
    /// The `addr-spec` (RFC 5322 §3.4.1), `local@domain`, without angle brackets.
    pub address: String,
}

impl EmailAddress {
    /// A mailbox with no display name.
    pub fn new(address: impl Into<String>) -> Self {
        EmailAddress {
            name: None,
            address: address.into(),
        }
    }

    /// A mailbox with a display name (an empty name counts as none).
    pub fn with_name(name: impl Into<String>, address: impl Into<String>) -> Self {
        let name = name.into();
        EmailAddress {
            name: (!name.is_empty()).then_some(name),
            address: address.into(),
        }
    }

    /// The mailbox as header text, like Indy's `.Text`: `Name <a@b>`, or `a@b` with no name.
    ///
    /// Unlike Indy 9, a name containing RFC 5322 §3.2.3 `specials` (such as the comma in
    /// `Doe, John`) is written as a quoted-string (§3.2.4) so that the text parses back to the
    /// same mailbox.
    ///
    /// ```
    /// use indy_smtp::message::EmailAddress;
    /// assert_eq!(EmailAddress::new("a@b.com").text(), "a@b.com");
    /// assert_eq!(EmailAddress::with_name("Ann", "a@b.com").text(), "Ann <a@b.com>");
    /// assert_eq!(EmailAddress::with_name("Doe, J", "j@d.org").text(), "\"Doe, J\" <j@d.org>");
    /// ```
    pub fn text(&self) -> String {
        match self.name.as_deref() {
            Some(name) if !name.is_empty() => {
                if name.contains(is_special) {
                    let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
                    format!("\"{escaped}\" <{}>", self.address)
                } else {
                    format!("{name} <{}>", self.address)
                }
            }
            _ => self.address.clone(),
        }
    }

    fn from_mailparse(info: mailparse::SingleInfo) -> Self {
        // mailparse keeps the comma that follows a group's `;` in the next mailbox; no
        // display-name or addr-spec can start with a comma (RFC 5322 §3.2.3 `specials`).
        let clean = |text: &str| {
            text.trim_start_matches([',', ' ', '\t'])
                .trim_end()
                .to_string()
        };
        EmailAddress {
            name: info
                .display_name
                .map(|name| clean(&name))
                .filter(|name| !name.is_empty()),
            address: without_route(&clean(&info.addr)).to_string(),
        }
    }
}

/// The addr-spec of an obsolete route address (RFC 5322 §4.4 `obs-route`:
/// `<@relay.example:user@domain>`): the route is dropped, as RFC 5321 §4.1.1.3 tells servers
/// to do, so the mailbox compares equal to the envelope's.
fn without_route(address: &str) -> &str {
    match address.strip_prefix('@') {
        Some(routed) => routed
            .split_once(':')
            .map_or(address, |(_, spec)| spec.trim_start()),
        None => address,
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// RFC 5322 §3.2.3 `specials`: characters that force a display name into a quoted-string.
fn is_special(c: char) -> bool {
    matches!(
        c,
        '(' | ')' | '<' | '>' | '[' | ']' | ':' | ';' | '@' | '\\' | ',' | '.' | '"'
    )
}

/// A text part of the body (Indy's `TIdText`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TextPart {
    /// Lower-case MIME type, e.g. `text/plain` (RFC 2045 §5.1).
    pub content_type: String,
    /// The `charset` parameter as given; `None` when absent, which RFC 2045 §5.2 reads as
    /// `us-ascii`.
    pub charset: Option<String>,
    /// The text, transfer-decoded (RFC 2045 §6) and converted from its charset to UTF-8;
    /// bytes the charset cannot map become U+FFFD. With no charset or `us-ascii` (where 8-bit
    /// bytes mean nothing), text that is valid UTF-8 is read as UTF-8, and other bytes over
    /// 0x7F as windows-1252 (`mailparse` does, as mail readers commonly do), not replaced.
    /// Line ends stay as they arrived: `\r\n`.
    pub text: String,
}

/// A non-text part, or a part marked as an attachment (Indy's `TIdAttachment`).
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Attachment {
    /// The Content-Disposition `filename` parameter (RFC 2183 §2.3), else the Content-Type
    /// `name` parameter; RFC 2231 and RFC 2047 forms are decoded.
    pub filename: Option<String>,
    /// Lower-case MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// The content with its Content-Transfer-Encoding (RFC 2045 §6) undone.
    pub data: Vec<u8>,
}

impl fmt::Debug for Attachment {
    // Attachments can be megabytes of binary: show the length of `data`, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// A received message: the raw bytes plus, when built by [`Message::parse`], the parsed
/// fields. Built by [`Message::unparsed`] every parsed field is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    raw: RawBytes,
    body_offset: usize,
    parsed: bool,
    /// Indy's `NoDecode`, copied from the server: keep header values and the body undecoded.
    pub no_decode: bool,
    /// Indy's `NoEncode`, copied from the server and only carried along, for re-sending.
    pub no_encode: bool,
    /// Indy's `X-Server` value (the server fills it). It is not inserted into the raw bytes.
    pub x_server: Option<String>,
    /// The From mailboxes (RFC 5322 §3.6.2).
    pub from: Vec<EmailAddress>,
    /// The Sender mailbox (RFC 5322 §3.6.2).
    pub sender: Option<EmailAddress>,
    /// The Reply-To mailboxes (RFC 5322 §3.6.2).
    pub reply_to: Vec<EmailAddress>,
    /// The To mailboxes (RFC 5322 §3.6.3); group members are listed individually.
    pub to: Vec<EmailAddress>,
    /// The Cc mailboxes (RFC 5322 §3.6.3); group members are listed individually.
    pub cc: Vec<EmailAddress>,
    /// Envelope recipients in neither To nor Cc, as given in RCPT (see [`reconcile_bcc`]).
    pub bcc_list: Vec<String>,
    /// The Subject (RFC 5322 §3.6.5), unfolded; RFC 2047-decoded unless `no_decode`.
    pub subject: Option<String>,
    /// The Date field (RFC 5322 §3.6.1), unfolded, not interpreted.
    pub date: Option<String>,
    /// The Message-ID field (RFC 5322 §3.6.4) as written, angle brackets included.
    pub message_id: Option<String>,
    /// The top-level MIME type, e.g. `multipart/mixed`; `text/plain` when the message has no
    /// usable Content-Type (RFC 2045 §5.2).
    pub content_type: Option<String>,
    /// The top-level `charset` parameter, when given.
    pub charset: Option<String>,
    /// Text parts in document order. With `no_decode`, exactly one: the whole raw body.
    pub text_bodies: Vec<TextPart>,
    /// Attachments and other non-text parts in document order; empty with `no_decode`.
    pub attachments: Vec<Attachment>,
}

/// The raw buffer: can be megabytes, so `Debug` shows its length instead of its bytes.
#[derive(Clone, PartialEq, Eq, Default)]
struct RawBytes(Vec<u8>);

impl fmt::Debug for RawBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// Why [`Message::parse`] failed. Every variant hands the raw bytes back, so the caller can
/// fall back to [`Message::unparsed`] without having kept a copy.
#[non_exhaustive]
pub enum MessageError {
    /// `mailparse` rejected a header block (of the message or of a MIME part), e.g. one that
    /// starts with a continuation line or holds a lone CR (RFC 5322 §2.2).
    Malformed {
        /// `mailparse`'s explanation.
        reason: String,
        /// The message, unchanged.
        raw: Vec<u8>,
    },
    /// A part's Content-Transfer-Encoding (RFC 2045 §6) could not be undone, e.g. broken
    /// base64 (RFC 2045 §6.8).
    Decode {
        /// The part's MIME type and `mailparse`'s explanation.
        reason: String,
        /// The message, unchanged.
        raw: Vec<u8>,
    },
}

impl MessageError {
    /// The message bytes that failed to parse.
    pub fn raw(&self) -> &[u8] {
        match self {
            MessageError::Malformed { raw, .. } | MessageError::Decode { raw, .. } => raw,
        }
    }

    /// Gives back the message bytes, e.g. for `Message::unparsed(err.into_raw())`.
    pub fn into_raw(self) -> Vec<u8> {
        match self {
            MessageError::Malformed { raw, .. } | MessageError::Decode { raw, .. } => raw,
        }
    }

    fn malformed(err: MailParseError) -> Self {
        // The bytes are attached by `with_raw` once parsing has let go of them.
        MessageError::Malformed {
            reason: err.to_string(),
            raw: Vec::new(),
        }
    }

    fn with_raw(mut self, bytes: Vec<u8>) -> Self {
        match &mut self {
            MessageError::Malformed { raw, .. } | MessageError::Decode { raw, .. } => *raw = bytes,
        }
        self
    }
}

impl fmt::Debug for MessageError {
    // Shows the length of the raw bytes, not the (possibly huge) bytes themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (variant, reason) = match self {
            MessageError::Malformed { reason, .. } => ("Malformed", reason),
            MessageError::Decode { reason, .. } => ("Decode", reason),
        };
        f.debug_struct(variant)
            .field("reason", reason)
            .field("raw_len", &self.raw().len())
            .finish()
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Malformed { reason, .. } => write!(f, "malformed message: {reason}"),
            MessageError::Decode { reason, .. } => write!(f, "cannot decode {reason}"),
        }
    }
}

impl std::error::Error for MessageError {}

impl Message {
    /// Indy rmMessage: splits the header block from the body at the first empty line (CRLF
    /// CRLF or LF LF; RFC 5322 §2.1) without parsing anything, so it never fails. A message
    /// with no empty line is all header and has an empty body.
    ///
    /// ```
    /// use indy_smtp::message::Message;
    /// let msg = Message::unparsed(b"Subject: hi\r\n\r\nbody\r\n".to_vec());
    /// assert_eq!(msg.header_bytes(), b"Subject: hi\r\n\r\n");
    /// assert_eq!(msg.body(), b"body\r\n");
    /// assert_eq!(msg.header("subject").as_deref(), Some("hi"));
    /// assert!(msg.subject.is_none() && !msg.is_parsed());
    /// ```
    pub fn unparsed(raw: Vec<u8>) -> Message {
        Message {
            body_offset: find_body_offset(&raw),
            raw: RawBytes(raw),
            ..Message::default()
        }
    }

    /// Indy rmMessageParsed: parses the header fields and the MIME structure.
    ///
    /// `envelope_rcpts` are the RCPT addresses (bare `local@domain`), used to fill
    /// [`Message::bcc_list`]. With `no_decode`, header values are kept as received (no RFC 2047
    /// decoding) and the body is not MIME-decoded: `text_bodies` holds it whole and
    /// `attachments` stays empty. `no_encode` is only carried along.
    ///
    /// ```
    /// use indy_smtp::message::Message;
    /// let raw = b"From: Ann <ann@a.org>\r\nTo: bob@b.org\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n\r\nhi\r\n";
    /// let msg = Message::parse(raw.to_vec(), &["bob@b.org", "eve@e.org"], false, false).unwrap();
    /// assert_eq!(msg.subject.as_deref(), Some("hé"));
    /// assert_eq!(msg.from[0].text(), "Ann <ann@a.org>");
    /// assert_eq!(msg.bcc_list, ["eve@e.org"]);
    /// assert_eq!(msg.text_bodies[0].text, "hi\r\n");
    /// assert_eq!(msg.raw(), raw);
    /// ```
    pub fn parse(
        raw: Vec<u8>,
        envelope_rcpts: &[&str],
        no_decode: bool,
        no_encode: bool,
    ) -> Result<Message, MessageError> {
        // Parse into a message that does not own the bytes yet, then move the one buffer in:
        // the raw bytes are never copied.
        let mut msg = Message::default();
        let body_offset = find_body_offset(&raw);
        if let Err(err) = fill_parsed(&mut msg, &raw, body_offset, no_decode) {
            return Err(err.with_raw(raw));
        }
        msg.raw = RawBytes(raw);
        msg.body_offset = body_offset;
        msg.parsed = true;
        msg.no_decode = no_decode;
        msg.no_encode = no_encode;
        msg.bcc_list = reconcile_bcc(envelope_rcpts, &msg.to, &msg.cc);
        Ok(msg)
    }

    /// The exact bytes the message was built from.
    pub fn raw(&self) -> &[u8] {
        &self.raw.0
    }

    /// Gives up the message and returns its raw bytes, without copying.
    pub fn into_raw(self) -> Vec<u8> {
        self.raw.0
    }

    /// The header block, up to and including the empty line that ends it (the whole message
    /// when there is no empty line).
    pub fn header_bytes(&self) -> &[u8] {
        self.raw.0.get(..self.body_offset).unwrap_or_default()
    }

    /// The body: everything after the empty line (empty when there is none).
    pub fn body(&self) -> &[u8] {
        self.raw.0.get(self.body_offset..).unwrap_or_default()
    }

    /// The header fields in order, unparsed, like Indy's `Headers` list: the name with
    /// trailing blanks removed (RFC 5322 §4.5 allows `Name :`), and the value after the colon
    /// and its leading blanks, with folding (RFC 5322 §2.2.3) kept as received. Bytes that
    /// are not UTF-8 become U+FFFD. A line with no colon gives `(line, "")`; a continuation
    /// line before any field gives `("", line)`.
    pub fn headers(&self) -> Vec<(String, String)> {
        let block = self.header_bytes();
        // (name start, name end, value start, value end), all within `block`.
        let mut fields: Vec<(usize, usize, usize, usize)> = Vec::new();
        let mut pos = 0;
        while pos < block.len() {
            let line_end = find_byte(block, pos, b'\n').map_or(block.len(), |nl| nl + 1);
            let line = block.get(pos..line_end).unwrap_or_default();
            let content = strip_eol(line);
            let content_end = pos + content.len();
            if content.is_empty() {
                break; // the empty line that ends the header block (RFC 5322 §2.1)
            }
            let is_continuation = content.first().is_some_and(is_blank);
            match fields.last_mut() {
                Some(last) if is_continuation => last.3 = content_end,
                _ if is_continuation => {
                    let start = pos + content.iter().take_while(|b| is_blank(b)).count();
                    fields.push((pos, pos, start, content_end));
                }
                _ => match content.iter().position(|&b| b == b':') {
                    Some(colon) => {
                        let name = &content[..colon];
                        let name_end = pos + name.len()
                            - name.iter().rev().take_while(|b| is_blank(b)).count();
                        let after = content.get(colon + 1..).unwrap_or_default();
                        let start =
                            pos + colon + 1 + after.iter().take_while(|b| is_blank(b)).count();
                        fields.push((pos, name_end, start, content_end));
                    }
                    None => fields.push((pos, content_end, content_end, content_end)),
                },
            }
            pos = line_end;
        }
        fields
            .into_iter()
            .map(|(ns, ne, vs, ve)| (lossy(block.get(ns..ne)), lossy(block.get(vs..ve))))
            .collect()
    }

    /// The first header field with this name (compared case-insensitively, RFC 5322 §1.2.2),
    /// unfolded (RFC 5322 §2.2.3) and trimmed; not RFC 2047-decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| unfold(&value).trim_matches([' ', '\t']).to_string())
    }

    /// Whether this message came from [`Message::parse`] (rmMessageParsed).
    pub fn is_parsed(&self) -> bool {
        self.parsed
    }
}

/// BCC reconciliation: every envelope recipient whose address is not among the To or Cc
/// addresses, in envelope order, without duplicates.
///
/// Addresses are compared whole (Indy 9 used a substring test, so `a@b.com` hid behind
/// `aa@b.com`): the local part case-sensitively, the domain case-insensitively
/// (RFC 5321 §2.4), except that `Postmaster` matches in any case (RFC 5321 §4.1.1.3).
///
/// ```
/// use indy_smtp::message::{reconcile_bcc, EmailAddress};
/// let to = [EmailAddress::new("aa@b.com")];
/// let cc = [EmailAddress::with_name("Carl", "carl@C.org")];
/// let bcc = reconcile_bcc(&["a@b.com", "carl@c.org", "Carl@c.org", "a@b.com"], &to, &cc);
/// assert_eq!(bcc, ["a@b.com", "Carl@c.org"]);
/// ```
pub fn reconcile_bcc(
    envelope_rcpts: &[&str],
    to: &[EmailAddress],
    cc: &[EmailAddress],
) -> Vec<String> {
    let mut bcc: Vec<String> = Vec::new();
    for &rcpt in envelope_rcpts {
        let visible = to
            .iter()
            .chain(cc)
            .any(|mailbox| same_mailbox(&mailbox.address, rcpt));
        if !visible && !bcc.iter().any(|seen| same_mailbox(seen, rcpt)) {
            bcc.push(rcpt.to_string());
        }
    }
    bcc
}

/// Whether two addr-specs name the same mailbox (see [`reconcile_bcc`]). The domain is what
/// follows the last `@`, since a quoted local part may itself contain `@` (RFC 5321 §4.1.2).
fn same_mailbox(a: &str, b: &str) -> bool {
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((local_a, domain_a)), Some((local_b, domain_b))) => {
            let local_equal = local_a == local_b
                || (local_a.eq_ignore_ascii_case("postmaster")
                    && local_b.eq_ignore_ascii_case("postmaster"));
            local_equal && domain_a.eq_ignore_ascii_case(domain_b)
        }
        // Without a domain, only `Postmaster` (RFC 5321 §4.1.1.3) ignores case.
        _ => {
            a == b || (a.eq_ignore_ascii_case("postmaster") && b.eq_ignore_ascii_case("postmaster"))
        }
    }
}

/// Offset of the body: just past the first empty line (RFC 5322 §2.1), or the end.
fn find_body_offset(raw: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(rest) = raw.get(pos..) {
        if rest.starts_with(b"\r\n") {
            return pos + 2;
        }
        if rest.starts_with(b"\n") {
            return pos + 1;
        }
        match find_byte(raw, pos, b'\n') {
            Some(nl) => pos = nl + 1,
            None => break,
        }
    }
    raw.len()
}

fn fill_parsed(
    msg: &mut Message,
    raw: &[u8],
    body_offset: usize,
    no_decode: bool,
) -> Result<(), MessageError> {
    let (headers, ix_body) = parse_headers(raw).map_err(MessageError::malformed)?;
    let decoding = Decoding::new(no_decode);
    msg.from = address_list(&headers, "From", &decoding);
    msg.sender = address_list(&headers, "Sender", &decoding)
        .into_iter()
        .next();
    msg.reply_to = address_list(&headers, "Reply-To", &decoding);
    msg.to = address_list(&headers, "To", &decoding);
    msg.cc = address_list(&headers, "Cc", &decoding);
    msg.subject = text_header(&headers, "Subject", &decoding);
    msg.date = text_header(&headers, "Date", &decoding).map(|date| date.trim().to_string());
    msg.message_id = text_header(&headers, "Message-ID", &decoding).map(|id| id.trim().to_string());
    let ctype = content_type_of(&headers, false, &decoding);
    msg.charset = ctype.params.get("charset").cloned();
    msg.content_type = Some(ctype.mimetype.clone());
    if no_decode {
        // Indy's NoDecode: the body is kept as received, with no MIME processing.
        msg.text_bodies.push(TextPart {
            content_type: msg.content_type.clone().unwrap_or_default(),
            charset: msg.charset.clone(),
            text: lossy(raw.get(body_offset..)),
        });
        return Ok(());
    }
    walk_mime(
        raw,
        (headers, ix_body, ctype),
        &decoding,
        &mut msg.text_bodies,
        &mut msg.attachments,
    )
}
