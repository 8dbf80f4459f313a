//! Property tests: the decoder against the model, at every split, on random and uniform input.

use super::*;
use proptest::prelude::*;

/// Bytes weighted towards the ones that matter to the state machine.
fn tricky_byte() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(b'.'), 3 => Just(b'\r'), 3 => Just(b'\n'), 2 => Just(b'a'), 1 => any::<u8>()]
}

/// Inputs built from fragments that form (and almost form) terminators and stuffed lines.
fn wire_input() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"\r\n"[..]),
        Just(&b"."[..]),
        Just(&b".\r\n"[..]),
        Just(&b"\r\n.\r\n"[..]),
        Just(&b"\n"[..]),
        Just(&b"\r"[..]),
        Just(&b"\n."[..]),
        Just(&b".."[..]),
        Just(&b"ab"[..]),
    ];
    prop_oneof![
        prop::collection::vec(piece, 0..24).prop_map(|ps| ps.concat()),
        prop::collection::vec(tricky_byte(), 0..48),
        prop::collection::vec(any::<u8>(), 0..48),
    ]
}

/// Bodies without bare CR or LF: lines of arbitrary other bytes joined by CRLF.
fn clean_body() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![2 => Just(b'.'), 3 => any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n')];
    prop::collection::vec(prop::collection::vec(byte, 0..12), 0..8)
        .prop_map(|lines| lines.join(&b"\r\n"[..]))
}

fn with_final_crlf(body: &[u8]) -> Vec<u8> {
    let mut want = body.to_vec();
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        want.extend_from_slice(b"\r\n");
    }
    want
}

proptest! {
    #[test]
    fn clean_bodies_round_trip_in_every_policy(body in clean_body(), tail in wire_input()) {
        let mut wire = dot_stuff(&body);
        let end = wire.len();
        wire.extend_from_slice(&tail);
        for policy in POLICIES {
            let got = decode_all(policy, &wire);
            prop_assert!(got.done);
            prop_assert!(!got.bare);
            prop_assert_eq!(got.consumed, end);
            prop_assert_eq!(&got.out, &with_final_crlf(&body));
        }
    }

    #[test]
    fn any_body_round_trips_in_pass_policy(
        body in prop_oneof![prop::collection::vec(any::<u8>(), 0..200), prop::collection::vec(tricky_byte(), 0..64)],
    ) {
        let wire = dot_stuff(&body);
        let got = decode_all(Pass, &wire);
        prop_assert!(got.done);
        prop_assert_eq!(got.consumed, wire.len());
        prop_assert_eq!(got.out, with_final_crlf(&body));
    }

    #[test]
    fn split_decoding_equals_one_shot(
        input in wire_input(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        for policy in POLICIES {
            let (whole, whole_dec) = decode_cuts(policy, &input, &[]);
            let (split, split_dec) = decode_cuts(policy, &input, &cuts);
            prop_assert_eq!(&split, &whole);
            prop_assert_eq!(split_dec, whole_dec);
            if input.len() <= 64 {
                assert_split_invariant(policy, &input);
            }
        }
    }

    #[test]
    fn decoder_matches_the_line_model(input in wire_input()) {
        for policy in POLICIES {
            prop_assert_eq!(decode_all(policy, &input), model(policy, &input), "{:?}", policy);
        }
    }

    #[test]
    fn done_only_at_a_real_terminator(input in wire_input()) {
        let end = first_terminator_end(&input);
        let mut outs = Vec::new();
        for policy in POLICIES {
            let got = decode_all(policy, &input);
            prop_assert_eq!(got.done, end.is_some());
            if got.done {
                let used = &input[..got.consumed];
                prop_assert!(used.ends_with(b"\r\n.\r\n") || used == b".\r\n");
                prop_assert_eq!(Some(got.consumed), end);
            } else {
                prop_assert_eq!(got.consumed, input.len());
            }
            if policy == Normalize {
                // Normalize leaves no bare LF in the stored message.
                let lf_ok = got.out.iter().enumerate().all(|(j, &b)| b != b'\n' || (j > 0 && got.out[j - 1] == b'\r'));
                prop_assert!(lf_ok);
            }
            outs.push(got);
        }
        // Reject parses exactly like Pass; the policy never moves the end of data.
        prop_assert_eq!(&outs[1], &outs[2]);
        prop_assert_eq!((outs[0].consumed, outs[0].done, outs[0].bare), (outs[2].consumed, outs[2].done, outs[2].bare));
    }
}

// The fast path (`same_length_run`) takes each line end where the last line's length puts it
// and proves a stretch plain with one count of CR/LF-range bytes: an odd byte among lines of
// one length must still decode exactly as the per-line rules say (RFC 5321 §2.3.8, §4.5.2,
// §4.1.1.4).

#[test]
fn a_guessed_line_end_never_hides_an_odd_byte() {
    // Each odd line has the length of "xyz\r\n", so the guess lands on its real LF.
    for (odd, bare) in [
        (&b"a\nb\r\n"[..], true),
        (b"a\rb\r\n", true),
        (b"\n.b\r\n", true),
        (b"a\x0bb\r\n", false),
        (b"\x0c..\r\n", false),
        // A bare CR inside and a bare LF where the guessed CRLF would end: two line-end bytes,
        // as a plain line has, but no CRLF (RFC 5321 §2.3.8).
        (b"a\rbc\n", true),
        // Dot-stuffed and two octets shorter: its CRLF sits where the guess would put it if
        // the dot were counted as text (RFC 5321 §4.5.2 drops it).
        (b".a\r\n", false),
    ] {
        let wire = [&b"xyz\r\n".repeat(3)[..], odd, b"..y\r\nxyz\r\n.\r\n"].concat();
        for policy in POLICIES {
            let got = decode_all(policy, &wire);
            assert!(got.done && got.bare == bare, "{policy:?} {odd:?}");
            assert_eq!(got, model(policy, &wire), "{policy:?} {odd:?}");
            assert_split_invariant(policy, &wire);
        }
    }
}

#[test]
fn blank_lines_of_one_length_do_not_swallow_the_terminator() {
    // Two empty lines have one length (2: CRLF), so the fast path looks at the line after them;
    // a "." line there is the end of data (RFC 5321 §4.1.1.4), not a dot-stuffed empty line.
    for head in [&b""[..], b"Subject: x\r\n", b"\r\n", b"a\r\n\r\n"] {
        let body = [head, b"\r\n\r\n"].concat();
        let wire = [&body[..], b".\r\nQUIT\r\n"].concat();
        for policy in POLICIES {
            let got = decode_all(policy, &wire);
            assert!(got.done, "{policy:?} {head:?}");
            assert_eq!(got.out, body, "{policy:?} {head:?}");
            assert_eq!(got.consumed, body.len() + 3, "{policy:?} {head:?}");
            assert_eq!(got, model(policy, &wire), "{policy:?} {head:?}");
            assert_split_invariant(policy, &wire);
        }
    }
}

#[test]
fn a_bare_lf_line_before_a_blank_line_is_not_taken_as_crlf() {
    // Lines of the length of "xyz\r\n", then one whose guessed line end is a bare LF and whose
    // only CR sits elsewhere, followed by lines that begin with CR.
    for odd in [&b"a\rbc\n"[..], b"ab\rc\n", b"\rabc\n"] {
        for next in [&b"\r\n"[..], b"\r\r\n", b"\rxyz\r\n"] {
            let wire = [&b"xyz\r\n".repeat(3)[..], odd, next, b".\r\n"].concat();
            for policy in POLICIES {
                let got = decode_all(policy, &wire);
                assert!(got.done && got.bare, "{policy:?} {odd:?} {next:?}");
                assert_eq!(got, model(policy, &wire), "{policy:?} {odd:?} {next:?}");
            }
        }
    }
}

/// Many lines of one length (some dot-stuffed), with a few odd bytes spliced in anywhere,
/// inserted or overwriting as many bytes (which keeps every line end where it was).
fn uniform_lines() -> impl Strategy<Value = Vec<u8>> {
    let odd = prop_oneof![
        Just(&b"\r"[..]),
        Just(&b"\n"[..]),
        Just(&b"."[..]),
        Just(&b"\x0b"[..]),
        Just(&b"\r\n"[..]),
        Just(&b".\r"[..]),
        Just(&b"\r\n.\r\n"[..]),
    ];
    let odds = prop::collection::vec((any::<prop::sample::Index>(), odd, any::<bool>()), 0..4);
    (1usize..90, 1usize..150, 0usize..5, odds).prop_map(|(len, lines, dots, odds)| {
        let mut wire = Vec::new();
        for n in 0..lines {
            if dots > 0 && n % dots == 0 {
                wire.push(b'.');
            }
            wire.extend((0..len).map(|k| b'a' + ((k + n) % 26) as u8));
            wire.extend_from_slice(b"\r\n");
        }
        for (at, bytes, overwrite) in odds {
            let at = at.index(wire.len() + 1);
            let to = if overwrite {
                wire.len().min(at + bytes.len())
            } else {
                at
            };
            wire.splice(at..to, bytes.iter().copied());
        }
        wire.extend_from_slice(b".\r\n");
        wire
    })
}

proptest! {
    #[test]
    fn uniform_lines_decode_like_the_model(
        wire in uniform_lines(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        for policy in POLICIES {
            let (whole, whole_dec) = decode_cuts(policy, &wire, &[]);
            prop_assert_eq!(&whole, &model(policy, &wire), "{:?}", policy);
            let (split, split_dec) = decode_cuts(policy, &wire, &cuts);
            prop_assert_eq!(&split, &whole);
            prop_assert_eq!(split_dec, whole_dec);
        }
    }
}
