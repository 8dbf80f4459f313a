//! Header fields of a parsed message: address lists (with Indy 9's leniency) and text values.

use std::cell::Cell;

use mailparse::{addrparse, addrparse_header, MailAddr, MailHeader, MailHeaderMap};

use super::EmailAddress;

/// The work `mailparse`'s RFC 2047 decoder may do for one message, in the units of
/// [`decode_cost`]: 20–40 ms of CPU on this project's test machine (7e9 to 1.4e10 units/s
/// measured, release build). Real messages use a small part of it (a Subject and a To with a
/// few encoded words cost thousands); once it is spent, further values are kept as received.
const MESSAGE_DECODE_BUDGET: u64 = 1 << 28;

/// The most parameters of a Content-Type or Content-Disposition that are parsed: `mailparse`
/// compares RFC 2231 continuations pairwise (quadratic in their number), and real headers
/// carry a handful.
const MAX_PARAMS: usize = 64;

/// Whether header values of one message are RFC 2047-decoded: not with Indy's `NoDecode`,
/// and otherwise only while the message's decoding budget lasts.
pub(super) struct Decoding {
    on: bool,
    budget: Cell<u64>,
}

impl Decoding {
    pub(super) fn new(no_decode: bool) -> Decoding {
        Decoding {
            on: !no_decode,
            budget: Cell::new(MESSAGE_DECODE_BUDGET),
        }
    }

    /// Whether `raw` (a header value as `mailparse` will tokenize it) may be decoded; its cost
    /// is then taken from the budget.
    pub(super) fn allows(&self, raw: &[u8]) -> bool {
        if !self.on {
            return false;
        }
        let cost = decode_cost(raw);
        let left = self.budget.get();
        if cost > left {
            return false;
        }
        self.budget.set(left - cost);
        true
    }
}

/// An upper bound on the work of `mailparse`'s encoded-word tokenizer for a header value. Per
/// line it looks up the character at a byte offset from the start (linear) for every `=?` and,
/// from each, for every later `?=`: with A of the first, B of the second and n octets, about
/// A·(B+1)·n, which is cubic on a line of `=?` and `?=` (a 7.8 KB line took 0.9 s, a folded
/// 250 KB address field minutes). Ordinary lines cost about their length.
pub(super) fn decode_cost(raw: &[u8]) -> u64 {
    raw.split(|&b| b == b'\n')
        .map(|line| {
            let pairs = |pair: &[u8]| line.windows(2).filter(|w| *w == pair).count() as u64;
            let (starts, ends) = (pairs(b"=?"), pairs(b"?="));
            starts
                .saturating_mul(ends.saturating_add(1))
                .saturating_add(1)
                .saturating_mul(line.len() as u64)
        })
        .fold(0u64, u64::saturating_add)
}

/// A header's value: RFC 2047-decoded by `mailparse` when `decoding` allows it, else the
/// bytes as received, unfolded.
pub(super) fn header_value(header: &MailHeader, decoding: &Decoding) -> String {
    if decoding.allows(header.get_value_raw()) {
        header.get_value()
    } else {
        unfold(&lossy(Some(header.get_value_raw())))
    }
}

/// A Content-Type or Content-Disposition value cut before its parameter number
/// [`MAX_PARAMS`] + 1 (the type and the boundary, charset or filename come first).
pub(super) fn bounded_params(value: &str) -> &str {
    match value.match_indices(';').nth(MAX_PARAMS) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

/// All addresses of every `name` field (RFC 5322 §3.6.3 allows one of each, but a mailbox
/// listed in a second To must not be mistaken for a BCC), group members flattened.
pub(super) fn address_list(
    headers: &[MailHeader],
    name: &str,
    decoding: &Decoding,
) -> Vec<EmailAddress> {
    let mut out = Vec::new();
    for header in headers.get_all_headers(name) {
        let plain = !decoding.allows(header.get_value_raw());
        let parsed = if plain {
            // addrparse on plain text leaves encoded words alone, as NoDecode wants.
            addrparse(&unfold(&lossy(Some(header.get_value_raw()))))
        } else {
            addrparse_header(header)
        };
        match parsed {
            Ok(list) => push_addrs(list.into_inner(), &mut out),
            // Split as received: a comma that an encoded word decodes to is not a separator.
            Err(_) => lenient_addresses(
                &unfold(&lossy(Some(header.get_value_raw()))),
                (!plain).then_some(decoding),
                &mut out,
            ),
        }
    }
    out
}

pub(super) fn push_addrs(list: Vec<MailAddr>, out: &mut Vec<EmailAddress>) {
    for addr in list {
        match addr {
            MailAddr::Single(info) => out.push(EmailAddress::from_mailparse(info)),
            MailAddr::Group(group) => {
                out.extend(group.addrs.into_iter().map(EmailAddress::from_mailparse))
            }
        }
    }
}

/// Fallback for an address field `mailparse` rejects: each comma-separated entry of the text
/// as received is parsed on its own (its encoded words decoded when `decoding` is given and
/// allows it; the entry is the unfolded field, one long line, so it is costed again). One
/// that still fails is kept, as Indy 9 keeps whatever it was given: as the address in its
/// angle brackets when it has an unclosed `<...@...`, else as bare text.
pub(super) fn lenient_addresses(
    text: &str,
    decoding: Option<&Decoding>,
    out: &mut Vec<EmailAddress>,
) {
    for entry in split_address_list(text) {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let decode = decoding.is_some_and(|d| d.allows(entry.as_bytes()));
        let parsed = if decode {
            mailparse::parse_header(format!("To: {entry}").as_bytes())
                .ok()
                .and_then(|(header, _)| addrparse_header(&header).ok())
        } else {
            addrparse(entry).ok()
        };
        match parsed {
            Some(list) => push_addrs(list.into_inner(), out),
            None => out.push(unparsed_entry(entry)),
        }
    }
}

/// An address entry no parser takes: `Name <a@b` (the `>` missing) still names its mailbox.
fn unparsed_entry(entry: &str) -> EmailAddress {
    match entry.rsplit_once('<') {
        Some((name, addr)) if addr.contains('@') && !addr.contains('>') => {
            let name = name.trim().trim_matches('"').trim();
            if name.is_empty() {
                EmailAddress::new(addr.trim())
            } else {
                EmailAddress::with_name(name, addr.trim())
            }
        }
        _ => EmailAddress::new(entry),
    }
}

/// Splits an address list at the commas that separate entries (RFC 5322 §3.4), ignoring
/// commas inside quoted-strings, comments and angle brackets.
pub(super) fn split_address_list(text: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    let mut comment_depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || comment_depth > 0 => escaped = true,
            '"' if comment_depth == 0 => quoted = !quoted,
            '(' if !quoted => comment_depth += 1,
            ')' if !quoted => comment_depth = comment_depth.saturating_sub(1),
            '<' if !quoted && comment_depth == 0 => angle = true,
            '>' if !quoted && comment_depth == 0 => angle = false,
            ',' if !quoted && comment_depth == 0 && !angle => {
                entries.push(text.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(text.get(start..).unwrap_or_default());
    entries
}

/// A header's value: `mailparse`'s unfolded, RFC 2047-decoded text, or (see [`Decoding`])
/// the bytes as received, unfolded.
pub(super) fn text_header(
    headers: &[MailHeader],
    name: &str,
    decoding: &Decoding,
) -> Option<String> {
    let header = headers.get_first_header(name)?;
    Some(header_value(header, decoding))
}

/// RFC 5322 §2.2.3 unfolding: removes every CRLF (or bare LF) that is followed by a blank.
pub(super) fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(nl) = rest.find('\n') {
        let (line, after) = rest.split_at(nl);
        let after = after.get(1..).unwrap_or_default();
        if after.starts_with([' ', '\t']) {
            out.push_str(line.strip_suffix('\r').unwrap_or(line));
        } else {
            out.push_str(line);
            out.push('\n');
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

pub(super) fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// RFC 5322 §2.2.2 WSP.
pub(super) fn is_blank(byte: &u8) -> bool {
    matches!(byte, b' ' | b'\t')
}

pub(super) fn lossy(bytes: Option<&[u8]>) -> String {
    String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned()
}
