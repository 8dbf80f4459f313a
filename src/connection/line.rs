//! Cutting command lines out of received bytes: a plain function on bytes, with no I/O, so
//! that a line split over any number of reads (a parked session's pieces, a slow client) is
//! cut the same way as one that arrived whole.
//!
//! RFC 5321 §2.3.8: lines end in CRLF; a bare LF is reported (`bare_lf`) so the session can
//! refuse it. §4.5.3.1.4: a command line is at most 512 octets including the CRLF; a longer
//! one is reported once, as soon as the limit is passed, and its remainder is skipped up to
//! the next LF without being stored, so a hostile client cannot make the server buffer it.

use memchr::memchr;

/// What one cut found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineStatus {
    /// A line (in the caller's buffer, without its line end); `bare_lf` when it ended in LF
    /// without CR.
    Line { bare_lf: bool },
    /// The line passed the limit; the rest of it is skipped without being stored.
    TooLong,
}

/// The state carried from one piece of input to the next: a line's beginning is carried by
/// the caller in `out`, and this says whether the tail of an over-long line is being skipped.
#[derive(Debug, Default)]
pub(crate) struct LineCutter {
    discarding: bool,
}

impl LineCutter {
    /// Stops skipping (the input before this point was dropped, as after STARTTLS).
    pub(crate) fn reset(&mut self) {
        self.discarding = false;
    }

    /// Moves `avail` into `out` up to the end of a line: returns how many octets of `avail`
    /// were used and, when a line ended (or passed `max`), what it was. `None` means `avail`
    /// ran out inside a line, whose beginning is left in `out` for the next call. At most `max`
    /// octets including the line end are kept.
    pub(crate) fn take(
        &mut self,
        avail: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> (usize, Option<LineStatus>) {
        let mut skipped = 0;
        if self.discarding {
            let Some(i) = memchr(b'\n', avail) else {
                return (avail.len(), None);
            };
            skipped = i + 1;
            self.discarding = false;
        }
        let (used, status) = self.take_fresh(&avail[skipped..], max, out);
        (skipped + used, status)
    }

    fn take_fresh(
        &mut self,
        avail: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> (usize, Option<LineStatus>) {
        let max_content = max.saturating_sub(2);
        let Some(i) = memchr(b'\n', avail) else {
            if out.len() + avail.len() > max_content + 1 {
                self.discarding = true;
                out.clear();
                return (avail.len(), Some(LineStatus::TooLong));
            }
            out.extend_from_slice(avail);
            return (avail.len(), None);
        };
        // A CR at the end of `out` (the previous piece) belongs to the CRLF.
        let cr_before = if i > 0 {
            avail[i - 1] == b'\r'
        } else {
            out.last() == Some(&b'\r')
        };
        let content_len = out.len() + i - usize::from(cr_before);
        if content_len > max_content + usize::from(!cr_before) {
            out.clear();
            return (i + 1, Some(LineStatus::TooLong));
        }
        out.extend_from_slice(&avail[..i]);
        if cr_before {
            out.pop();
        }
        let status = LineStatus::Line {
            bare_lf: !cr_before,
        };
        (i + 1, Some(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts input arriving in `pieces`, as a parked session sees it: one call per line in a
    /// piece, `-` when a piece ends inside a line.
    fn cut_in_pieces(pieces: &[&[u8]], max: usize) -> Vec<String> {
        let mut cutter = LineCutter::default();
        let mut out = Vec::new();
        let mut got = Vec::new();
        for piece in pieces {
            let mut rest: &[u8] = piece;
            loop {
                let (used, status) = cutter.take(rest, max, &mut out);
                assert!(used <= rest.len(), "used {used} of {}", rest.len());
                rest = &rest[used..];
                match status {
                    Some(LineStatus::Line { bare_lf }) => {
                        let end = if bare_lf { "<LF>" } else { "" };
                        got.push(format!("{}{end}", String::from_utf8_lossy(&out)));
                        out.clear();
                    }
                    Some(LineStatus::TooLong) => got.push("<TOO LONG>".into()),
                    None => {
                        assert!(rest.is_empty(), "None with {} octets left", rest.len());
                        got.push("-".into());
                        break;
                    }
                }
            }
        }
        got
    }

    #[test]
    fn whole_lines_are_cut_at_each_line_end() {
        let got = cut_in_pieces(&[b"NOOP\r\nQUIT\nA\rB\r\n\r\n"], 100);
        assert_eq!(got, ["NOOP", "QUIT<LF>", "A\rB", "", "-"]);
    }

    #[test]
    fn a_line_in_pieces_is_joined_and_a_split_crlf_is_one_line_end() {
        let got = cut_in_pieces(&[b"NO", b"OP\r", b"\nQU", b"IT\r\n"], 100);
        assert_eq!(got, ["-", "-", "NOOP", "-", "QUIT", "-"]);
        let got = cut_in_pieces(&[b"A\r", b"B\n"], 100);
        assert_eq!(got, ["-", "A\rB<LF>", "-"]);
    }

    #[test]
    fn the_limit_counts_the_crlf() {
        // max 8 octets with the line end: six of text plus CRLF fit, seven do not; with a
        // bare LF (one octet) seven fit and eight do not.
        let input = b"ABCDEF\r\nABCDEFG\r\nABCDEFG\nABCDEFGH\nOK\r\n";
        let got = cut_in_pieces(&[input], 8);
        let want = [
            "ABCDEF",
            "<TOO LONG>",
            "ABCDEFG<LF>",
            "<TOO LONG>",
            "OK",
            "-",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn an_over_long_line_in_pieces_is_reported_once_and_skipped() {
        // The first piece already passes the limit.
        let got = cut_in_pieces(&[b"ABCDEFGH", b"IJ", b"K\r\nOK\r\n"], 8);
        assert_eq!(got, ["<TOO LONG>", "-", "-", "OK", "-"]);
        // Passed only when the line ends, in the last piece.
        let got = cut_in_pieces(&[b"ABCD", b"EFG", b"HIJ\r\nOK\r\n"], 8);
        assert_eq!(got, ["-", "-", "<TOO LONG>", "OK", "-"]);
        // Exactly at the limit across pieces, with the CR in one piece and the LF in the next.
        let got = cut_in_pieces(&[b"ABC", b"DEF\r", b"\nOK\r\n"], 8);
        assert_eq!(got, ["-", "-", "ABCDEF", "OK", "-"]);
    }

    #[test]
    fn reset_stops_skipping_the_tail_of_a_long_line() {
        let mut cutter = LineCutter::default();
        let mut out = Vec::new();
        let (_, status) = cutter.take(b"ABCDEFGHIJ", 8, &mut out);
        assert_eq!(status, Some(LineStatus::TooLong));
        cutter.reset();
        let (used, status) = cutter.take(b"OK\r\n", 8, &mut out);
        assert_eq!(
            (used, status),
            (4, Some(LineStatus::Line { bare_lf: false }))
        );
        assert_eq!(out, b"OK");
    }
}
