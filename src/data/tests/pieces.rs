//! Pieces: merging, truncation and the copy after the piece limit.

use super::*;
use crate::data::output::Piece;

#[test]
fn pieces_merge_adjacent_runs_and_skip_empty_ones() {
    let input = b"abcdef";
    let mut pieces = Pieces::default();
    pieces.input(input, 0, 2);
    pieces.input(input, 2, 4);
    pieces.input(input, 4, 4);
    pieces.bytes(b"");
    pieces.input(input, 5, 6);
    pieces.bytes(b"\r\n");
    let list: Vec<Piece> = pieces.iter().collect();
    assert_eq!(
        list,
        [
            Piece::Input(0, 4),
            Piece::Input(5, 6),
            Piece::Bytes(b"\r\n")
        ]
    );
    assert_eq!(Output::len(&pieces), 7);
}

#[test]
fn pieces_truncate_like_a_vec() {
    let input = b"0123456789";
    for len in 0..=9 {
        let mut pieces = Pieces::default();
        let mut vec = Vec::new();
        for out in [&mut pieces as &mut dyn Output, &mut vec] {
            out.input(input, 0, 3);
            out.bytes(b"\r\n");
            out.input(input, 6, 10);
            out.truncate(len);
        }
        assert_eq!(join(&pieces, input), vec, "truncate({len})");
        assert_eq!(Output::len(&pieces), vec.len());
    }
}

#[test]
fn hostile_input_is_copied_after_the_piece_limit() {
    // A bare LF every other byte under Normalize, and stuffed two-byte lines: each would be a
    // piece of its own. The list stays short, and the octets are the same as a copy's.
    let bare_lfs = b"a\n".repeat(5000);
    let stuffed = b"..\r\n".repeat(5000);
    for (policy, input) in [
        (Normalize, &bare_lfs),
        (Pass, &stuffed),
        (Normalize, &stuffed),
    ] {
        let mut dec = DataDecoder::new(policy);
        let mut copy = Vec::new();
        dec.decode(input, &mut copy);
        let mut dec = DataDecoder::new(policy);
        let mut pieces = Pieces::default();
        dec.decode_into(input, &mut pieces);
        assert!(
            pieces.iter().count() <= 65,
            "{} pieces",
            pieces.iter().count()
        );
        assert_eq!(join(&pieces, input), copy);
        assert_eq!(Output::len(&pieces), copy.len());
        for len in [copy.len() - 1, copy.len() / 2, 100, 3, 0] {
            pieces.truncate(len);
            assert_eq!(join(&pieces, input), copy[..len], "truncate({len})");
        }
    }
}
