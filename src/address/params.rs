//! ESMTP parameters: the generic esmtp-param grammar (RFC 5321 §4.1.2) and the values of the
//! parameters this crate understands (RFC 1870, RFC 3461, RFC 4954 §5).

use super::path::{describe, escape};
use super::{EsmtpParam, Notify, Orcpt, PathError};
use std::collections::HashSet;

/// A parameter split into keyword and raw value, syntax-checked.
pub(super) struct RawParam<'a> {
    pub(super) upper: String,
    pub(super) value: Option<&'a str>,
}

impl RawParam<'_> {
    pub(super) fn to_param(&self, claimed: bool) -> EsmtpParam {
        EsmtpParam {
            keyword: self.upper.clone(),
            value: self.value.map(str::to_string),
            claimed,
        }
    }
}

/// Splits the text after the path into parameters: one or more SP between them, trailing SP
/// tolerated. Checks only the generic grammar and duplicates; values are checked per keyword.
pub(super) fn split_params(rest: &str) -> Result<Vec<RawParam<'_>>, PathError> {
    let mut out = Vec::new();
    // A set keeps duplicate detection linear however long a configured line limit allows.
    let mut seen = HashSet::new();
    for tok in rest.split(' ').filter(|t| !t.is_empty()) {
        let (keyword, value) = match tok.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (tok, None),
        };
        let badkw = |reason: String| PathError::BadParameter {
            keyword: escape(keyword),
            reason,
        };
        if keyword.is_empty() {
            return Err(PathError::ParameterSyntax("empty parameter keyword".into()));
        }
        // RFC 5321 §4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
        let invalid =
            |(i, c): &(usize, char)| !(c.is_ascii_alphanumeric() || (*i > 0 && *c == '-'));
        if let Some((_, c)) = keyword.chars().enumerate().find(invalid) {
            return Err(badkw(format!("{} not allowed in keyword", describe(c))));
        }
        if let Some(v) = value {
            // RFC 5321 §4.1.2: esmtp-value = 1*(%d33-60 / %d62-126), RFC 6531 §3.3 adds UTF-8
            // (whether UTF-8 is in effect is checked once the SMTPUTF8 parameter is known).
            if v.is_empty() {
                return Err(badkw("empty value after '='".into()));
            }
            if let Some(c) = v.chars().find(|&c| c == '=' || c.is_control()) {
                return Err(badkw(format!("{} not allowed in value", describe(c))));
            }
        }
        let upper = keyword.to_ascii_uppercase();
        if !seen.insert(upper.clone()) {
            // Shortened like every keyword a reply names (RFC 5321 §4.5.3.1.5: 512-octet lines).
            return Err(PathError::DuplicateParameter(escape(&upper)));
        }
        out.push(RawParam { upper, value });
    }
    Ok(out)
}

pub(super) fn check_value_ascii(p: &RawParam<'_>, utf8: bool) -> Result<(), PathError> {
    if !utf8 && p.value.is_some_and(|v| !v.is_ascii()) {
        return Err(bad(
            p,
            "non-ASCII value without SMTPUTF8 (RFC 6531 section 3.3)",
        ));
    }
    Ok(())
}

pub(super) fn bad(p: &RawParam<'_>, reason: &str) -> PathError {
    PathError::BadParameter {
        // Any keyword can get here (a non-ASCII value): shortened for the reply.
        keyword: escape(&p.upper),
        reason: reason.to_string(),
    }
}

pub(super) fn need_value<'a>(p: &RawParam<'a>) -> Result<&'a str, PathError> {
    p.value.ok_or_else(|| bad(p, "requires a value"))
}

pub(super) fn size_value(p: &RawParam<'_>) -> Result<u64, PathError> {
    let v = need_value(p)?;
    // RFC 1870 §3: size-value = 1*20DIGIT.
    if v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(p, "must be 1 to 20 digits (RFC 1870 section 3)"));
    }
    v.parse().map_err(|_| PathError::SizeTooLarge)
}

pub(super) fn notify_value(p: &RawParam<'_>) -> Result<Notify, PathError> {
    let v = need_value(p)?;
    let mut n = Notify::default();
    // RFC 3461 §4.1: "NEVER" alone, or a comma list of SUCCESS / FAILURE / DELAY.
    for item in v.split(',') {
        match item.to_ascii_uppercase().as_str() {
            "NEVER" => n.never = true,
            "SUCCESS" => n.success = true,
            "FAILURE" => n.failure = true,
            "DELAY" => n.delay = true,
            "" => return Err(bad(p, "empty list element")),
            _ => return Err(bad(p, "must be NEVER or a list of SUCCESS, FAILURE, DELAY")),
        }
    }
    if n.never && (n.success || n.failure || n.delay) {
        return Err(bad(
            p,
            "NEVER cannot be combined with other values (RFC 3461 section 4.1)",
        ));
    }
    Ok(n)
}

/// `utf8_allowed`: the transaction is SMTPUTF8 (RFC 6531), where an "rfc822" ORCPT carrying
/// UTF-8 is tolerated; otherwise it must decode to US-ASCII.
pub(super) fn orcpt_value(p: &RawParam<'_>, utf8_allowed: bool) -> Result<Orcpt, PathError> {
    // RFC 3461 §4.2: original-recipient-address = addr-type ";" xtext
    let (addr_type, x) = need_value(p)?
        .split_once(';')
        .ok_or_else(|| bad(p, "must be addr-type;address (RFC 3461 section 4.2)"))?;
    // addr-type is an RFC 822 atom: no specials, SP or controls.
    if addr_type.is_empty()
        || !addr_type
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\".[]".contains(&b))
    {
        return Err(bad(p, "address type is not an atom (RFC 3461 section 4.2)"));
    }
    let address = decode_xtext(x).map_err(|r| bad(p, &r))?;
    // RFC 3461 §4.2 / RFC 6533 §3: an "rfc822" address is US-ASCII; a UTF-8 one is sent as
    // addr-type "utf-8" (tolerated as "rfc822" in an SMTPUTF8 transaction).
    if addr_type.eq_ignore_ascii_case("rfc822") && !utf8_allowed && !address.is_ascii() {
        return Err(bad(
            p,
            "an rfc822 address is US-ASCII; use utf-8;... (RFC 6533 section 3)",
        ));
    }
    // RFC 3461 §4.2: at most 500 characters before xtext encoding.
    if address.chars().count() > 500 {
        return Err(bad(
            p,
            "original recipient longer than 500 characters (RFC 3461 section 4.2)",
        ));
    }
    Ok(Orcpt {
        addr_type: addr_type.to_string(),
        address,
    })
}

/// Decodes xtext (RFC 3461 §4): `+` followed by two hex digits stands for one octet. Lower-case
/// hex digits are accepted although the grammar asks for upper case: they are unambiguous, and
/// refusing them would only break sloppy clients.
/// The value was already checked against esmtp-value, so other characters pass through (with
/// SMTPUTF8 these may be UTF-8, RFC 6533 §3). The decoded text must be UTF-8 without controls,
/// since it ends up in DSNs and logs.
pub(super) fn decode_xtext(v: &str) -> Result<String, String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'+' {
            let pair = match b.get(i + 1..i + 3) {
                Some(&[hi, lo]) => hex(hi).zip(hex(lo)).map(|(hi, lo)| (hi << 4) | lo),
                _ => None,
            };
            out.push(pair.ok_or("'+' must be followed by two hex digits (RFC 3461 section 4)")?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| "decoded xtext is not UTF-8".to_string())?;
    // U+2028/U+2029 break lines in some readers of logs and headers, like a control.
    match s
        .chars()
        .find(|&c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        Some(c) => Err(format!("decoded xtext contains {}", describe(c))),
        None => Ok(s),
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}
