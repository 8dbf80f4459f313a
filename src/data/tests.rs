use super::*;

use BareNewlinePolicy::{Normalize, Pass, Reject};

mod pieces;
mod properties;

const POLICIES: [BareNewlinePolicy; 3] = [Normalize, Reject, Pass];

/// Everything observable after decoding some input.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    out: Vec<u8>,
    consumed: usize,
    done: bool,
    bare: bool,
    longest: usize,
    decoded_len: u64,
}

fn outcome(dec: &DataDecoder, out: Vec<u8>, consumed: usize) -> Outcome {
    Outcome {
        out,
        consumed,
        done: dec.is_done(),
        bare: dec.saw_bare_newline(),
        longest: dec.longest_line(),
        decoded_len: dec.decoded_len(),
    }
}

/// Feeds `input` in chunks ending at `cuts` (sorted, clamped), the way a server loop does: it stops
/// feeding once the decoder is done. Returns the outcome and the final decoder state.
///
/// Every chunk is decoded twice, into a `Vec` and into [`Pieces`] (the DATA reader's way), and
/// the two must agree exactly: same bytes, same consumption, same decoder state.
fn decode_cuts(policy: BareNewlinePolicy, input: &[u8], cuts: &[usize]) -> (Outcome, DataDecoder) {
    let mut dec = DataDecoder::new(policy);
    let mut out = Vec::new();
    let mut by_pieces = DataDecoder::new(policy);
    let mut pieces = Pieces::default();
    let mut consumed = 0;
    let mut prev = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(prev, input.len());
        let chunk = &input[prev..cut];
        let out_before = out.len();
        let n = dec.decode(chunk, &mut out);
        pieces.clear();
        assert_eq!(
            by_pieces.decode_into(chunk, &mut pieces),
            n,
            "pieces consumed"
        );
        let joined = join(&pieces, chunk);
        assert_eq!(joined, out[out_before..], "pieces differ from the copy");
        assert_eq!(pieces.len(), joined.len());
        assert_eq!(by_pieces, dec);
        consumed += n;
        assert!(n <= chunk.len());
        // Until the end of data every byte is consumed; a pending CR or "." lives in the decoder.
        assert!(
            n == chunk.len() || dec.is_done(),
            "stopped early without being done"
        );
        if dec.is_done() {
            assert_eq!(
                dec.decode(&input[prev + n..], &mut out),
                0,
                "consumed after done"
            );
            break;
        }
        prev = cut;
    }
    (outcome(&dec, out, consumed), dec)
}

/// The octets `pieces` stand for.
fn join(pieces: &Pieces, input: &[u8]) -> Vec<u8> {
    pieces
        .iter()
        .flat_map(|p| pieces.slice(p, input).to_vec())
        .collect()
}

fn decode_all(policy: BareNewlinePolicy, input: &[u8]) -> Outcome {
    decode_cuts(policy, input, &[]).0
}

/// The same input fed one byte at a time, and split at every single point, must match one-shot.
fn assert_split_invariant(policy: BareNewlinePolicy, input: &[u8]) {
    let (whole, whole_dec) = decode_cuts(policy, input, &[]);
    let bytewise: Vec<usize> = (1..input.len()).collect();
    let (split, split_dec) = decode_cuts(policy, input, &bytewise);
    assert_eq!(
        split,
        whole,
        "{policy:?} byte by byte on {:?}",
        input.escape_ascii().to_string()
    );
    assert_eq!(split_dec, whole_dec);
    for cut in 0..=input.len() {
        let (split, split_dec) = decode_cuts(policy, input, &[cut]);
        assert_eq!(
            split,
            whole,
            "{policy:?} cut {cut} on {:?}",
            input.escape_ascii().to_string()
        );
        assert_eq!(split_dec, whole_dec);
    }
}

/// A deliberately naive, line-oriented model of the decoder, written from the rules rather than
/// from the state machine, to cross-check it on arbitrary input.
fn model(policy: BareNewlinePolicy, input: &[u8]) -> Outcome {
    let mut out = Vec::new();
    let mut longest = 0;
    let mut pos = 0;
    let mut after_crlf = true;
    let mut done = false;
    let consumed = loop {
        let rest = &input[pos..];
        let end = rest.iter().enumerate().position(|(k, &b)| {
            b == b'\n' && (policy == Normalize || (k > 0 && rest[k - 1] == b'\r'))
        });
        let Some(k) = end else {
            // Unfinished line: its leading "." is dropped, a final CR waits for the next byte.
            let mut line = rest.strip_prefix(b".").unwrap_or(rest);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            out.extend_from_slice(line);
            longest = longest.max(line.len());
            break input.len();
        };
        let line = &rest[..=k];
        let crlf = k > 0 && rest[k - 1] == b'\r';
        if after_crlf && line == b".\r\n" {
            done = true;
            break pos + 3;
        }
        let text = &line[..line.len() - if crlf { 2 } else { 1 }];
        let text = text.strip_prefix(b".").unwrap_or(text);
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
        longest = longest.max(text.len() + 2);
        after_crlf = crlf;
        pos += k + 1;
    };
    let used = &input[..consumed];
    let bare = used.iter().enumerate().any(|(j, &b)| {
        (b == b'\n' && (j == 0 || used[j - 1] != b'\r'))
            || (b == b'\r' && j + 1 < used.len() && used[j + 1] != b'\n')
    });
    let decoded_len = out.len() as u64;
    Outcome {
        out,
        consumed,
        done,
        bare,
        longest,
        decoded_len,
    }
}

/// Where the first end of data is, by plain search: the one property everything else rests on.
fn first_terminator_end(input: &[u8]) -> Option<usize> {
    if input.starts_with(b".\r\n") {
        return Some(3);
    }
    input
        .windows(5)
        .position(|w| w == b"\r\n.\r\n")
        .map(|p| p + 5)
}

/// (input, Normalize output, Pass/Reject output, consumed, done, saw bare CR/LF)
type Row = (
    &'static [u8],
    &'static [u8],
    &'static [u8],
    usize,
    bool,
    bool,
);

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // RFC 5321 §4.1.1.4: the DATA command's CRLF counts as the first CRLF of the terminator.
    (b".\r\n", b"", b"", 3, true, false),
    (b"", b"", b"", 0, false, false),
    (b"a\r\n.\r\n", b"a\r\n", b"a\r\n", 6, true, false),
    (b"\r\n.\r\n", b"\r\n", b"\r\n", 5, true, false),
    (b"\r\n\r\n.\r\n", b"\r\n\r\n", b"\r\n\r\n", 7, true, false),
    // The next pipelined command (RFC 2920 §3.1) is not consumed.
    (b"a\r\n.\r\nQUIT\r\n", b"a\r\n", b"a\r\n", 6, true, false),
    (b".\r\n.\r\n", b"", b"", 3, true, false),
    (b".\r\nMAIL FROM:<a@b>\r\n", b"", b"", 3, true, false),
    // Unfinished input: all consumed, only what is certain is emitted.
    (b"a", b"a", b"a", 1, false, false),
    (b"a\r\n", b"a\r\n", b"a\r\n", 3, false, false),
    (b"a\r\n.", b"a\r\n", b"a\r\n", 4, false, false),
    (b"a\r\n.\r", b"a\r\n", b"a\r\n", 5, false, false),
    (b"a\r", b"a", b"a", 2, false, false),
    (b".", b"", b"", 1, false, false),
    (b".\r", b"", b"", 2, false, false),
    // Without a CRLF before it, a final "." line cannot end the data.
    (b"a.\r\n", b"a.\r\n", b"a.\r\n", 4, false, false),
    (b"abc.\r\n", b"abc.\r\n", b"abc.\r\n", 6, false, false),
    // Transparency, RFC 5321 §4.5.2.
    (b"..\r\n.\r\n", b".\r\n", b".\r\n", 7, true, false),
    (b"a\r\n..b\r\n.\r\n", b"a\r\n.b\r\n", b"a\r\n.b\r\n", 11, true, false,),
    (b"a\r\n...\r\n.\r\n", b"a\r\n..\r\n", b"a\r\n..\r\n", 11, true, false,),
    (b".a\r\n.\r\n", b"a\r\n", b"a\r\n", 7, true, false),
    (b". \r\n.\r\n", b" \r\n", b" \r\n", 7, true, false),
    (b"a.\r\n.b\r\n.\r\n", b"a.\r\nb\r\n", b"a.\r\nb\r\n", 11, true, false,),
    (b"\r\n..\r\n.\r\n", b"\r\n.\r\n", b"\r\n.\r\n", 9, true, false,),
    (b"..", b".", b".", 2, false, false),
    // Smuggling forms (CVE-2023-51764/51765/51766): none of them ends the data.
    (b"a\n.\n", b"a\r\n\r\n", b"a\n.\n", 4, false, true),
    (b"a\n.\r\n", b"a\r\n\r\n", b"a\n.\r\n", 5, false, true),
    (b"a\r\n.\n", b"a\r\n\r\n", b"a\r\n\n", 5, false, true),
    (b"a\r.\r\n", b"a\r.\r\n", b"a\r.\r\n", 5, false, true),
    (b"a\r\n.\rb", b"a\r\n\rb", b"a\r\n\rb", 6, false, true),
    (b"a\r.\rb", b"a\r.\rb", b"a\r.\rb", 5, false, true),
    (b"\n.\n", b"\r\n\r\n", b"\n.\n", 3, false, true),
    (b"\n.\r\n", b"\r\n\r\n", b"\n.\r\n", 4, false, true),
    (b"\r\n.\n", b"\r\n\r\n", b"\r\n\n", 4, false, true),
    (b"\r.\r\n", b"\r.\r\n", b"\r.\r\n", 4, false, true),
    (b"\r.\r", b"\r.", b"\r.", 3, false, true),
    (b".\n", b"\r\n", b"\n", 2, false, true),
    (b".\r.\r\n", b"\r.\r\n", b"\r.\r\n", 5, false, true),
    // ... and the real terminator after them still works.
    (b"a\n.\nb\r\n.\r\n", b"a\r\n\r\nb\r\n", b"a\n.\nb\r\n", 10, true, true,),
    (b"a\n.\r\nb\r\n.\r\n", b"a\r\n\r\nb\r\n", b"a\n.\r\nb\r\n", 11, true, true,),
    (b"a\r\n.\nb\r\n.\r\n", b"a\r\n\r\nb\r\n", b"a\r\n\nb\r\n", 11, true, true,),
    (b"a\r.\r\nb\r\n.\r\n", b"a\r.\r\nb\r\n", b"a\r.\r\nb\r\n", 11, true, true,),
    (b"a\r\n.\rb\r\n.\r\n", b"a\r\n\rb\r\n", b"a\r\n\rb\r\n", 11, true, true,),
    (b"a\r\n.\r\r\n.\r\n", b"a\r\n\r\r\n", b"a\r\n\r\r\n", 10, true, true,),
    (b"a\r\r\n.\r\n", b"a\r\r\n", b"a\r\r\n", 7, true, true),
    (b"\r\r\n.\r\n", b"\r\r\n", b"\r\r\n", 6, true, true),
    (b"a\n\r\n.\r\n", b"a\r\n\r\n", b"a\n\r\n", 7, true, true),
    // Normalize: a line after a bare LF is unstuffed but is never the terminator.
    (b"a\n..b\r\n.\r\n", b"a\r\n.b\r\n", b"a\n..b\r\n", 10, true, true,),
    (b"\n", b"\r\n", b"\n", 1, false, true),
    (b"\r\n\n", b"\r\n\r\n", b"\r\n\n", 3, false, true),
];

#[test]
fn table_one_shot_and_every_split() {
    for &(input, normalized, passed, consumed, done, bare) in TABLE {
        let shown = input.escape_ascii().to_string();
        for policy in POLICIES {
            let want = if policy == Normalize {
                normalized
            } else {
                passed
            };
            let got = decode_all(policy, input);
            assert_eq!(got.out, want, "{policy:?} output for {shown}");
            assert_eq!(got.consumed, consumed, "{policy:?} consumed for {shown}");
            assert_eq!(got.done, done, "{policy:?} done for {shown}");
            assert_eq!(got.bare, bare, "{policy:?} bare for {shown}");
            assert_eq!(
                got.decoded_len,
                want.len() as u64,
                "{policy:?} len for {shown}"
            );
            assert_eq!(got, model(policy, input), "{policy:?} model for {shown}");
            assert_split_invariant(policy, input);
        }
    }
}

#[test]
fn smuggled_second_message_stays_in_the_first() {
    // The Postfix/Sendmail/Exim smuggling payload: an end of data that a lax server accepts,
    // followed by a second transaction.
    let smuggle: &[u8] =
        b"MAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@x.example>\r\nDATA\r\n\
        From: admin@bank.example\r\n\r\nsmuggled\r\n";
    for fake_end in [
        &b"\n.\n"[..],
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r.\r",
    ] {
        let mut wire = b"Subject: hi\r\n\r\nhello".to_vec();
        wire.extend_from_slice(fake_end);
        wire.extend_from_slice(smuggle);
        let body_end = wire.len();
        wire.extend_from_slice(b".\r\nQUIT\r\n");
        for policy in POLICIES {
            let got = decode_all(policy, &wire);
            assert!(got.done, "{policy:?}");
            assert_eq!(got.consumed, body_end + 3, "{policy:?} {fake_end:?}");
            assert!(got.bare, "{policy:?} must notice {fake_end:?}");
            let smuggled_text = b"RCPT TO:<victim@x.example>\r\n";
            assert!(got
                .out
                .windows(smuggled_text.len())
                .any(|w| w == smuggled_text));
        }
    }
}

/// One `decode` call: (chunk, whole output so far, bytes consumed by this call).
type Step = (&'static [u8], &'static [u8], usize);

#[rustfmt::skip]
const CHUNKED: &[&[Step]] = &[
    &[(b"a\r\n.", b"a\r\n", 4), (b".b\r\n.\r\n", b"a\r\n.b\r\n", 7)],
    &[(b"a\r\n", b"a\r\n", 3), (b"..b\r\n", b"a\r\n.b\r\n", 5), (b".\r\n", b"a\r\n.b\r\n", 3)],
    &[(b"a\r", b"a", 2), (b"\n.", b"a\r\n", 2), (b"\r", b"a\r\n", 1), (b"\nX", b"a\r\n", 1)],
    &[(b".", b"", 1), (b".", b".", 1), (b"\r\n.\r\n", b".\r\n", 5)],
    &[(b"a\r\n.\r", b"a\r\n", 5), (b"x\r\n.\r\n", b"a\r\n\rx\r\n", 6)],
    &[(b"a\r", b"a", 2), (b"\r", b"a\r", 1), (b"\n", b"a\r\r\n", 1), (b".\r\n", b"a\r\r\n", 3)],
    &[(b"\r\n", b"\r\n", 2), (b".", b"\r\n", 1), (b"\r", b"\r\n", 1), (b"\r\n.\r\n", b"\r\n\r\r\n", 5)],
];

#[test]
fn dot_stuffing_across_chunk_boundaries() {
    for &steps in CHUNKED {
        let mut dec = DataDecoder::new(Normalize);
        let mut out = Vec::new();
        for &(chunk, want, n) in steps {
            assert_eq!(dec.decode(chunk, &mut out), n, "{steps:?}");
            assert_eq!(out, want, "{steps:?}");
        }
        assert!(dec.is_done(), "{steps:?}");
    }
}

#[test]
fn longest_line_counts_decoded_octets() {
    let x998 = "x".repeat(998);
    let cases: Vec<(Vec<u8>, BareNewlinePolicy, usize)> = vec![
        (b".\r\n".to_vec(), Pass, 0),
        (b"abc\r\n.\r\n".to_vec(), Pass, 5),
        // RFC 5321 §4.5.3.1.6: the dot added for transparency is not counted.
        (b"..abc\r\n.\r\n".to_vec(), Pass, 6),
        (b"a\r\nlonger\r\nb\r\n.\r\n".to_vec(), Normalize, 8),
        (b"a\nbb\r\n.\r\n".to_vec(), Normalize, 4),
        (b"a\nbb\r\n.\r\n".to_vec(), Pass, 6),
        (b"a\nbb\r\n.\r\n".to_vec(), Reject, 6),
        (b"abcdef".to_vec(), Pass, 6),
        (b"ab\r".to_vec(), Pass, 2),
        (b"ab\rc".to_vec(), Pass, 4),
        (format!("{x998}\r\n.\r\n").into_bytes(), Pass, 1000),
        (format!("{x998}x\r\n.\r\n").into_bytes(), Pass, 1001),
        (format!(".{x998}\r\n.\r\n").into_bytes(), Normalize, 1000),
        (format!("{x998}\n.\r\n").into_bytes(), Normalize, 1000),
    ];
    for (input, policy, want) in cases {
        let got = decode_all(policy, &input);
        assert_eq!(
            got.longest,
            want,
            "{policy:?} {:?}",
            input.escape_ascii().to_string()
        );
        assert_eq!(got.longest, model(policy, &input).longest);
    }
}

#[test]
fn bare_newline_detection_waits_for_the_next_byte() {
    let mut dec = DataDecoder::new(Reject);
    let mut out = Vec::new();
    dec.decode(b"a\r", &mut out);
    assert!(!dec.saw_bare_newline(), "a final CR may still become CRLF");
    dec.decode(b"\n", &mut out);
    assert!(!dec.saw_bare_newline());
    dec.decode(b".\r", &mut out);
    assert!(!dec.saw_bare_newline());
    dec.decode(b"x", &mut out);
    assert!(
        dec.saw_bare_newline(),
        "\".\\r\" then \"x\" holds a bare CR"
    );
    assert_eq!(out, b"a\r\n\rx");
}

#[test]
fn decoded_len_counts_only_appended_bytes() {
    let mut dec = DataDecoder::new(Normalize);
    let mut out = b"Received: by test\r\n".to_vec();
    assert_eq!(dec.decode(b"..x\ny\r", &mut out), 6);
    assert_eq!(dec.decoded_len(), 5);
    assert_eq!(dec.decode(b"\n.\r\n", &mut out), 4);
    assert_eq!(dec.decoded_len(), 7);
    assert_eq!(out, b"Received: by test\r\n.x\r\ny\r\n");
}

#[test]
fn reset_starts_a_new_message_and_keeps_the_policy() {
    let mut dec = DataDecoder::new(Pass);
    let mut out = Vec::new();
    assert_eq!(dec.decode(b"a\nb\r\n.\r\n", &mut out), 8);
    assert!(dec.is_done() && dec.saw_bare_newline());
    assert_eq!(dec.decode(b"more", &mut out), 0);
    dec.reset();
    assert_eq!(dec, DataDecoder::new(Pass));
    assert_eq!(dec.policy(), Pass);
    out.clear();
    assert_eq!(dec.decode(b".\r\n", &mut out), 3);
    assert!(dec.is_done() && !dec.saw_bare_newline());
    assert_eq!(
        (out.len(), dec.decoded_len(), dec.longest_line()),
        (0, 0, 0)
    );
    assert_eq!(DataDecoder::default().policy(), Normalize);
}

#[test]
fn large_message_round_trips() {
    let mut body = Vec::new();
    for i in 0..20_000u32 {
        let line = if i % 7 == 0 {
            format!(".line {i} {}\r\n", "z".repeat((i % 90) as usize))
        } else {
            format!("line {i}\r\n")
        };
        body.extend_from_slice(line.as_bytes());
    }
    let wire = dot_stuff(&body);
    for policy in POLICIES {
        for chunk in [wire.len(), 4096, 1000, 7] {
            let cuts: Vec<usize> = (chunk..wire.len()).step_by(chunk).collect();
            let (got, _) = decode_cuts(policy, &wire, &cuts);
            assert!(got.done && !got.bare);
            assert_eq!(got.consumed, wire.len());
            assert_eq!(got.out, body, "{policy:?} chunk {chunk}");
        }
    }
}

#[test]
fn dot_stuff_table() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.b\r\n..c", b"a\r\n..b\r\n...c\r\n.\r\n"),
        (b"\r\n.", b"\r\n..\r\n.\r\n"),
        // Lines are CRLF-delimited: a "." after a bare LF or CR is not at a line start.
        (b"a\n.b", b"a\n.b\r\n.\r\n"),
        (b"a\r.b", b"a\r.b\r\n.\r\n"),
        (b"a\r", b"a\r\r\n.\r\n"),
        (b"a\n", b"a\n\r\n.\r\n"),
    ];
    for &(body, want) in cases {
        assert_eq!(
            dot_stuff(body),
            want,
            "{:?}",
            body.escape_ascii().to_string()
        );
        let mut buf = b"DATA\r\n".to_vec();
        dot_stuff_into(body, &mut buf);
        assert_eq!(&buf[6..], want);
    }
}
