//! The SMTP `DATA` body decoder: finds the end of the message, undoes dot-stuffing and applies the
//! bare-newline policy, incrementally and without I/O.
//!
//! The rules it implements:
//!
//! * The message ends at exactly `CR LF "." CR LF` (RFC 5321 §4.1.1.4), where the first CRLF may be
//!   the one that ended the `DATA` command line. That CRLF belongs to the message, so `"a\r\n.\r\n"`
//!   decodes to `"a\r\n"` and `".\r\n"` to the empty message.
//! * A line that begins with `"."` loses that first `"."` (transparency, RFC 5321 §4.5.2).
//! * Only CRLF is a line end in SMTP (RFC 5321 §2.3.8). A bare CR or bare LF never ends the message,
//!   whatever the [`BareNewlinePolicy`]: `<LF>.<LF>`, `<LF>.<CR><LF>`, `<CR><LF>.<LF>`, `<CR>.<CR>`
//!   and the like are data. Treating them as the end of data is the "SMTP smuggling" bug class
//!   (CVE-2023-51764, CVE-2023-51765, CVE-2023-51766): a second message hidden in the first would be
//!   read as commands.
//!
//! The decoder is a small state machine on bytes, so input may arrive split at any byte boundary
//! and the result is the same as decoding it in one piece. It stops right after the terminating
//! line and leaves the bytes after it (the next pipelined command, RFC 2920 §3.1) unconsumed.
//!
//! ```
//! use indy_smtp::data::{BareNewlinePolicy, DataDecoder};
//!
//! let mut dec = DataDecoder::new(BareNewlinePolicy::Normalize);
//! let mut msg = Vec::new();
//! let wire = b"Subject: hi\r\n..dot\r\n.\r\nQUIT\r\n";
//! let used = dec.decode(&wire[..9], &mut msg);
//! let used = used + dec.decode(&wire[used..], &mut msg);
//! assert!(dec.is_done());
//! assert_eq!(msg, b"Subject: hi\r\n.dot\r\n");
//! assert_eq!(&wire[used..], b"QUIT\r\n");
//! ```

use memchr::{memchr2, memmem};

mod output;
pub(crate) use output::{Output, Pieces};

const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// How many bytes [`same_length_run`] walks before it checks them and hands them over: this
/// many at first, so that a stretch that fails its check wastes little (the per-line path then
/// redoes it), doubling after each stretch that passes, up to [`MAX_STRETCH`].
const FIRST_STRETCH: usize = 256;
const MAX_STRETCH: usize = 4096;

/// Bytes left to the per-line path after a stretch that failed its check (and the stretch
/// itself); doubled at each further failure in a row, up to [`MAX_BACKOFF`].
const MIN_BACKOFF: usize = 256;
const MAX_BACKOFF: usize = 64 * 1024;

/// What to do with a bare CR or bare LF (one not part of CRLF) in message data, and with a bare
/// LF at the end of a command line.
///
/// RFC 5321 §2.3.8 forbids them, and RFC 5321 §4.1.1.4 makes only `CRLF.CRLF` the end of data, so no
/// policy lets them end the message; they differ in what reaches the stored message.
///
/// Command lines: under `Normalize` and `Pass` a line ending in a bare LF is taken as a command
/// (as Postfix and most servers do, for hand-typed and scripted clients; §2.3.8 says a server
/// MUST NOT, so this is leniency, not conformance); under `Reject` it is refused with
/// `500 5.5.2`. A bare LF can never end the message data this way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BareNewlinePolicy {
    /// Default (like Postfix `smtpd_forbid_bare_newline = normalize`): a bare LF is taken as a line end and
    /// stored as CRLF (dot-unstuffing applies after it); a bare CR passes through as data.
    #[default]
    Normalize,
    /// Like Pass for parsing, but the decoder records that a bare CR or LF was seen, so the server
    /// refuses the whole message with 550 5.6.11 after reading it to its end (Postfix strict mode).
    Reject,
    /// Bare CR and LF are ordinary data bytes (go-smtp's behaviour); only CRLF is a line end.
    Pass,
}

/// Where the decoder is within the data stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line. Only a line that follows a real CRLF (or the DATA command's CRLF) can
    /// be the terminating "." line (RFC 5321 §4.1.1.4); `after_crlf` is false for a line that began
    /// after a bare LF under [`BareNewlinePolicy::Normalize`].
    LineStart { after_crlf: bool },
    /// Inside the text of a line.
    Text,
    /// A CR ended the input so far; whether it is half of a CRLF depends on the next byte.
    Cr,
    /// A "." began a line that followed a CRLF. It has been dropped (RFC 5321 §4.5.2); the line
    /// ends the data if it is exactly ".\r\n".
    Dot,
    /// `CRLF "." CR` seen: one LF more ends the data.
    DotCr,
    /// The terminating line has been read; nothing more is consumed until [`DataDecoder::reset`].
    Done,
}

/// Incremental, resumable decoder for the body that follows the `DATA` command (RFC 5321 §4.1.1.4).
///
/// Feed it the bytes read from the connection with [`decode`](Self::decode) until
/// [`is_done`](Self::is_done); it appends the message (dot-unstuffed, line ends per the
/// [`BareNewlinePolicy`]) to the caller's buffer and allocates nothing itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDecoder {
    policy: BareNewlinePolicy,
    state: State,
    saw_bare: bool,
    /// Decoded octets of the current, unfinished line (a pending CR not yet counted).
    line_len: usize,
    /// Longest finished line, in decoded octets including its line end.
    longest: usize,
    decoded_len: u64,
}

impl Default for DataDecoder {
    /// A decoder with the default [`BareNewlinePolicy::Normalize`].
    fn default() -> Self {
        Self::new(BareNewlinePolicy::default())
    }
}

impl DataDecoder {
    /// Creates a decoder positioned at the start of a message, right after the `DATA` command's CRLF.
    pub fn new(policy: BareNewlinePolicy) -> Self {
        DataDecoder {
            policy,
            state: State::LineStart { after_crlf: true },
            saw_bare: false,
            line_len: 0,
            longest: 0,
            decoded_len: 0,
        }
    }

    /// The policy this decoder applies to bare CR and bare LF.
    pub fn policy(&self) -> BareNewlinePolicy {
        self.policy
    }

    /// Decodes as much of `input` as it can, appending the message bytes to `out`; returns how many
    /// input bytes it consumed. It stops right after the end-of-data line: bytes after it are NOT consumed
    /// (they are the next pipelined command). Call again with more input until `is_done()`.
    ///
    /// Until the decoder is done it consumes all of `input`: a CR or "." whose meaning depends on
    /// the next byte is remembered in the decoder, not left in `input`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        self.decode_into(input, out)
    }

    /// [`decode`](Self::decode) into any [`Output`]: the DATA reader takes the message as
    /// [`Pieces`] of its read buffer instead of a copy.
    pub(crate) fn decode_into<O: Output>(&mut self, input: &[u8], out: &mut O) -> usize {
        if self.state == State::Done || input.is_empty() {
            return 0;
        }
        let out_start = out.len();
        // The output is at most the input plus one CR per bare LF; reserving the input's length
        // makes a single growth step the common case.
        out.reserve(input.len());
        let mut i = 0;
        let mut fast = FastPath::default();
        while let Some(&b) = input.get(i) {
            match self.state {
                State::Done => break,
                State::LineStart { after_crlf } => {
                    if b == b'.' {
                        // RFC 5321 §4.5.2: the first "." of a line is dropped in every case; only
                        // after a CRLF can the line still turn out to be the terminator.
                        i += 1;
                        self.state = if after_crlf { State::Dot } else { State::Text };
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Dot => {
                    if b == CR {
                        i += 1;
                        self.state = State::DotCr;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::DotCr => {
                    if b == LF {
                        // RFC 5321 §4.1.1.4: CRLF "." CRLF. The first CRLF was already emitted as
                        // part of the message; the "." line itself is not.
                        i += 1;
                        self.state = State::Done;
                        break;
                    }
                    // "." CR then not LF: an unstuffed line whose CR is bare; `b` is read as text.
                    self.bare_cr(out);
                }
                State::Cr => {
                    if b == LF {
                        i += 1;
                        // The CR ended the previous input.
                        out.bytes(b"\r\n");
                        self.end_line(self.line_len.saturating_add(2));
                        self.state = State::LineStart { after_crlf: true };
                    } else {
                        self.bare_cr(out);
                    }
                }
                State::Text => i = self.text(input, i, out, &mut fast),
            }
        }
        self.decoded_len = self
            .decoded_len
            .saturating_add(out.len().saturating_sub(out_start) as u64);
        i
    }

    /// Copies line text from `input[start..]` to `out`, across as many lines as possible in one
    /// copy, and returns where it stopped: at the end of the input, or where a byte must be dropped
    /// or changed (a "." after CRLF, a CR that may end a line, a bare LF under Normalize).
    ///
    /// Lines are found one CR or LF at a time; once two in a row have one length, the lines
    /// that follow with that length are taken a stretch at a time by
    /// [`FastPath::same_length_lines`].
    fn text<O: Output>(
        &mut self,
        input: &[u8],
        start: usize,
        out: &mut O,
        fast: &mut FastPath,
    ) -> usize {
        let mut i = start;
        // Input before `copied` is in `out` already (the fast path copies what it passes).
        let mut copied = start;
        // Decoded length of the last line ended in this call (0: none yet).
        let mut last_len = 0;
        let stop = loop {
            let rest = input.get(i..).unwrap_or_default();
            let Some(p) = memchr2(CR, LF, rest) else {
                self.line_len = self.line_len.saturating_add(rest.len());
                break input.len();
            };
            let seg = self.line_len.saturating_add(p);
            let at = i + p;
            match (rest.get(p), rest.get(p + 1)) {
                (Some(&CR), Some(&LF)) => {
                    // RFC 5321 §2.3.8: CRLF is the line end.
                    let len = seg.saturating_add(2);
                    self.end_line(len);
                    i = at + 2;
                    if len == last_len && i >= fast.from {
                        // Two lines of one length in a row, as in base64 or quoted-printable.
                        let end = fast.same_length_lines(input, i, len, copied, out);
                        if end > i {
                            (i, copied) = (end, end);
                        }
                    }
                    last_len = len;
                    match input.get(i) {
                        Some(&b'.') | None => {
                            self.state = State::LineStart { after_crlf: true };
                            break i;
                        }
                        Some(_) => {}
                    }
                }
                (Some(&CR), None) => {
                    // Whether this CR ends the line is known only with the next input.
                    self.line_len = seg;
                    self.state = State::Cr;
                    out.input(input, copied, at);
                    return at + 1;
                }
                (Some(&CR), Some(_)) => {
                    // A bare CR is data in every policy (RFC 5321 §2.3.8 forbids it; we record it).
                    self.saw_bare = true;
                    self.line_len = seg.saturating_add(1);
                    i = at + 1;
                }
                _ => {
                    // memchr2 found no CR at `p`, so it is a bare LF.
                    self.saw_bare = true;
                    if self.policy == BareNewlinePolicy::Normalize {
                        out.input(input, copied, at);
                        out.bytes(b"\r\n");
                        self.end_line(seg.saturating_add(2));
                        self.state = State::LineStart { after_crlf: false };
                        return at + 1;
                    }
                    self.line_len = seg.saturating_add(1);
                    i = at + 1;
                }
            }
        };
        out.input(input, copied, stop);
        stop
    }

    /// Emits a pending CR that turned out not to be followed by LF, and goes on reading text.
    fn bare_cr<O: Output>(&mut self, out: &mut O) {
        self.saw_bare = true;
        out.bytes(b"\r");
        self.line_len = self.line_len.saturating_add(1);
        self.state = State::Text;
    }

    fn end_line(&mut self, len: usize) {
        self.longest = self.longest.max(len);
        self.line_len = 0;
    }

    /// True once the terminating `CRLF.CRLF` has been consumed (RFC 5321 §4.1.1.4).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// A bare CR or bare LF was seen (any policy).
    ///
    /// Under [`BareNewlinePolicy::Reject`] the server answers `550 5.6.11` once the message has been
    /// read to its end (RFC 3463 §3.7: X.6 is the message-content class), as Postfix's strict mode
    /// does; reading on to the terminator keeps the session in step with the client. A CR at the
    /// very end of the input so far is not counted until the next byte shows it is bare.
    pub fn saw_bare_newline(&self) -> bool {
        self.saw_bare
    }

    /// Length in octets (including the line end) of the longest line seen so far, for the RFC 5321 §4.5.3.1.6 1000-octet text line limit policy.
    ///
    /// Lines are measured after unstuffing, as RFC 5321 §4.5.3.1.6 does not count the dot added for
    /// transparency, and after normalizing (a bare LF turned into CRLF counts 2). The unfinished
    /// current line counts too, so an over-long line shows before its end arrives; the terminating
    /// "." line is not part of the message and does not count.
    pub fn longest_line(&self) -> usize {
        self.longest.max(self.line_len)
    }

    /// Message bytes produced so far (after unstuffing/normalizing).
    pub fn decoded_len(&self) -> u64 {
        self.decoded_len
    }

    /// Resets to the state at the start of a new message (after the DATA command's CRLF).
    pub fn reset(&mut self) {
        *self = Self::new(self.policy);
    }
}

/// The fast path of one [`DataDecoder::decode`] call: lines of one length, a stretch at a time.
///
/// After a stretch fails its check (a CR or LF inside a line of the expected length), the
/// per-line path takes that stretch and then a backoff that grows while failures follow each
/// other: input the fast path does not suit costs little more than the per-line path alone,
/// and decoding stays linear.
#[derive(Debug, Default)]
struct FastPath {
    /// Where the fast path may next be tried.
    from: usize,
    backoff: usize,
}

impl FastPath {
    /// Decodes the lines at `input[start..]` (`start` follows a CRLF) that have `len` decoded
    /// octets, a stretch at a time, and returns where it stopped: at a line of another length,
    /// or one the per-line rules must look at. If that is past `start`, `out` has everything
    /// from `copied` to there.
    ///
    /// These lines change nothing in the decoder: the longest line is already at least `len`,
    /// and where this stops the decoder is at the start of a line after a CRLF again.
    // Kept out of line: inlined, it made the per-line loop in `decode` spill registers, which
    // cost lines that never come here (varying lengths, bare LFs) about 10 % more instructions.
    #[inline(never)]
    fn same_length_lines<O: Output>(
        &mut self,
        input: &[u8],
        start: usize,
        len: usize,
        copied: usize,
        out: &mut O,
    ) -> usize {
        let (mut i, mut copied) = (start, copied);
        // Short at first, so that a stretch that fails its check wastes little.
        let mut limit = FIRST_STRETCH;
        loop {
            match same_length_run(input, i, len, limit, copied, out) {
                Ok(end) if end == i => return i,
                Ok(end) => {
                    (i, copied) = (end, end);
                    limit = (limit * 2).min(MAX_STRETCH);
                    self.backoff = 0;
                }
                Err(end) => {
                    self.backoff = (self.backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                    self.from = end.saturating_add(self.backoff);
                    return i;
                }
            }
        }
    }
}

/// One stretch of [`FastPath::same_length_lines`], of about `limit` bytes at most. Each line in
/// it has `len` decoded octets ending in CRLF, loses a leading "." (RFC 5321 §4.5.2), and holds
/// no other CR or LF (so nothing bare, in any policy). A line that begins with "." then CR (maybe
/// the end of data, RFC 5321 §4.1.1.4), or whose first bytes have not arrived, ends the stretch
/// and is left to the state machine.
///
/// Each line end is checked with one byte comparison where `len` puts it, instead of a
/// `memchr2` call; one vectorizable count over the stretch then proves that there was no other
/// CR or LF in between. On success `out` has `input[copied..end]` minus the dropped dots and the
/// result is `end` (`start` when the first line does not fit). On failure `out` is unchanged
/// and the result is the end of the stretch: the per-line path must take it.
fn same_length_run<O: Output>(
    input: &[u8],
    start: usize,
    len: usize,
    limit: usize,
    copied: usize,
    out: &mut O,
) -> Result<usize, usize> {
    let out_len = out.len();
    let mut uncopied = copied;
    let mut line_start = start;
    let mut lines = 0;
    while line_start - start < limit {
        let text_start = match input.get(line_start) {
            Some(&b'.') => match input.get(line_start + 1) {
                Some(&b) if b != CR => line_start + 1,
                _ => break,
            },
            Some(_) => line_start,
            None => break,
        };
        let lf = text_start.saturating_add(len.saturating_sub(1));
        if !ends_crlf_line(input, text_start, lf) {
            break;
        }
        if text_start != line_start {
            out.input(input, uncopied, line_start);
            uncopied = text_start;
        }
        line_start = lf + 1;
        lines += 1;
    }
    if lines == 0 {
        return Ok(start);
    }
    // The lines' CRLFs are 2 * `lines` distinct bytes in 0x0A..=0x0D; any more is a CR or LF
    // inside a line: an LF means the lines were not where the length put them.
    if count_line_end_bytes(input.get(start..line_start).unwrap_or_default()) != 2 * lines {
        out.truncate(out_len);
        return Err(line_start);
    }
    out.input(input, uncopied, line_start);
    Ok(line_start)
}

/// The LF at `lf` ends a line whose text starts at `text_start` with CRLF (RFC 5321 §2.3.8),
/// the CR being part of that line.
fn ends_crlf_line(input: &[u8], text_start: usize, lf: usize) -> bool {
    lf > text_start && input.get(lf - 1) == Some(&CR) && input.get(lf) == Some(&LF)
}

/// How many bytes of `s` are LF, VT, FF or CR (0x0A..=0x0D). Taking the range rather than CR and
/// LF alone is one comparison less per byte; a VT or FF (rare in mail) only sends its stretch
/// the per-line way.
fn count_line_end_bytes(s: &[u8]) -> usize {
    fn is_line_end_byte(b: u8) -> bool {
        b.wrapping_sub(LF) <= CR - LF
    }
    // Per-lane u8 counters compile to SIMD compare-and-add; 255 blocks fill them at most.
    const LANES: usize = 32;
    let mut blocks = s.chunks_exact(LANES);
    let mut total = 0;
    loop {
        let mut lanes = [0u8; LANES];
        let mut filled = 0;
        for block in blocks.by_ref().take(usize::from(u8::MAX)) {
            for (lane, &b) in lanes.iter_mut().zip(block) {
                *lane += u8::from(is_line_end_byte(b));
            }
            filled += 1;
        }
        total += lanes.iter().map(|&n| usize::from(n)).sum::<usize>();
        if filled < usize::from(u8::MAX) {
            break;
        }
    }
    let tail = blocks.remainder().iter();
    total + tail.filter(|&&b| is_line_end_byte(b)).count()
}

/// Client side (tests, load generator): dot-stuffs `body` and appends the terminator, producing exactly what a
/// conforming client sends after DATA: every CRLF-delimited line starting with "." gets one more ".", a CRLF is
/// added if the body does not end with one (and body is non-empty), then ".\r\n".
///
/// ```
/// use indy_smtp::data::dot_stuff;
///
/// assert_eq!(dot_stuff(b".a\r\nb"), b"..a\r\nb\r\n.\r\n");
/// assert_eq!(dot_stuff(b""), b".\r\n");
/// ```
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    dot_stuff_into(body, &mut out);
    out
}

/// Like [`dot_stuff`], but appends to `out`, so a load generator can reuse one buffer.
pub fn dot_stuff_into(body: &[u8], out: &mut Vec<u8>) {
    // RFC 5321 §4.5.2: the client doubles a "." that begins a line; lines are CRLF-delimited
    // (RFC 5321 §2.3.8), so a "." after a bare CR or LF is left alone.
    out.reserve(body.len() + 5);
    let mut start = 0;
    if body.first() == Some(&b'.') {
        out.push(b'.');
    }
    for pos in memmem::find_iter(body, b"\r\n.") {
        let dot = pos + 2;
        out.extend_from_slice(body.get(start..dot).unwrap_or_default());
        out.push(b'.');
        start = dot;
    }
    out.extend_from_slice(body.get(start..).unwrap_or_default());
    // RFC 5321 §4.1.1.4: the terminator is CRLF "." CRLF, so the body must end with a CRLF first.
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests;
