//! Fuzzes the DATA body decoder (`indy_smtp::data`): one-shot decoding must equal decoding split at
//! a fuzzer-chosen boundary in every policy, the end of data must be a real `CRLF.CRLF`
//! (RFC 5321 §4.1.1.4), and `dot_stuff` must round-trip through the decoder.
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

/// Output, consumed count and final decoder state after feeding `chunks` in order.
fn decode(policy: BareNewlinePolicy, chunks: &[&[u8]]) -> (Vec<u8>, usize, DataDecoder) {
    let mut dec = DataDecoder::new(policy);
    let mut out = Vec::new();
    let mut consumed = 0;
    for chunk in chunks {
        let n = dec.decode(chunk, &mut out);
        assert!(n <= chunk.len());
        assert!(
            n == chunk.len() || dec.is_done(),
            "stopped early without being done"
        );
        consumed += n;
        if dec.is_done() {
            break;
        }
    }
    (out, consumed, dec)
}

fn check(input: &[u8], cut: usize) {
    let cut = cut.min(input.len());
    let (head, tail) = input.split_at(cut);
    let mut ends = Vec::new();
    for policy in POLICIES {
        let whole = decode(policy, &[input]);
        let split = decode(policy, &[head, tail]);
        assert_eq!(whole, split, "{policy:?} split at {cut}");
        let (out, consumed, dec) = whole;
        assert_eq!(dec.decoded_len(), out.len() as u64);
        let used = &input[..consumed];
        if dec.is_done() {
            assert!(used.ends_with(b"\r\n.\r\n") || used == b".\r\n");
        } else {
            assert_eq!(consumed, input.len());
            assert!(!input.starts_with(b".\r\n"));
            assert!(!input.windows(5).any(|w| w == b"\r\n.\r\n"));
        }
        if policy == BareNewlinePolicy::Normalize {
            let bare_lf = out
                .iter()
                .enumerate()
                .any(|(j, &b)| b == b'\n' && (j == 0 || out[j - 1] != b'\r'));
            assert!(!bare_lf, "Normalize left a bare LF");
        }
        ends.push((consumed, dec.is_done(), dec.saw_bare_newline()));
    }
    // The policy never moves the end of data.
    assert!(ends.windows(2).all(|w| w[0] == w[1]));

    // Any body survives dot-stuffing and Pass decoding byte-exact (plus a final CRLF).
    let wire = dot_stuff(input);
    let (wire_head, wire_tail) = wire.split_at(cut.min(wire.len()));
    let (out, consumed, dec) = decode(BareNewlinePolicy::Pass, &[wire_head, wire_tail]);
    assert!(dec.is_done());
    assert_eq!(consumed, wire.len());
    let mut want = input.to_vec();
    if !input.is_empty() && !input.ends_with(b"\r\n") {
        want.extend_from_slice(b"\r\n");
    }
    assert_eq!(out, want);
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
