//! Micro-benchmarks of the per-command and per-byte hot paths (issue 5):
//! the command-line parser, the MAIL/RCPT path parser, and the DATA decoder
//! (bytes/s on 1 KB and 1 MB, with and without dot-stuffing).
//!
//! Run with `cargo bench --bench parsers`; each group takes a few seconds
//! (sample size 20, 2 s of measurement), so the whole file finishes in about a minute.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use indy_smtp::address::{parse_mail_from, parse_rcpt_to};
use indy_smtp::command::parse_command_line;
use indy_smtp::data::{dot_stuff, BareNewlinePolicy, DataDecoder};

/// Command lines as a typical client sends them (RFC 5321 §4.1.1).
const COMMANDS: [(&str, &[u8]); 6] = [
    ("ehlo", b"EHLO client.example.org"),
    (
        "mail",
        b"MAIL FROM:<sender@example.org> SIZE=1024 BODY=8BITMIME",
    ),
    ("rcpt", b"RCPT TO:<recipient@example.com>"),
    ("data", b"DATA"),
    ("noop", b"NOOP"),
    ("quit", b"QUIT"),
];

fn bench_commands(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_command_line");
    for (name, line) in COMMANDS {
        g.throughput(Throughput::Bytes(line.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), line, |b, line| {
            b.iter(|| parse_command_line(black_box(line)).is_ok())
        });
    }
    g.finish();
}

fn bench_paths(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_path");
    let mail = [
        ("mail_plain", "FROM:<sender@example.org>"),
        (
            "mail_params",
            "FROM:<sender@example.org> SIZE=1024 BODY=8BITMIME",
        ),
        ("mail_null", "FROM:<>"),
    ];
    for (name, args) in mail {
        g.bench_with_input(BenchmarkId::from_parameter(name), args, |b, args| {
            b.iter(|| parse_mail_from(black_box(args), false).is_ok())
        });
    }
    let rcpt = [
        ("rcpt_plain", "TO:<recipient@example.com>"),
        ("rcpt_quoted", "TO:<\"john smith\"@example.com>"),
        (
            "rcpt_dsn",
            "TO:<recipient@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;r@example.com",
        ),
    ];
    for (name, args) in rcpt {
        g.bench_with_input(BenchmarkId::from_parameter(name), args, |b, args| {
            b.iter(|| parse_rcpt_to(black_box(args), false).is_ok())
        });
    }
    g.finish();
}

/// A message body of about `size` bytes in 76-column lines; with `dots`, every fourth
/// line starts with "." so the wire form carries dot-stuffing (RFC 5321 §4.5.2).
fn body(size: usize, dots: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 80);
    let mut n = 0usize;
    while out.len() < size {
        if dots && n.is_multiple_of(4) {
            out.push(b'.');
        }
        let fill = 74 - usize::from(dots && n.is_multiple_of(4));
        out.extend((0..fill).map(|i| b'a' + ((i + n) % 26) as u8));
        out.extend_from_slice(b"\r\n");
        n += 1;
    }
    out
}

fn bench_data(c: &mut Criterion) {
    let mut g = c.benchmark_group("data_decoder");
    for (size_name, size) in [("1KB", 1024), ("1MB", 1024 * 1024)] {
        for dots in [false, true] {
            let wire = dot_stuff(&body(size, dots));
            let name = format!("{size_name}/{}", if dots { "dot-stuffed" } else { "plain" });
            g.throughput(Throughput::Bytes(wire.len() as u64));
            let mut out = Vec::with_capacity(wire.len());
            g.bench_with_input(BenchmarkId::from_parameter(name), &wire, |b, wire| {
                b.iter(|| {
                    // Fed in 64 KiB blocks, as the server reads them from the socket.
                    let mut dec = DataDecoder::new(BareNewlinePolicy::Normalize);
                    out.clear();
                    for block in wire.chunks(64 * 1024) {
                        dec.decode(black_box(block), &mut out);
                    }
                    assert!(dec.is_done());
                    out.len()
                })
            });
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_commands, bench_paths, bench_data
}
criterion_main!(benches);
