//! The session loop: read a line, dispatch it to its handler, repeat. Everything protocol
//! specific lives in the verbs; this file only moves lines and handles the ways a session ends
//! (one line's dispatch is in `session/dispatch.rs`).

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::deadline;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::proxy::{ProxyError, ProxyHeader};
use crate::reply::Reply;
use crate::server::{Shared, SmtpServer};
use crate::thread::{Pending, SmtpServerThread};

mod dispatch;
use dispatch::{handle_line, is_error_reply, panic_text, report_failure, run_handler};

/// How the loop goes on after a line.
enum Flow {
    Continue,
    Close,
}

/// Why `serve` returned.
enum Next {
    /// Waiting for input with nothing buffered: park the session.
    Park,
    /// The session is over.
    Close,
}

/// A client session between its connect and its disconnect: what a parked session keeps.
pub(crate) struct Session {
    conn: Connection,
    thread: SmtpServerThread,
    line: Vec<u8>,
    /// Between transactions (the registry's view, for a graceful stop).
    idle: Arc<AtomicBool>,
    pending: Option<Pending>,
    /// When the session began waiting parked: the wait counts against its timeout.
    parked_at: Option<Instant>,
    /// May be parked (not after a failed attempt: it then keeps its thread).
    may_park: bool,
    /// Its socket is in the epoll set.
    pub(crate) registered: bool,
    /// The client's end of input was reported: read until it is met, never park.
    pub(crate) hung_up: bool,
    /// The address the session counts under in `limits.max_connections_per_ip`: the peer's,
    /// or behind a proxy the client's once its header is read (none before, nor for a
    /// proxy's own LOCAL connection).
    counted: Option<IpAddr>,
}

/// The address a new connection from `peer` is counted under at once: none behind a proxy,
/// whose client is known only from its header.
pub(crate) fn counted_address(config: &SmtpServer, peer: SocketAddr) -> Option<IpAddr> {
    config.proxy_protocol.is_none().then(|| peer.ip())
}

impl Session {
    pub(crate) fn id(&self) -> u64 {
        self.thread.session_id
    }

    pub(crate) fn socket(&self) -> Option<Arc<TcpStream>> {
        self.conn.socket().cloned()
    }
}

/// Serves a new connection: greeting first, then commands, parked whenever it is idle.
pub(crate) fn run(
    shared: &Arc<Shared>,
    tcp: Arc<TcpStream>,
    peer: SocketAddr,
    id: u64,
    implicit_tls: bool,
    idle: Arc<AtomicBool>,
) {
    let mut session = new_session(shared, tcp, peer, id, idle);
    match open(shared, &mut session, implicit_tls) {
        Ok(Flow::Continue) => resume(shared, session),
        Ok(Flow::Close) => finish(shared, session, Ok(())),
        Err(e) => finish(shared, session, Err(e)),
    }
}

/// Whether the accepting thread may greet a new connection itself: nothing before the 220
/// can block (no PROXY header, no `on_connect`, no greeting delay, no TLS handshake) and the
/// session can then be parked, so a connection costs no hand-over to a pool thread.
pub(crate) fn greets_inline(shared: &Shared, implicit_tls: bool) -> bool {
    let config = &shared.config;
    shared.runtime.parking.is_some()
        && !implicit_tls
        && config.proxy_protocol.is_none()
        && config.on_connect.is_none()
        && config.limits.greeting_delay.is_none()
}

/// Greets and parks a new connection without ever waiting for the client (see
/// [`greets_inline`]). Gives the session back when it could not be parked: it then needs a
/// thread of its own.
pub(crate) fn greet(
    shared: &Arc<Shared>,
    tcp: Arc<TcpStream>,
    peer: SocketAddr,
    id: u64,
    idle: Arc<AtomicBool>,
) -> Option<Box<Session>> {
    let mut session = new_session(shared, tcp, peer, id, idle);
    let greeted = open(shared, &mut session, false).and_then(|flow| {
        session.conn.flush()?;
        Ok(flow)
    });
    let result = match greeted {
        Ok(Flow::Continue) => None,
        Ok(Flow::Close) => Some(Ok(())),
        Err(e) => Some(Err(e)),
    };
    if let Some(result) = result {
        finish(shared, session, result);
        return None;
    }
    let Some(parking) = &shared.runtime.parking else {
        return Some(session);
    };
    let now = Instant::now();
    session.parked_at = Some(now);
    match parking.park(session, deadline(now, shared.config.limits.command_timeout)) {
        Ok(()) => None,
        Err(declined) => Some(declined.session),
    }
}

fn new_session(
    shared: &Shared,
    tcp: Arc<TcpStream>,
    peer: SocketAddr,
    id: u64,
    idle: Arc<AtomicBool>,
) -> Box<Session> {
    let local = tcp.local_addr().unwrap_or(peer);
    log::info!("session {id}: connect from {peer}");
    Box::new(Session {
        conn: Connection::new(tcp),
        thread: SmtpServerThread::new(peer, local, id),
        line: Vec::new(),
        idle,
        pending: None,
        parked_at: None,
        may_park: shared.runtime.parking.is_some(),
        registered: false,
        hung_up: false,
        counted: counted_address(&shared.config, peer),
    })
}

/// Serves a session until it parks or ends (called again for a parked session that woke).
pub(crate) fn resume(shared: &Arc<Shared>, mut session: Box<Session>) {
    loop {
        match serve(shared, &mut session) {
            Ok(Next::Park) => {
                let timeout = match session.pending {
                    Some(Pending::DataBody) => shared.config.limits.data_timeout,
                    None => shared.config.limits.command_timeout,
                };
                let since = session.parked_at.unwrap_or_else(Instant::now);
                let Some(parking) = &shared.runtime.parking else {
                    session.may_park = false;
                    continue;
                };
                match parking.park(session, deadline(since, timeout)) {
                    Ok(()) => return,
                    Err(declined) => {
                        session = declined.session;
                        session.may_park = declined.woken;
                    }
                }
            }
            Ok(Next::Close) => return finish(shared, session, Ok(())),
            Err(e) => return finish(shared, session, Err(e)),
        }
    }
}

/// Ends a parked session whose wait timed out (RFC 5321 §4.5.3.2: 421 4.4.2).
pub(crate) fn expire(shared: &Arc<Shared>, session: Box<Session>) {
    finish(shared, session, Err(Error::Timeout));
}

/// Ends a session the server is dropping on stop.
pub(crate) fn abandon(shared: &Arc<Shared>, session: Box<Session>) {
    finish(shared, session, Err(Error::ConnectionClosed));
}

/// The end of every session: the closing reply its end calls for, the close, the event.
fn finish(shared: &Arc<Shared>, mut session: Box<Session>, result: Result<()>) {
    let id = session.id();
    if let (true, Some(parking)) = (session.registered, &shared.runtime.parking) {
        parking.forget(id);
    }
    let conn = &mut session.conn;
    match &result {
        Ok(()) | Err(Error::ConnectionClosed) => {}
        Err(Error::Timeout) => {
            // A client that stopped reading (the timeout was a write's) would hold the
            // thread a second full timeout for this reply: it gets one second.
            conn.limit_write_wait(Duration::from_secs(1));
            let _ = send_closing(shared, conn, 421, "4.4.2", &shared.config.messages.timeout);
        }
        // A failed handshake is the client's doing (it closed, reset, or sent no TLS), as is
        // an end the server's own stop caused: info, like a client closing in plain text.
        Err(e @ Error::Tls(_)) => log::info!("session {id}: {e}"),
        Err(e) if shared.runtime.stopping() => log::info!("session {id}: {e}"),
        Err(e) => log::warn!("session {id}: {e}"),
    }
    if shared.runtime.stopping() && !matches!(result, Ok(()) | Err(Error::Timeout)) {
        let m = &shared.config.messages.shutting_down;
        let _ = send_closing(shared, conn, 421, "4.3.2", m);
    }
    conn.close();
    let thread = &session.thread;
    if let Some(on_disconnect) = &shared.config.on_disconnect {
        guarded(thread, "on_disconnect", || on_disconnect(thread));
    }
    log::info!("session {id}: disconnect from {}", thread.peer_addr);
    crate::listener::leave(shared, id, session.counted);
}

fn send_closing(
    shared: &Shared,
    conn: &mut Connection,
    code: u16,
    enhanced: &str,
    text: &str,
) -> Result<()> {
    let text = shared.config.text(text);
    conn.reply(&Reply::new(code, text).with_enhanced(enhanced))?;
    conn.flush()
}

/// The start of a session: the PROXY header, implicit TLS, `on_connect`, the early-talker
/// check, the 220.
fn open(shared: &Shared, session: &mut Session, implicit_tls: bool) -> Result<Flow> {
    let config = &shared.config;
    if let Some(proxy) = &config.proxy_protocol {
        if let Flow::Close = take_proxy_header(shared, session, proxy.timeout)? {
            return Ok(Flow::Close);
        }
    }
    let (conn, thread) = (&mut session.conn, &mut session.thread);
    if implicit_tls {
        crate::verbs::session::start_tls_now(shared, conn, thread)?;
    }
    if let Some(on_connect) = &config.on_connect {
        let verdict = catch_unwind(AssertUnwindSafe(|| on_connect(thread)));
        match verdict {
            Ok(Ok(())) => {}
            Ok(Err(reply)) => {
                let reply = reply.into_refusal();
                conn.reply(&reply)?;
                conn.flush()?;
                // RFC 5321 §3.1: after a 554 in place of the 220 the server waits for QUIT
                // and answers other commands 503; a 421 (§3.8) or RFC 7504's 521 closes now.
                if waits_for_quit(reply.code()) {
                    thread.refused = true;
                    return Ok(Flow::Continue);
                }
                return Ok(Flow::Close);
            }
            Err(panic) => {
                report_failure(shared, thread, &panic_text(&panic));
                send_closing(shared, conn, 421, "4.3.0", &config.messages.local_error)?;
                return Ok(Flow::Close);
            }
        }
    }
    if let Some(delay) = config.limits.greeting_delay {
        if conn.input_pending(delay)? {
            log::warn!(
                "session {}: client talked before the greeting",
                thread.session_id
            );
            // No enhanced code: there has been no EHLO (RFC 2034 §3).
            let reply = Reply::new(554, "Protocol error: client talked before the greeting");
            conn.reply(&reply)?;
            conn.flush()?;
            return Ok(Flow::Close);
        }
    }
    let welcome = config.text(&config.messages.greeting.welcome);
    conn.reply(&Reply::new(220, welcome))?;
    Ok(Flow::Continue)
}

/// A connection refused with this code stays open until the client's QUIT: 5xx but 521.
fn waits_for_quit(code: u16) -> bool {
    (500..600).contains(&code) && code != 521
}

/// An IPv4 client a proxy reports in IPv6 form (`::ffff:192.0.2.1`, a dual-stack proxy's
/// habit) as the IPv4 address it is, so that it is one client for `max_connections_per_ip`,
/// `on_connect` and the logs whichever form the proxy wrote.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Reads the PROXY header and takes the client's addresses from it. A connection without a
/// valid header is closed with no reply: what it sent came from the proxy, not from an
/// SMTP client (the PROXY protocol specification, §2).
fn take_proxy_header(shared: &Shared, session: &mut Session, timeout: Duration) -> Result<Flow> {
    let (conn, thread) = (&mut session.conn, &mut session.thread);
    let id = thread.session_id;
    let (source, destination) = match conn.read_proxy_header(timeout) {
        Ok(ProxyHeader::Proxied {
            source,
            destination,
        }) => (canonical(source), canonical(destination)),
        Ok(ProxyHeader::Local) => return Ok(Flow::Continue),
        // A load balancer's health check: connect, then close.
        Err(ProxyError::Closed) => {
            log::info!("session {id}: closed before its PROXY header");
            return Ok(Flow::Close);
        }
        Err(e) => {
            log::warn!("session {id}: {e}; closed");
            return Ok(Flow::Close);
        }
    };
    if !crate::listener::count_client(shared, source.ip()) {
        log::warn!("session {id}: refusing {source}: max_connections_per_ip reached");
        let text = &shared.config.messages.max_connection_reply;
        send_closing(shared, conn, 421, "4.7.0", text)?;
        return Ok(Flow::Close);
    }
    log::info!("session {id}: proxied for {source} to {destination}");
    session.counted = Some(source.ip());
    thread.peer_addr = source;
    thread.local_addr = destination;
    Ok(Flow::Continue)
}

/// The command loop: runs until the session must wait with nothing buffered (`Park`, when
/// parking is possible) or ends.
fn serve(shared: &Shared, session: &mut Session) -> Result<Next> {
    let config = &shared.config;
    let may_park = session.may_park;
    let Session {
        conn,
        thread,
        line,
        idle,
        pending,
        parked_at,
        hung_up,
        ..
    } = session;
    loop {
        let between_transactions =
            thread.from.is_none() && thread.bdat.is_none() && pending.is_none();
        idle.store(between_transactions, Ordering::SeqCst);
        if between_transactions && shared.runtime.stopping() {
            send_closing(shared, conn, 421, "4.3.2", &config.messages.shutting_down)?;
            return Ok(Next::Close);
        }
        if may_park && conn.can_park() {
            // Just woken (`parked_at` set), the last read filled the buffer, or the client
            // has hung up (its end of input is next): look without waiting. A wake-up can be
            // stale, and edge-triggered epoll would not report data that is already there.
            let look = parked_at.is_some() || conn.maybe_more() || *hung_up;
            if !look || !conn.fill_now()? {
                // RFC 2920 §3.1: every reply is out before the server waits.
                conn.flush()?;
                conn.release_bulk_buffer();
                parked_at.get_or_insert_with(Instant::now);
                return Ok(Next::Park);
            }
        }
        let waited_since = parked_at.take().unwrap_or_else(Instant::now);
        let replies_before = conn.replies;
        let flow = if let Some(Pending::DataBody) = pending.take() {
            idle.store(false, Ordering::SeqCst);
            let (flow, _) = run_handler(shared, conn, thread, "DATA", false, |ctx| {
                crate::verbs::data::data_body(ctx)
            })?;
            flow
        } else {
            if conn.buffered().is_empty() {
                // This thread waits for this one client (a parked session gets here only with
                // input buffered): it keeps no DATA buffers meanwhile.
                crate::buffers::release();
            }
            conn.set_read_timeout(config.limits.command_timeout)?;
            let max = config.limits.max_line_length;
            let status = if may_park {
                let Some(status) = conn.take_line(max, line) else {
                    // Part of a line: the session waits for the rest parked, and the line's
                    // timeout still counts from when its wait began.
                    *parked_at = Some(waited_since);
                    continue;
                };
                status
            } else {
                conn.finish_line(max, line, waited_since)?
            };
            // `idle` stays as it was: a command between transactions (an AUTH exchange
            // waiting for its client, a slow EHLO handler) holds nothing a stop must wait for.
            let handled = handle_line(shared, conn, thread, status, line);
            line.clear();
            let (flow, next) = handled?;
            *pending = next;
            flow
        };
        if conn.replies > replies_before
            && is_error_reply(conn.last_code)
            && counted_bad_command_ends(shared, conn, thread)?
        {
            return Ok(Next::Close);
        }
        if let Flow::Close = flow {
            conn.flush()?;
            return Ok(Next::Close);
        }
    }
}

/// Counts a bad command; at `limits.max_bad_commands` the client is told `421 4.7.0` and the
/// session is to end (true).
fn counted_bad_command_ends(
    shared: &Shared,
    conn: &mut Connection,
    thread: &mut SmtpServerThread,
) -> Result<bool> {
    thread.bad_commands += 1;
    let config = &shared.config;
    let max = config.limits.max_bad_commands;
    if max == 0 || thread.bad_commands < max {
        return Ok(false);
    }
    log::warn!("session {}: too many bad commands", thread.session_id);
    send_closing(shared, conn, 421, "4.7.0", &config.messages.too_many_errors)?;
    Ok(true)
}

/// Runs an event whose panic must not take the session thread down with it.
fn guarded(thread: &SmtpServerThread, what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        log::error!("session {}: {what} panicked", thread.session_id);
    }
}
