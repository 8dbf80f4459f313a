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

use memchr::{memchr, memchr2, memmem};

const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// How far [`crlf_run`] walks before it checks and hands back what it found. A bad byte costs
/// the fast path at most this much wasted work, which the per-line path then redoes.
const RUN_LIMIT: usize = 4096;

/// What to do with a bare CR or bare LF (one not part of CRLF) in message data.
///
/// RFC 5321 §2.3.8 forbids them, and RFC 5321 §4.1.1.4 makes only `CRLF.CRLF` the end of data, so no
/// policy lets them end the message; they differ in what reaches the stored message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
        if self.state == State::Done || input.is_empty() {
            return 0;
        }
        let out_start = out.len();
        // The output is at most the input plus one CR per bare LF; reserving the input's length
        // makes a single growth step the common case.
        out.reserve(input.len());
        let mut i = 0;
        // Where the fast path (`crlf_run`) may next be tried: past a stretch it has already
        // rejected, so no byte is walked by it twice and decoding stays linear.
        let mut fast_from = 0;
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
                        out.extend_from_slice(b"\r\n");
                        self.end_line(self.line_len.saturating_add(2));
                        self.state = State::LineStart { after_crlf: true };
                    } else {
                        self.bare_cr(out);
                    }
                }
                State::Text => i = self.text(input, i, out, &mut fast_from),
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
    /// Plain CRLF lines are skipped a stretch at a time by [`crlf_run`]; anything else (and any
    /// stretch it rejects) goes through the per-line path below, one CR or LF at a time.
    fn text(
        &mut self,
        input: &[u8],
        start: usize,
        out: &mut Vec<u8>,
        fast_from: &mut usize,
    ) -> usize {
        let mut i = start;
        let stop = loop {
            if i >= *fast_from {
                match crlf_run(input, i, self.line_len) {
                    Ok(run) => {
                        self.end_line(run.longest);
                        i = run.end;
                        // As after any CRLF: a "." (or not knowing the next byte yet) is for the
                        // state machine.
                        match input.get(i) {
                            Some(&b'.') | None => {
                                self.state = State::LineStart { after_crlf: true };
                                break i;
                            }
                            Some(_) => continue,
                        }
                    }
                    Err(resume) => *fast_from = resume,
                }
            }
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
                    self.end_line(seg.saturating_add(2));
                    i = at + 2;
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
                    out.extend_from_slice(input.get(start..at).unwrap_or_default());
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
                        out.extend_from_slice(input.get(start..at).unwrap_or_default());
                        out.extend_from_slice(b"\r\n");
                        self.end_line(seg.saturating_add(2));
                        self.state = State::LineStart { after_crlf: false };
                        return at + 1;
                    }
                    self.line_len = seg.saturating_add(1);
                    i = at + 1;
                }
            }
        };
        out.extend_from_slice(input.get(start..stop).unwrap_or_default());
        stop
    }

    /// Emits a pending CR that turned out not to be followed by LF, and goes on reading text.
    fn bare_cr(&mut self, out: &mut Vec<u8>) {
        self.saw_bare = true;
        out.push(CR);
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

/// A stretch of input that decodes to itself: see [`crlf_run`].
#[derive(Debug)]
struct CrlfRun {
    /// Just past the stretch's last LF.
    end: usize,
    /// Its longest line, the first one counted with the octets carried in from earlier input.
    longest: usize,
}

/// Finds a stretch `input[start..end]` of whole lines that the per-line rules would copy
/// unchanged in every policy: each line ends in CRLF, no line after the first begins with ".",
/// and there is no other CR or LF (so nothing bare). `start` is inside a line (the `Text` state)
/// that already holds `carried` decoded octets.
///
/// Typical mail (76-column base64 or quoted-printable, few dots) is almost all such lines, and
/// this walks them with one byte comparison per line where it can, instead of a `memchr2` call
/// per line; one vectorizable count over the stretch then proves there is no CR or LF it skipped.
///
/// On failure it returns where the per-line path should take over until: past the stretch (or
/// past the first line end) it looked at.
fn crlf_run(input: &[u8], start: usize, carried: usize) -> Result<CrlfRun, usize> {
    let rest = input.get(start..).unwrap_or_default();
    let Some(p) = memchr(LF, rest) else {
        return Err(input.len());
    };
    let first = start + p;
    if !ends_crlf_line(input, start, first) {
        return Err(first + 1);
    }
    let mut longest = carried.saturating_add(p + 1);
    let mut lf = first;
    // Lines of one length usually follow each other, so the next LF is first looked for
    // where the last line's length puts it.
    let mut gap = p + 1;
    let mut lines = 1;
    loop {
        let line_start = lf + 1;
        // A line that begins with "." (unstuffing, maybe the end of data) or whose first byte
        // has not arrived is left to the state machine.
        if line_start - start >= RUN_LIMIT {
            break;
        }
        match input.get(line_start) {
            Some(&b'.') | None => break,
            Some(_) => {}
        }
        let guess = lf + gap;
        let next = if input.get(guess) == Some(&LF) {
            guess
        } else {
            match memchr(LF, input.get(line_start..).unwrap_or_default()) {
                Some(p) => line_start + p,
                None => break,
            }
        };
        if !ends_crlf_line(input, line_start, next) {
            break;
        }
        gap = next - lf;
        longest = longest.max(gap);
        lf = next;
        lines += 1;
    }
    let end = lf + 1;
    // The walk found `lines` CRLF pairs, 2 * `lines` distinct bytes in 0x0A..=0x0D. Any more
    // such bytes is an LF a guess jumped over, or a bare CR inside a line: not a plain stretch.
    if count_line_end_bytes(input.get(start..end).unwrap_or_default()) == 2 * lines {
        Ok(CrlfRun { end, longest })
    } else {
        Err(end)
    }
}

/// The LF at `lf` ends a line begun at `line_start` with CRLF (RFC 5321 §2.3.8), the CR being
/// part of that line.
fn ends_crlf_line(input: &[u8], line_start: usize, lf: usize) -> bool {
    lf > line_start && input.get(lf - 1) == Some(&CR) && input.get(lf) == Some(&LF)
}

/// How many bytes of `s` are LF, VT, FF or CR (0x0A..=0x0D). Taking the range rather than CR and
/// LF alone is one comparison less per byte; a VT or FF only sends its stretch the slow way.
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
