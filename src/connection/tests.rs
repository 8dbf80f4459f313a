//! Unit tests of the connection's line reading and reply buffer, over a socket pair.

use super::*;
use std::io::Write;
use std::net::TcpListener;

fn pair(input: &[u8]) -> Connection {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.write_all(input).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    std::mem::forget(client);
    let mut c = Connection::new(Arc::new(server));
    c.set_read_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn lines(conn: &mut Connection, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut got = Vec::new();
    loop {
        match conn.read_line(max, &mut out) {
            Ok(LineStatus::Line { bare_lf }) => got.push(format!(
                "{}{}",
                String::from_utf8_lossy(&out),
                if bare_lf { "<LF>" } else { "" }
            )),
            Ok(LineStatus::TooLong) => got.push("<TOO LONG>".into()),
            Err(_) => return got,
        }
    }
}

#[test]
fn splits_lines_and_flags_bare_lf() {
    let mut c = pair(b"NOOP\r\nQUIT\nA\rB\r\n\r\n");
    assert_eq!(lines(&mut c, 100), ["NOOP", "QUIT<LF>", "A\rB", ""]);
}

#[test]
fn limit_counts_the_crlf() {
    // max 8: six octets of text plus CRLF fit, seven do not.
    let mut c = pair(b"ABCDEF\r\nABCDEFG\r\nOK\r\n");
    assert_eq!(lines(&mut c, 8), ["ABCDEF", "<TOO LONG>", "OK"]);
}

#[test]
fn long_line_reported_before_its_end_and_skipped() {
    let mut input = vec![b'X'; 100_000];
    input.extend_from_slice(b"\r\nNOOP\r\n");
    let mut c = pair(&input);
    assert_eq!(lines(&mut c, 512), ["<TOO LONG>", "NOOP"]);
}

/// The line cutter itself is tested on bytes in `line.rs`; this checks that a parked
/// session's `take_line` resumes a line across reads into the buffer.
#[test]
fn take_line_resumes_a_line_across_buffer_refills() {
    let mut c = pair(b"");
    let mut out = Vec::new();
    let mut got = Vec::new();
    for piece in [&b"NO"[..], b"OP\r", b"\nQUIT\r\n"] {
        c.rbuf = piece.to_vec();
        c.rpos = 0;
        c.rlen = piece.len();
        while let Some(status) = c.take_line(100, &mut out) {
            assert_eq!(status, LineStatus::Line { bare_lf: false });
            got.push(String::from_utf8_lossy(&out).into_owned());
            out.clear();
        }
        assert_eq!(c.rpos, c.rlen, "every piece is used up");
    }
    assert_eq!(got, ["NOOP", "QUIT"]);
}

/// Reads and drops `len` bytes of message data, as the DATA reader does.
fn consume_data(c: &mut Connection, len: usize) {
    let mut left = len;
    while left > 0 {
        c.fill().unwrap();
        let n = c.buffered().len().min(left);
        c.consume(n);
        left -= n;
    }
}

/// More commands after the data than a command buffer holds: they are read from the data
/// buffer, which is given back once they are (before the session parks).
#[test]
fn many_commands_after_bulk_data_release_the_data_buffer_once_read() {
    let mut input = vec![b'x'; 100_000];
    let commands = "NOOP\r\n".repeat(1500);
    input.extend_from_slice(commands.as_bytes());
    let mut c = pair(&input);
    c.use_data_buffer();
    consume_data(&mut c, 100_000);
    c.use_command_buffer();
    let unread = c.buffered().len();
    assert!(
        unread > COMMAND_BUF,
        "{unread} bytes of commands wait in the data buffer"
    );
    c.consume(unread);
    c.release_bulk_buffer();
    assert!(c.rbuf.len() <= COMMAND_BUF, "{} bytes kept", c.rbuf.len());
}

/// Commands pipelined after a large message's data (RFC 2920 §3.1) do not keep the 64 KiB
/// data buffer: they move to a small one, and are read from there.
#[test]
fn commands_after_bulk_data_leave_the_data_buffer() {
    let mut input = vec![b'x'; 100_000];
    input.extend_from_slice(b"NOOP\r\nQUIT\r\n");
    let mut c = pair(&input);
    c.use_data_buffer();
    consume_data(&mut c, 100_000);
    assert_eq!(c.rbuf.len(), DATA_BUF, "the data was read in bulk");
    c.use_command_buffer();
    assert!(c.rbuf.len() <= COMMAND_BUF, "{} bytes kept", c.rbuf.len());
    assert_eq!(lines(&mut c, 512), ["NOOP", "QUIT"]);
}
