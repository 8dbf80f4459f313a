//! The MIME walk of [`Message::parse`](super::Message::parse): an explicit stack instead of
//! recursion, so nesting depth cannot exhaust a session thread's stack.

use mailparse::body::Body;
use mailparse::{
    parse_content_disposition, parse_content_type, parse_headers, DispositionType, MailHeader,
    MailHeaderMap, MailParseError, ParsedContentType,
};

use super::fields::{bounded_params, header_value, Decoding};
use super::{Attachment, MessageError, TextPart, MAX_MIME_DEPTH, MAX_MIME_PARTS};

/// A MIME entity waiting to be examined by [`walk_mime`].
struct Pending<'a> {
    bytes: &'a [u8],
    depth: usize,
    in_digest: bool,
}

/// Walks the MIME tree depth-first with an explicit stack (no recursion, so stack use does
/// not grow with nesting), sorting the leaves into text parts and attachments. `root` is the
/// top-level header block of `raw`, where its body starts and its content type, as the
/// caller already parsed them for the message's fields.
pub(super) fn walk_mime<'a>(
    raw: &'a [u8],
    root: (Vec<MailHeader<'a>>, usize, ParsedContentType),
    decoding: &Decoding,
    texts: &mut Vec<TextPart>,
    attachments: &mut Vec<Attachment>,
) -> Result<(), MessageError> {
    let mut root = Some(root);
    let mut pending = vec![Pending {
        bytes: raw,
        depth: 0,
        in_digest: false,
    }];
    let mut parts = 0usize;
    while let Some(entity) = pending.pop() {
        let (headers, ix_body, ctype) = match root.take() {
            Some(parsed) => parsed,
            None => {
                let (headers, ix_body) =
                    parse_headers(entity.bytes).map_err(MessageError::malformed)?;
                let ctype = content_type_of(&headers, entity.in_digest, decoding);
                (headers, ix_body, ctype)
            }
        };
        let body = entity.bytes.get(ix_body..).unwrap_or_default();
        if ctype.mimetype.starts_with("multipart/") {
            if let Some(boundary) = ctype.params.get("boundary") {
                if entity.depth < MAX_MIME_DEPTH {
                    // RFC 2046 §5.1.5: in multipart/digest a part's default type is message/rfc822.
                    let in_digest = ctype.mimetype == "multipart/digest";
                    let mut children = split_multipart(entity.bytes, ix_body, boundary);
                    let room = MAX_MIME_PARTS.saturating_sub(parts);
                    if children.len() > room {
                        attachments.push(Attachment {
                            filename: None,
                            content_type: ctype.mimetype.clone(),
                            data: children[room..].concat(),
                        });
                        children.truncate(room);
                    }
                    parts += children.len();
                    // Reversed so that popping yields the parts in document order.
                    pending.extend(children.into_iter().rev().map(|bytes| Pending {
                        bytes,
                        depth: entity.depth + 1,
                        in_digest,
                    }));
                } else {
                    attachments.push(Attachment {
                        filename: None,
                        content_type: ctype.mimetype,
                        data: body.to_vec(),
                    });
                }
                continue;
            }
        }
        add_leaf(&headers, ctype, body, decoding, texts, attachments)?;
    }
    Ok(())
}

/// Classifies and decodes one leaf entity: text/* that is neither marked as an attachment
/// (RFC 2183 §2.2) nor named is text; everything else is an attachment.
pub(super) fn add_leaf(
    headers: &[MailHeader],
    ctype: ParsedContentType,
    body: &[u8],
    decoding: &Decoding,
    texts: &mut Vec<TextPart>,
    attachments: &mut Vec<Attachment>,
) -> Result<(), MessageError> {
    let disposition = headers
        .get_first_header("Content-Disposition")
        .map(|header| parse_content_disposition(bounded_params(&header_value(header, decoding))))
        .unwrap_or_default();
    let is_attachment = disposition.disposition == DispositionType::Attachment;
    let filename = disposition
        .params
        .get("filename")
        .or_else(|| ctype.params.get("name"))
        .cloned();
    // RFC 2045 §6.1: the mechanism name is case-insensitive.
    let encoding = headers
        .get_first_header("Content-Transfer-Encoding")
        .map(|header| header_value(header, decoding).trim().to_ascii_lowercase());
    // A part whose transfer encoding is broken is kept undecoded rather than refusing the
    // whole message: refusing real mail over one bad attachment would lose it.
    let undecoded = |err: MailParseError| {
        log::warn!("{} part kept undecoded: {err}", ctype.mimetype);
        body.to_vec()
    };
    let encoded = Body::new(body, &ctype, &encoding);
    if ctype.mimetype.starts_with("text/") && !is_attachment && filename.is_none() {
        let text = undeclared_utf8(&ctype, &encoded).unwrap_or_else(|| {
            match encoded {
                Body::Base64(part) | Body::QuotedPrintable(part) => part.get_decoded_as_string(),
                Body::SevenBit(part) | Body::EightBit(part) => part.get_as_string(),
                Body::Binary(part) => part.get_as_string(),
            }
            .unwrap_or_else(|err| String::from_utf8_lossy(&undecoded(err)).into_owned())
        });
        texts.push(TextPart {
            content_type: ctype.mimetype.clone(),
            charset: ctype.params.get("charset").cloned(),
            text,
        });
    } else {
        let data = match encoded {
            Body::Base64(part) | Body::QuotedPrintable(part) => {
                part.get_decoded().unwrap_or_else(undecoded)
            }
            Body::SevenBit(part) | Body::EightBit(part) => part.get_raw().to_vec(),
            Body::Binary(part) => part.get_raw().to_vec(),
        };
        attachments.push(Attachment {
            filename,
            content_type: ctype.mimetype.clone(),
            data,
        });
    }
    Ok(())
}

/// The text of a part without a charset, or with `us-ascii`, whose bytes are UTF-8. RFC 2045
/// §5.2 reads such a part as US-ASCII, where 8-bit bytes mean nothing, and `mailparse` then
/// reads them as windows-1252; but bytes that are valid UTF-8 are almost always meant as
/// UTF-8 (what current clients send, and RFC 6532's charset for internationalized mail), so
/// "naïve" does not arrive as "naÃ¯ve". Other bytes are left to `mailparse`.
fn undeclared_utf8(ctype: &ParsedContentType, encoded: &Body) -> Option<String> {
    let charset = ctype.params.get("charset").map(|c| c.trim());
    if charset.is_some_and(|c| !c.eq_ignore_ascii_case("us-ascii")) {
        return None;
    }
    let bytes = match encoded {
        Body::Base64(part) | Body::QuotedPrintable(part) => part.get_decoded().ok()?,
        Body::SevenBit(part) | Body::EightBit(part) => part.get_raw().to_vec(),
        Body::Binary(part) => part.get_raw().to_vec(),
    };
    String::from_utf8(bytes).ok()
}

/// The entity's Content-Type, or the RFC 2045 §5.2 default (`text/plain; charset=us-ascii`)
/// when it is missing or has no `type/subtype`; in a digest the default is message/rfc822
/// (RFC 2046 §5.1.5).
pub(super) fn content_type_of(
    headers: &[MailHeader],
    in_digest: bool,
    decoding: &Decoding,
) -> ParsedContentType {
    let parsed = headers
        .get_first_header("Content-Type")
        .map(|header| parse_content_type(bounded_params(&header_value(header, decoding))))
        .filter(|ctype| ctype.mimetype.contains('/'));
    parsed.unwrap_or_else(|| {
        let mut ctype = ParsedContentType::default();
        if in_digest {
            ctype.mimetype = "message/rfc822".to_string();
        }
        ctype
    })
}

/// Splits a multipart entity into its body parts (RFC 2046 §5.1.1), exactly as
/// `mailparse::parse_mail` does: a delimiter is `--boundary` at the start of a line, a part
/// starts on the line after it, the line break before the next delimiter belongs to the
/// delimiter, `--boundary--` closes, and a missing close delimiter ends the last part at the
/// end of the data. The preamble and epilogue are dropped. A line that merely starts with the
/// delimiter counts, as RFC 2046 §5.1.1 allows ("an exact match of the entire candidate line is
/// not required").
pub(super) fn split_multipart<'a>(
    bytes: &'a [u8],
    ix_body: usize,
    boundary: &str,
) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let Some(first) = find_line_prefix(bytes, ix_body, delimiter) else {
        return parts;
    };
    let mut delimiter_end = first + delimiter.len();
    while let Some(part_start) = find_byte(bytes, delimiter_end, b'\n').map(|nl| nl + 1) {
        let next = find_line_prefix(bytes, part_start, delimiter);
        let part_end = next.map_or(bytes.len(), |at| {
            strip_newline_before(bytes, part_start, at)
        });
        parts.push(bytes.get(part_start..part_end).unwrap_or_default());
        delimiter_end = next.map_or(bytes.len(), |at| at + delimiter.len());
        let rest = bytes.get(delimiter_end..).unwrap_or_default();
        if rest.len() < 2 || rest.starts_with(b"--") {
            break;
        }
    }
    parts
}

/// First position at or after `start` where `key` begins a line (or `start` itself).
pub(super) fn find_line_prefix(bytes: &[u8], start: usize, key: &[u8]) -> Option<usize> {
    let mut pos = start;
    loop {
        if bytes.get(pos..)?.starts_with(key) {
            return Some(pos);
        }
        pos = find_byte(bytes, pos, b'\n')? + 1;
    }
}

/// `end`, moved back over one LF or CRLF that lies after `start` (RFC 2046 §5.1.1: the line
/// break before a delimiter is part of the delimiter).
pub(super) fn strip_newline_before(bytes: &[u8], start: usize, mut end: usize) -> usize {
    if end > start && bytes.get(end - 1) == Some(&b'\n') {
        end -= 1;
        if end > start && bytes.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
    }
    end
}

pub(super) fn find_byte(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    let rest = bytes.get(from..)?;
    rest.iter().position(|&b| b == byte).map(|i| from + i)
}
