//! Parked sessions (`park_idle_sessions`, on by default): an idle client holds no thread,
//! and nothing one client does — a handler that blocks, a message sent slowly, replies it
//! does not read — holds up the other sessions. Every check here would hang (and fail on
//! the client's 10 s read timeout) if one session could stall the poller.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::{start, threads_of_this_process, Client};
use crossbeam_channel::{bounded, Receiver};
use indy_smtp::{CommandHandlers, Reply};
use parking_lot::Mutex;

/// The thread-count test must not see the threads of the other tests of this binary.
static SERIAL: Mutex<()> = Mutex::new(());

/// Opens `n` sessions, each greeted and past EHLO, and returns them with the number of
/// threads the process gained.
fn hold_sessions(addr: std::net::SocketAddr, n: usize) -> (Vec<Client>, usize) {
    let before = threads_of_this_process();
    let mut clients = Vec::new();
    for _ in 0..n {
        let mut c = Client::connect(addr);
        c.expect("EHLO idle.example", 250);
        clients.push(c);
    }
    std::thread::sleep(Duration::from_millis(200));
    let gained = threads_of_this_process().saturating_sub(before);
    (clients, gained)
}

#[test]
fn idle_sessions_hold_no_thread_unless_parking_is_off() {
    let _serial = SERIAL.lock();
    const SESSIONS: usize = 150;
    let parked = start(|_| {});
    let (mut clients, gained) = hold_sessions(parked.addr, SESSIONS);
    // At most the pool's parked threads plus the poller: far fewer than one per session.
    assert!(gained < 64, "{gained} threads for {SESSIONS} idle sessions");
    for c in &mut clients {
        c.expect("NOOP", 250);
    }
    drop(clients);
    parked.handle.stop();

    let threaded = start(|s| s.park_idle_sessions = false);
    let (mut clients, gained) = hold_sessions(threaded.addr, SESSIONS);
    assert!(gained >= SESSIONS, "only {gained} threads without parking");
    for c in &mut clients {
        c.expect("NOOP", 250);
    }
    let (code, _) = clients[0].send_mail("a@example.org", &["b@example.org"], b"Hi\r\n");
    assert_eq!(code, 250);
    assert_eq!(threaded.messages().len(), 1);
}

/// A client halfway through a command line waits parked too (a slowloris client sends its
/// lines a few bytes at a time): the line's beginning stays with the session. So does the
/// rest of an over-long line being skipped after its `500 5.5.6` (RFC 5321 §4.5.3.1.4).
#[test]
fn sessions_halfway_through_a_command_line_hold_no_thread() {
    let _serial = SERIAL.lock();
    const SESSIONS: usize = 150;
    let server = start(|s| s.limits.max_line_length = 600);
    let before = threads_of_this_process();
    let mut clients = Vec::new();
    for i in 0..SESSIONS {
        let mut c = Client::connect(server.addr);
        c.expect("EHLO pieces.example", 250);
        match i % 3 {
            0 => c.send(b"NOO"),
            1 => {
                c.expect("MAIL FROM:<a@example.org>", 250);
                c.send(b"RCPT TO:<b@exa");
            }
            _ => {
                c.send(&[b'X'; 700]);
                assert_eq!(c.read_reply().0, 500);
                c.send(b"XXX");
            }
        }
        clients.push(c);
    }
    std::thread::sleep(Duration::from_millis(200));
    let gained = threads_of_this_process().saturating_sub(before);
    assert!(
        gained < 64,
        "{gained} threads for {SESSIONS} half-sent lines"
    );
    for (i, c) in clients.iter_mut().enumerate() {
        match i % 3 {
            0 => c.expect("P", 250),
            1 => c.expect("mple.org>", 250),
            _ => {
                c.send(b"XXX\r\n");
                c.expect("NOOP", 250)
            }
        };
    }
}

/// A NOOP handler that blocks the session which said `EHLO slow` until `release` fires.
fn blocking_noop(
    release: Receiver<()>,
) -> impl Fn(&mut indy_smtp::Context<'_>, &indy_smtp::Command) -> indy_smtp::Result<()> {
    let release = Arc::new(Mutex::new(release));
    move |ctx, _| {
        if ctx.thread.helo_name == "slow" {
            let _ = release.lock().recv_timeout(Duration::from_secs(20));
        }
        ctx.reply(Reply::new(250, "Ok"))
    }
}

#[test]
fn a_blocking_handler_does_not_stall_the_other_sessions() {
    let _serial = SERIAL.lock();
    let (release, released) = bounded(1);
    let server = start(|s| {
        let mut handlers = CommandHandlers::smtp();
        handlers.add("NOOP", blocking_noop(released));
        s.command_handlers = handlers;
    });
    let mut slow = server.client();
    slow.expect("EHLO slow", 250);
    // Idle long enough for the watchdog to go to sleep: the blocking step must wake it.
    std::thread::sleep(Duration::from_millis(1500));
    slow.send(b"NOOP\r\n");
    std::thread::sleep(Duration::from_millis(100));
    // The slow handler is still blocked: this session must be served meanwhile.
    let mut fast = server.client();
    fast.expect("EHLO fast", 250);
    fast.expect("NOOP", 250);
    let (code, _) = fast.send_mail("a@example.org", &["b@example.org"], b"Hello\r\n");
    assert_eq!(code, 250);
    release.send(()).unwrap();
    assert_eq!(slow.read_reply().0, 250);
    slow.expect("RSET", 250);
}

#[test]
fn a_message_sent_slowly_does_not_stall_the_other_sessions() {
    let _serial = SERIAL.lock();
    let server = start(|_| {});
    let mut slow = server.client();
    slow.expect("EHLO slow.example", 250);
    slow.expect("MAIL FROM:<slow@example.org>", 250);
    slow.expect("RCPT TO:<b@example.org>", 250);
    slow.expect("DATA", 354);
    slow.send(b"Subject: first half\r\n\r\nstill ");
    std::thread::sleep(Duration::from_millis(100));
    let mut fast = server.client();
    let (code, _) = fast.send_mail("fast@example.org", &["b@example.org"], b"Quick\r\n");
    assert_eq!(code, 250);
    slow.send(b"coming\r\n.\r\n");
    assert_eq!(slow.read_reply().0, 250);
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].from, "fast@example.org");
    assert_eq!(
        messages[1].data,
        b"Subject: first half\r\n\r\nstill coming\r\n"
    );
}

#[test]
fn a_client_that_reads_no_replies_does_not_stall_the_other_sessions() {
    let _serial = SERIAL.lock();
    let server = start(|_| {});
    let mut flooder = TcpStream::connect(server.addr).unwrap();
    flooder
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // 12 MB of NOOPs and never a read: the replies (about 28 MB) overflow both socket
    // buffers, so the server's writes to this client block.
    let writer = std::thread::spawn(move || {
        let batch = b"NOOP\r\n".repeat(100_000);
        for _ in 0..20 {
            if flooder.write_all(&batch).is_err() {
                break;
            }
        }
        flooder
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut other = server.client();
    let (code, _) = other.send_mail("a@example.org", &["b@example.org"], b"Through\r\n");
    assert_eq!(code, 250);
    assert_eq!(server.messages().len(), 1);
    drop(writer.join().unwrap());
}

#[test]
fn a_handler_wrapping_the_builtin_data_sees_the_message_stored() {
    let _serial = SERIAL.lock();
    let seen = Arc::new(Mutex::new(None));
    let server = start(|s| {
        let mut handlers = CommandHandlers::smtp();
        let builtin = CommandHandlers::builtin("DATA").unwrap();
        let seen = Arc::clone(&seen);
        // Reads the inbox through the server's own receive event: a deferred DATA would
        // leave it empty when the wrapper goes on.
        let inbox_len = Arc::new(Mutex::new(0usize));
        let counter = Arc::clone(&inbox_len);
        let receive = s.on_receive_raw.take().unwrap();
        s.on_receive_raw = Some(Box::new(move |thread, stream| {
            let verdict = receive(thread, stream);
            *counter.lock() += 1;
            verdict
        }));
        handlers.add("DATA", move |ctx, cmd| {
            builtin(ctx, cmd)?;
            *seen.lock() = Some(*inbox_len.lock());
            Ok(())
        });
        s.command_handlers = handlers;
    });
    let mut c = server.client();
    let (code, _) = c.send_mail("a@example.org", &["b@example.org"], b"Wrapped\r\n");
    assert_eq!(code, 250);
    assert_eq!(*seen.lock(), Some(1));
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn a_parked_session_wakes_for_a_client_that_hangs_up() {
    let _serial = SERIAL.lock();
    let disconnected = Arc::new(Mutex::new(0usize));
    let seen = Arc::clone(&disconnected);
    let server = start(move |s| {
        s.on_disconnect = Some(Box::new(move |_| *seen.lock() += 1));
    });
    let mut c = server.client();
    c.expect("EHLO gone.example", 250);
    drop(c);
    assert!(common::wait_until(|| *disconnected.lock() == 1));
    assert!(common::wait_until(|| server.handle.active_sessions() == 0));
}

/// `printf 'NOOP\r\n' | nc`: the last command and the client's FIN arrive together, in one
/// edge-triggered wake-up. The session must answer the command and then meet the end of
/// input, not park until its command timeout (60 s here: a hang fails on the 10 s waits).
#[test]
fn a_command_and_the_hang_up_in_one_packet_end_the_session() {
    use std::io::Read;
    use std::net::Shutdown;
    let _serial = SERIAL.lock();
    let server = start(|s| s.limits.command_timeout = Duration::from_secs(60));
    for input in [
        &b"NOOP\r\n"[..],
        b"EHLO x\r\nNOOP\r\n",
        b"EHLO x\r\nMAIL FROM:<a@b>\r\n",
    ] {
        for _ in 0..10 {
            let mut c = server.client();
            c.writer.write_all(input).unwrap();
            c.writer.shutdown(Shutdown::Write).unwrap();
            let mut rest = String::new();
            c.reader
                .read_to_string(&mut rest)
                .expect("the server closes within 10 s");
            // One final reply line per command, each a 250, and nothing else (no 421).
            let finals: Vec<&str> = rest.lines().filter(|l| l.get(3..4) == Some(" ")).collect();
            let commands = input.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(finals.len(), commands, "{rest:?}");
            assert!(finals.iter().all(|l| l.starts_with("250 ")), "{rest:?}");
        }
    }
    assert!(common::wait_until(|| server.handle.active_sessions() == 0));
}

#[test]
fn pipelined_input_larger_than_the_read_buffer_is_all_answered() {
    let _serial = SERIAL.lock();
    let server = start(|_| {});
    let mut c = server.client();
    c.expect("EHLO pipe.example", 250);
    // 1000 NOOPs in one write: many reads' worth. Epoll reports only newly arrived data, so a
    // session that parked with input left on the socket would never answer the rest.
    const N: usize = 1000;
    c.send(&b"NOOP\r\n".repeat(N));
    for i in 0..N {
        assert_eq!(c.read_reply().0, 250, "NOOP {i}");
    }
    for round in 0..3 {
        // Again after the session parked: a batch arriving at once, then one at a time.
        c.send(&b"NOOP\r\n".repeat(N));
        for _ in 0..N {
            assert_eq!(c.read_reply().0, 250, "round {round}");
        }
        c.expect("NOOP", 250);
    }
}

/// Handlers that keep a CPU busy (a few milliseconds a step, like a content filter) are not
/// all run by the one poller thread: once it is saturated with heavy steps, helper threads
/// run ready sessions beside it, one per further CPU.
#[test]
fn heavy_handlers_of_several_sessions_run_in_parallel() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;
    let _serial = SERIAL.lock();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now_running, seen_most) = (Arc::clone(&running), Arc::clone(&most));
    let server = start(move |s| {
        let mut handlers = CommandHandlers::smtp();
        handlers.add("NOOP", move |ctx, _| {
            let n = now_running.fetch_add(1, Ordering::SeqCst) + 1;
            seen_most.fetch_max(n, Ordering::SeqCst);
            let started = Instant::now();
            while started.elapsed() < Duration::from_millis(3) {
                std::hint::spin_loop();
            }
            now_running.fetch_sub(1, Ordering::SeqCst);
            ctx.reply(Reply::new(250, "Ok"))
        });
        s.command_handlers = handlers;
    });
    std::thread::scope(|scope| {
        for i in 0..4 {
            let mut c = server.client();
            scope.spawn(move || {
                c.expect(&format!("EHLO busy{i}.example"), 250);
                for _ in 0..40 {
                    c.expect("NOOP", 250);
                }
            });
        }
    });
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = most.load(Ordering::SeqCst);
    if cpus >= 2 {
        assert!(most >= 2, "heavy steps ran one at a time on {cpus} CPUs");
    }
}
