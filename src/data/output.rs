//! Where the DATA decoder puts the message: appended to a `Vec` (the public
//! [`DataDecoder::decode`](super::DataDecoder::decode)), or described as [`Pieces`] of the
//! input, so that the DATA reader hands out its read buffer itself instead of a copy of it.
//!
//! The decoder's output is its input with a few bytes dropped (the "." of a stuffed line, the
//! terminating line) and, rarely, a few added (a CR LF for a bare LF under `Normalize`, or a CR
//! held back at the end of the previous input), so a block of input is almost always one piece.

/// A sink for decoded message data.
pub(crate) trait Output {
    /// Octets received so far.
    fn len(&self) -> usize;
    /// Room for `additional` more octets, if that means anything to this sink.
    fn reserve(&mut self, additional: usize);
    /// `input[from..to]` is message data as it stands.
    fn input(&mut self, input: &[u8], from: usize, to: usize);
    /// Message data that is not a run of the current input.
    fn bytes(&mut self, bytes: &'static [u8]);
    /// Forgets everything after the first `len` octets.
    fn truncate(&mut self, len: usize);
}

impl Output for Vec<u8> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn reserve(&mut self, additional: usize) {
        Vec::reserve(self, additional);
    }

    fn input(&mut self, input: &[u8], from: usize, to: usize) {
        self.extend_from_slice(input.get(from..to).unwrap_or_default());
    }

    fn bytes(&mut self, bytes: &'static [u8]) {
        self.extend_from_slice(bytes);
    }

    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
}

/// Pieces a block may be described by before the rest of it is copied. Ordinary mail is one
/// piece per block, or one per stuffed dot; hostile input (a bare LF or a stuffed short line
/// every few bytes) would otherwise cost a 24-byte piece per few bytes of data, 1.5 MB for a
/// 64 KiB block of bare LFs.
const MAX_PIECES: usize = 64;

/// One piece of decoded data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// The octets `from..to` of the input that was decoded.
    Input(usize, usize),
    /// Octets the decoder supplied.
    Bytes(&'static [u8]),
    /// The octets `from..to` of the copy kept once a block has [`MAX_PIECES`] pieces.
    Copied(usize, usize),
}

impl Piece {
    fn len(&self) -> usize {
        match *self {
            Piece::Input(from, to) | Piece::Copied(from, to) => to - from,
            Piece::Bytes(bytes) => bytes.len(),
        }
    }
}

/// Decoded data as a list of pieces, in order; adjacent runs of input are merged. Holds the
/// pieces of one `decode_into` call: [`clear`](Self::clear) it before decoding other input.
#[derive(Debug, Default)]
pub(crate) struct Pieces {
    list: Vec<Piece>,
    len: usize,
    /// What came after the first `MAX_PIECES` pieces, copied (allocated only then).
    copied: Vec<u8>,
}

impl Pieces {
    pub(crate) fn clear(&mut self) {
        self.list.clear();
        self.len = 0;
        self.copied.clear();
    }

    pub(crate) fn get(&self, index: usize) -> Option<Piece> {
        self.list.get(index).copied()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Piece> + '_ {
        self.list.iter().copied()
    }

    /// The octets of `piece`; `input` is what was decoded.
    pub(crate) fn slice<'a>(&'a self, piece: Piece, input: &'a [u8]) -> &'a [u8] {
        match piece {
            Piece::Input(from, to) => input.get(from..to),
            Piece::Copied(from, to) => self.copied.get(from..to),
            Piece::Bytes(bytes) => Some(bytes),
        }
        .unwrap_or_default()
    }

    fn push(&mut self, piece: Piece, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        let full = self.list.len() >= MAX_PIECES;
        match (self.list.last_mut(), piece) {
            (Some(Piece::Input(_, end)), Piece::Input(from, to)) if *end == from => *end = to,
            (Some(Piece::Copied(_, end)), _) => {
                self.copied.extend_from_slice(bytes);
                *end = self.copied.len();
            }
            _ if full => {
                let from = self.copied.len();
                self.copied.extend_from_slice(bytes);
                self.list.push(Piece::Copied(from, self.copied.len()));
            }
            _ => self.list.push(piece),
        }
    }
}

impl Output for Pieces {
    fn len(&self) -> usize {
        self.len
    }

    fn reserve(&mut self, _additional: usize) {}

    fn input(&mut self, input: &[u8], from: usize, to: usize) {
        let bytes = input.get(from..to).unwrap_or_default();
        self.push(Piece::Input(from, to), bytes);
    }

    fn bytes(&mut self, bytes: &'static [u8]) {
        self.push(Piece::Bytes(bytes), bytes);
    }

    fn truncate(&mut self, len: usize) {
        while self.len > len {
            let Some(last) = self.list.pop() else {
                break;
            };
            let keep = last.len().saturating_sub(self.len - len);
            self.len -= last.len();
            let kept = match last {
                Piece::Input(from, _) => Piece::Input(from, from + keep),
                Piece::Copied(from, _) => {
                    // Copied pieces are the last ones, in the order of `copied`.
                    self.copied.truncate(from + keep);
                    Piece::Copied(from, from + keep)
                }
                Piece::Bytes(bytes) => Piece::Bytes(bytes.get(..keep).unwrap_or_default()),
            };
            if keep > 0 {
                self.len += keep;
                self.list.push(kept);
            }
        }
    }
}
