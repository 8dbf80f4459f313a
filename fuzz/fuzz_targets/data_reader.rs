//! Fuzzes the DATA body decoder (`indy_smtp::data`), the state machine under the DATA reader.
//!
//! Checked in every `BareNewlinePolicy`:
//! - the decoder agrees exactly (output, bytes consumed, end found, bare CR/LF seen, longest
//!   line) with a slow byte-by-byte reference model written from the rules: the message ends at
//!   exactly `CRLF "." CRLF` (RFC 5321 §4.1.1.4), the first "." of a line is dropped (RFC 5321
//!   §4.5.2), only CRLF is a line end (RFC 5321 §2.3.8), and `Normalize` turns a bare LF into
//!   CRLF without letting it start a terminator line (no SMTP smuggling);
//! - decoding in one piece, split at a fuzzer-chosen boundary, and one byte at a time give the
//!   same result and the same final decoder state;
//! - the policy never moves the end of data, and `Reject` decodes exactly like `Pass`;
//! - any body, dot-stuffed by `dot_stuff` (the client side), comes back byte-exact under `Pass`.
//!
//! Like smtp-proto's fuzz target, each input is tried twice: as raw bytes, and mapped into the
//! alphabet `.\r\nab` so that terminators, stuffed dots and bare CR/LF come up often.
#![no_main]

use indy_smtp::data::{dot_stuff, BareNewlinePolicy, DataDecoder};
use libfuzzer_sys::fuzz_target;

const POLICIES: [BareNewlinePolicy; 3] = [
    BareNewlinePolicy::Normalize,
    BareNewlinePolicy::Reject,
    BareNewlinePolicy::Pass,
];

/// What decoding produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    out: Vec<u8>,
    consumed: usize,
    done: bool,
    saw_bare: bool,
    longest: usize,
}

/// Feeds `chunks` in order to one decoder; returns the outcome and the decoder.
fn decode(policy: BareNewlinePolicy, chunks: &[&[u8]]) -> (Outcome, DataDecoder) {
    let mut dec = DataDecoder::new(policy);
    let mut out = Vec::new();
    let mut consumed = 0;
    for chunk in chunks {
        let n = dec.decode(chunk, &mut out);
        assert!(n <= chunk.len());
        // Until done, all input is consumed (a pending CR or "." is kept in the decoder).
        assert!(
            n == chunk.len() || dec.is_done(),
            "stopped early without being done"
        );
        consumed += n;
        if dec.is_done() {
            // Once done, nothing more is consumed.
            assert_eq!(dec.decode(b"x\r\n.\r\n", &mut out), 0);
            break;
        }
    }
    assert_eq!(dec.decoded_len(), out.len() as u64);
    let outcome = Outcome {
        out,
        consumed,
        done: dec.is_done(),
        saw_bare: dec.saw_bare_newline(),
        longest: dec.longest_line(),
    };
    (outcome, dec)
}

/// The reference: the rules applied one byte at a time, with look-ahead instead of state. A CR
/// at the very end of the input is pending (neither output nor counted as bare) because the
/// next byte decides whether it ends a line.
fn model(policy: BareNewlinePolicy, input: &[u8]) -> Outcome {
    let normalize = policy == BareNewlinePolicy::Normalize;
    let mut o = Outcome {
        out: Vec::new(),
        consumed: input.len(),
        done: false,
        saw_bare: false,
        longest: 0,
    };
    let mut line = 0usize; // decoded octets of the current line
    let (mut line_start, mut after_crlf) = (true, true);
    let mut i = 0;
    while i < input.len() {
        if line_start {
            line_start = false;
            if input[i] == b'.' {
                if after_crlf && input[i + 1..].starts_with(b"\r\n") {
                    o.consumed = i + 3;
                    o.done = true;
                    line = 0;
                    break;
                }
                i += 1; // transparency dot dropped
                continue;
            }
        }
        match (input[i], input.get(i + 1)) {
            (b'\r', Some(b'\n')) => {
                o.out.extend_from_slice(b"\r\n");
                o.longest = o.longest.max(line + 2);
                line = 0;
                (line_start, after_crlf) = (true, true);
                i += 2;
                continue;
            }
            (b'\r', None) => {} // pending
            (b'\n', _) if normalize => {
                o.saw_bare = true;
                o.out.extend_from_slice(b"\r\n");
                o.longest = o.longest.max(line + 2);
                line = 0;
                (line_start, after_crlf) = (true, false);
            }
            (b, _) => {
                if b == b'\r' || b == b'\n' {
                    o.saw_bare = true;
                }
                o.out.push(b);
                line += 1;
            }
        }
        i += 1;
    }
    o.longest = o.longest.max(line);
    o
}

fn check(input: &[u8], cut: usize) {
    let cut = cut.min(input.len());
    let (head, tail) = input.split_at(cut);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let mut ends = Vec::new();
    let mut pass_out = Vec::new();
    for policy in POLICIES {
        let (whole, whole_dec) = decode(policy, &[input]);
        let (split, split_dec) = decode(policy, &[head, tail]);
        let (single, single_dec) = decode(policy, &bytes);
        assert_eq!(whole, split, "{policy:?} split at {cut}");
        assert_eq!(whole, single, "{policy:?} byte by byte");
        assert_eq!(whole_dec, split_dec);
        assert_eq!(whole_dec, single_dec);
        assert_eq!(
            whole,
            model(policy, input),
            "{policy:?} differs from the model"
        );

        let used = &input[..whole.consumed];
        if whole.done {
            assert!(used.ends_with(b"\r\n.\r\n") || used == b".\r\n");
        } else {
            assert!(!input.starts_with(b".\r\n"));
            assert!(!input.windows(5).any(|w| w == b"\r\n.\r\n"));
        }
        if policy == BareNewlinePolicy::Normalize {
            let out = &whole.out;
            let bare_lf = out
                .iter()
                .enumerate()
                .any(|(j, &b)| b == b'\n' && (j == 0 || out[j - 1] != b'\r'));
            assert!(!bare_lf, "Normalize left a bare LF");
        }
        ends.push((whole.consumed, whole.done, whole.saw_bare));
        if policy != BareNewlinePolicy::Normalize {
            pass_out.push(whole.out);
        }
    }
    // The policy never moves the end of data; Reject only flags, it decodes as Pass.
    assert!(ends.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(pass_out[0], pass_out[1]);

    // Any body survives dot-stuffing and Pass decoding byte-exact (plus a final CRLF).
    let wire = dot_stuff(input);
    let (wire_head, wire_tail) = wire.split_at(cut.min(wire.len()));
    let (got, _) = decode(BareNewlinePolicy::Pass, &[wire_head, wire_tail]);
    assert!(got.done);
    assert_eq!(got.consumed, wire.len());
    let mut want = input.to_vec();
    if !input.is_empty() && !input.ends_with(b"\r\n") {
        want.extend_from_slice(b"\r\n");
    }
    assert_eq!(got.out, want);
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let cut = usize::from(first) % (rest.len() + 1);
    check(rest, cut);
    const ALPHABET: &[u8; 5] = b".\r\nab";
    let mapped: Vec<u8> = rest
        .iter()
        .map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()])
        .collect();
    check(&mapped, cut);
});
