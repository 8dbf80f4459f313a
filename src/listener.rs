//! The listener threads, the session registry, and the handle that stops the server.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{Error, Result};
use crate::parking::{self, Parking};
use crate::reply::Reply;
use crate::server::{Shared, SmtpServer};
use crate::session;

/// A live session as the registry sees it: a handle on its socket to interrupt it, and
/// whether it is between transactions (safe to close at once on stop).
pub(crate) struct SessionSlot {
    socket: Arc<TcpStream>,
    pub(crate) idle: Arc<AtomicBool>,
}

/// A session (or the poller role) waiting for a thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Parked session threads (Indy's `TIdThreadMgrPool`): a rendezvous channel, so a job is
/// handed over only to a thread already waiting; otherwise a new thread is started.
struct Pool {
    jobs: Sender<Job>,
    waiting: Receiver<Job>,
    /// Dropped on stop: parked threads see the disconnect and exit.
    stop: Mutex<Option<Sender<()>>>,
    stopped: Receiver<()>,
    parked: AtomicUsize,
}

impl Default for Pool {
    fn default() -> Self {
        let (jobs, waiting) = bounded(0);
        let (stop, stopped) = bounded(0);
        Pool {
            jobs,
            waiting,
            stop: Mutex::new(Some(stop)),
            stopped,
            parked: AtomicUsize::new(0),
        }
    }
}

/// Run-time state shared by the listeners and sessions.
pub(crate) struct Runtime {
    pool: Pool,
    /// Idle sessions waiting without a thread; `None` when parking is off or unsupported.
    pub(crate) parking: Option<Parking>,
    stopping: AtomicBool,
    next_id: AtomicU64,
    active: AtomicUsize,
    sessions: Mutex<HashMap<u64, SessionSlot>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Runtime {
    pub(crate) fn new(park_idle_sessions: bool) -> Runtime {
        let parking = if park_idle_sessions {
            Parking::new()
                .map_err(|e| log::warn!("idle sessions keep their threads: {e}"))
                .ok()
        } else {
            None
        };
        Runtime {
            pool: Pool::default(),
            parking,
            stopping: AtomicBool::default(),
            next_id: AtomicU64::default(),
            active: AtomicUsize::default(),
            sessions: Mutex::default(),
            per_ip: Mutex::default(),
            threads: Mutex::default(),
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Number of sessions being served right now.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }
}

/// A running server (Indy's `Active = True`). [`stop`](ServerHandle::stop) it, or drop it,
/// to shut it down gracefully. Either waits: up to `stop_timeout` (30 s by default) for a
/// client in the middle of a transaction, and for as long as a handler still runs (see
/// `stop`). Tests that leave clients mid-transaction should set a short `stop_timeout`.
pub struct ServerHandle {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    listeners: Vec<(Socket, JoinHandle<()>)>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addrs", &self.addrs)
            .finish()
    }
}

pub(crate) fn start(config: SmtpServer) -> Result<ServerHandle> {
    let backlog = config.listen_backlog;
    let plain = config.plain_bindings();
    let implicit = config.tls_bindings.clone();
    let mut sockets = Vec::new();
    for (addr, tls) in plain
        .iter()
        .map(|a| (*a, false))
        .chain(implicit.iter().map(|a| (*a, true)))
    {
        sockets.push((bind(addr, backlog)?, tls));
    }
    let shared = Shared::new(config);
    parking::start(&shared)?;
    let mut addrs = Vec::new();
    let mut listeners = Vec::new();
    for (socket, tls) in sockets {
        let listener: TcpListener = socket.try_clone().map_err(Error::Io)?.into();
        let addr = listener.local_addr().map_err(Error::Io)?;
        addrs.push(addr);
        let shared = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name(format!("smtp-listen-{addr}"))
            .spawn(move || accept_loop(&shared, &listener, tls))
            .map_err(Error::Io)?;
        log::info!(
            "listening on {addr}{}",
            if tls { " (implicit TLS)" } else { "" }
        );
        listeners.push((socket, handle));
    }
    Ok(ServerHandle {
        shared,
        addrs,
        listeners,
    })
}

/// socket2, not std: std listens with a backlog of 128, which drops SYNs in a burst.
fn bind(addr: SocketAddr, backlog: i32) -> Result<Socket> {
    let err = |source| Error::Bind { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(err)?;
    }
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(backlog).map_err(err)?;
    Ok(socket)
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, implicit_tls: bool) {
    let mut failures = 0u64;
    loop {
        let accepted = listener.accept();
        if shared.runtime.stopping() {
            return;
        }
        match accepted {
            Ok((tcp, peer)) => {
                if failures > 0 {
                    log::warn!("accepting again after {failures} failed accepts");
                    failures = 0;
                }
                // A bug met while admitting one client must not stop the server accepting.
                let admitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    admit(shared, tcp, peer, implicit_tls)
                }));
                if admitted.is_err() {
                    log::error!("admitting {peer} panicked; still accepting");
                }
            }
            Err(e) => {
                // EMFILE lasts until a client leaves and fails 50 times a second: a warning
                // for the 1st, 2nd, 4th, 8th... failure in a row, not for each.
                failures += 1;
                if failures.is_power_of_two() {
                    log::warn!("accept failed ({failures} in a row): {e}");
                }
                // Back off instead of spinning.
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Refuses a connection with a 421 written straight from the listener (RFC 5321 §3.1:
/// a server may answer 421 instead of 220), with `messages.max_connection_reply`.
fn refuse(shared: &Shared, tcp: &TcpStream, peer: SocketAddr, why: &str) {
    refuse_with(
        shared,
        tcp,
        peer,
        why,
        &shared.config.messages.max_connection_reply,
    );
}

/// [`refuse`] with another text (a template: `%h` is the host name).
fn refuse_with(shared: &Shared, tcp: &TcpStream, peer: SocketAddr, why: &str, template: &str) {
    log::warn!("refusing {peer}: {why}");
    let text = shared.config.text(template);
    let reply = Reply::new(421, text);
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = (&*tcp).write_all(&reply.to_wire(false));
    let _ = tcp.shutdown(Shutdown::Both);
}

fn admit(shared: &Arc<Shared>, tcp: TcpStream, peer: SocketAddr, implicit_tls: bool) {
    let config = &shared.config;
    let rt = &shared.runtime;
    if config.max_connections > 0 && rt.active() >= config.max_connections {
        return refuse(shared, &tcp, peer, "max_connections reached");
    }
    if let Some(proxy) = &config.proxy_protocol {
        if !proxy.trusts(peer.ip()) {
            let text = "%h Service available only through its proxy";
            return refuse_with(shared, &tcp, peer, "not a trusted proxy", text);
        }
    }
    // Behind a proxy every connection comes from the proxy: the client's address, known
    // after the PROXY header, is the one counted (`count_client`).
    let counted = session::counted_address(config, peer);
    if let Some(ip) = counted {
        if !count_client(shared, ip) {
            return refuse(shared, &tcp, peer, "max_connections_per_ip reached");
        }
    }
    let _ = tcp.set_nodelay(true);
    let id = rt.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let idle = Arc::new(AtomicBool::new(true));
    let tcp = Arc::new(tcp);
    rt.sessions.lock().insert(
        id,
        SessionSlot {
            socket: Arc::clone(&tcp),
            idle: Arc::clone(&idle),
        },
    );
    rt.active.fetch_add(1, Ordering::SeqCst);
    // A bug met while greeting must not leave the admission half done: counted, registered,
    // and the client waiting for a greeting that never comes.
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        start_session(shared, tcp, peer, id, idle, implicit_tls)
    }));
    if started.is_err() {
        log::error!("session {id}: panicked while starting; closed");
        abandon(shared, id, counted);
    }
}

/// Greets the session inline (it then parks) or hands it to a pool thread.
fn start_session(
    shared: &Arc<Shared>,
    tcp: Arc<TcpStream>,
    peer: SocketAddr,
    id: u64,
    idle: Arc<AtomicBool>,
    implicit_tls: bool,
) {
    let rt = &shared.runtime;
    let session_shared = Arc::clone(shared);
    let job: Job = if session::greets_inline(shared, implicit_tls) {
        match session::greet(shared, tcp, peer, id, idle) {
            None => return,
            Some(session) => Box::new(move || session::resume(&session_shared, session)),
        }
    } else {
        Box::new(move || session::run(&session_shared, tcp, peer, id, implicit_tls, idle))
    };
    if let Err(e) = dispatch(shared, job) {
        log::error!("cannot start a session thread: {e}");
        let slot = rt.sessions.lock().remove(&id);
        leave(shared, id, session::counted_address(&shared.config, peer));
        if let Some(slot) = slot {
            refuse(shared, &slot.socket, peer, "no thread");
        }
    }
}

/// Runs `job` on a parked pool thread, or on a new one when none is waiting.
pub(crate) fn dispatch(shared: &Arc<Shared>, job: Job) -> std::io::Result<()> {
    let rt = &shared.runtime;
    let job = match rt.pool.jobs.try_send(job) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => job,
    };
    let worker_shared = Arc::clone(shared);
    let handle = thread::Builder::new()
        .name("smtp-session".into())
        .stack_size(shared.config.thread_stack_size)
        .spawn(move || worker(&worker_shared, job))?;
    remember(rt, handle);
    Ok(())
}

/// Runs a session, then waits parked for the next one while the pool has room.
fn worker(shared: &Shared, first: Job) {
    let pool = &shared.runtime.pool;
    first();
    loop {
        if shared.runtime.stopping()
            || pool.parked.fetch_add(1, Ordering::SeqCst) >= shared.config.thread_pool_size
        {
            pool.parked.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let next = select! {
            recv(pool.waiting) -> job => job.ok(),
            recv(pool.stopped) -> _ => None,
        };
        pool.parked.fetch_sub(1, Ordering::SeqCst);
        match next {
            Some(job) => job(),
            None => return,
        }
    }
}

/// Takes an ended session off the registry and the connection counts (`ip`: the address
/// it was counted under, if any).
pub(crate) fn leave(shared: &Shared, id: u64, ip: Option<IpAddr>) {
    let rt = &shared.runtime;
    rt.sessions.lock().remove(&id);
    uncount(rt, ip);
}

/// Ends a session whose start panicked, unless it already ended (then `leave` has run).
fn abandon(shared: &Shared, id: u64, ip: Option<IpAddr>) {
    let rt = &shared.runtime;
    if let Some(parking) = &rt.parking {
        parking.forget(id);
    }
    let slot = rt.sessions.lock().remove(&id);
    if let Some(slot) = slot {
        let _ = slot.socket.shutdown(Shutdown::Both);
        uncount(rt, ip);
    }
}

/// Gives back a session's place in the connection counts.
fn uncount(rt: &Runtime, ip: Option<IpAddr>) {
    if let Some(ip) = ip {
        let mut per_ip = rt.per_ip.lock();
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }
    rt.active.fetch_sub(1, Ordering::SeqCst);
}

/// Counts one more session of `client` in the per-IP counts; false, counting nothing, when
/// it already has `limits.max_connections_per_ip`.
pub(crate) fn count_client(shared: &Shared, client: IpAddr) -> bool {
    let max = shared.config.limits.max_connections_per_ip;
    let mut per_ip = shared.runtime.per_ip.lock();
    let count = per_ip.entry(client).or_insert(0);
    if max > 0 && *count >= max {
        return false;
    }
    *count += 1;
    true
}

/// Keeps the join handles, dropping finished ones now and then (amortised: only when the
/// list doubled since the last sweep).
pub(crate) fn remember(rt: &Runtime, handle: JoinHandle<()>) {
    let mut threads = rt.threads.lock();
    threads.push(handle);
    if threads.len() >= 64 && threads.len().is_power_of_two() {
        threads.retain(|h| !h.is_finished());
    }
}

impl ServerHandle {
    /// The addresses really bound (useful with port 0), plain bindings first.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The first bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Sessions being served right now.
    pub fn active_sessions(&self) -> usize {
        self.shared.runtime.active()
    }

    /// Swaps the TLS certificate: new handshakes use `config`, running sessions keep theirs.
    /// `Err(NoTlsConfig)` when the server was started without TLS.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn reload_tls(&self, config: Arc<rustls::ServerConfig>) -> Result<()> {
        match &self.shared.tls {
            Some(acceptor) => {
                acceptor.reload(config);
                Ok(())
            }
            None => Err(Error::NoTlsConfig),
        }
    }

    /// Stops gracefully (Indy's `Active := False`, done right): stops accepting, answers idle
    /// sessions `421 4.3.2` and closes them, lets transactions in flight finish for up to
    /// `stop_timeout`, then closes the rest, and joins every thread. A session outside a
    /// mail transaction counts as idle even in the middle of a command: an AUTH exchange
    /// waiting for its client is ended at once, a slow command (a MAIL check) still sends its
    /// reply, then the 421. A session blocked writing to a client that does not read its
    /// replies ends at its write timeout (`command_timeout`) or at `stop_timeout`.
    ///
    /// `stop_timeout` bounds how long clients are waited for, not how long `stop` takes: a
    /// handler still running at the deadline has its client's connection closed, and `stop`
    /// returns once that handler has returned too (a thread cannot be stopped safely from
    /// outside). Its client gets no reply, so it will send the message again (RFC 5321 §6.1:
    /// a duplicate rather than a loss).
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Stops as [`stop`](ServerHandle::stop) does and gives the [`SmtpServer`] back, with its
    /// settings and the same closures (and whatever state they hold), so that it can be
    /// started again: Indy's `Active := False` followed later by `Active := True`. A
    /// certificate swapped in with `reload_tls` is kept in its `tls`. A binding to port 0 gets
    /// a new port at the next start; set `bindings` to `local_addrs()` first to keep it.
    /// `start()` takes the server even when it fails (an address taken in the meantime), so
    /// state the closures must not lose belongs in an `Arc` the application keeps as well.
    ///
    /// `Err(ServerInUse)` only if something outside the server still holds its shared state
    /// once every one of its threads has ended (this should not happen; the server is then
    /// stopped all the same).
    pub fn stop_for_restart(self) -> Result<SmtpServer> {
        let shared = Arc::clone(&self.shared);
        drop(self);
        // Thread-local duties of the pool threads are dropped as those threads end, which
        // `join` waits for; nothing else keeps a reference once `shutdown` has returned.
        match Arc::try_unwrap(shared) {
            Ok(shared) => Ok(shared.into_config()),
            Err(_) => Err(Error::ServerInUse),
        }
    }

    fn shutdown(&mut self) {
        let rt = &self.shared.runtime;
        if rt.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        for (socket, _) in &self.listeners {
            // Wakes the blocked accept() on Linux; the loop then sees `stopping`.
            let _ = socket.shutdown(Shutdown::Both);
            if let Ok(addr) = socket.local_addr() {
                if let Some(addr) = addr.as_socket() {
                    wake_listener(addr);
                }
            }
        }
        for (_, handle) in self.listeners.drain(..) {
            let _ = handle.join();
        }
        let idle = |slot: &SessionSlot| slot.idle.load(Ordering::SeqCst);
        self.interrupt_sessions(idle, Shutdown::Read);
        let deadline = crate::config::deadline(Instant::now(), self.shared.config.stop_timeout);
        while rt.active() > 0 && Instant::now() < deadline {
            // Only the read side: a command still running (a slow MAIL check) gets its reply
            // out, then the session meets the end of input and says 421.
            self.interrupt_sessions(idle, Shutdown::Read);
            thread::sleep(Duration::from_millis(10));
        }
        if rt.active() > 0 {
            log::warn!(
                "{} sessions still busy after stop_timeout; closing them",
                rt.active()
            );
            // The read side first: a session waiting for its client (a stalled DATA) wakes
            // to an end of input and can still send its 421 (RFC 5321 §3.8).
            self.interrupt_sessions(|_| true, Shutdown::Read);
            self.wait_for_sessions(Duration::from_secs(1));
            self.interrupt_sessions(|_| true, Shutdown::Both);
            // Closed sockets wake parked sessions; give the poller a moment to end them.
            self.wait_for_sessions(Duration::from_secs(1));
        }
        if let Some(parking) = &rt.parking {
            for session in parking.close() {
                session::abandon(&self.shared, session);
            }
        }
        rt.pool.stop.lock().take();
        // A thread being joined may have started another just before it saw the stop (the
        // watchdog handing the poller role on): join until none is left, so that no thread
        // outlives `stop` (and `stop_for_restart` finds the state free).
        loop {
            let threads: Vec<_> = rt.threads.lock().drain(..).collect();
            if threads.is_empty() {
                break;
            }
            for handle in threads {
                let _ = handle.join();
            }
        }
        log::info!("server stopped");
    }

    /// Waits up to `limit` for the sessions to end.
    fn wait_for_sessions(&self, limit: Duration) {
        let until = Instant::now() + limit;
        while self.shared.runtime.active() > 0 && Instant::now() < until {
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn interrupt_sessions(&self, which: impl Fn(&SessionSlot) -> bool, how: Shutdown) {
        for slot in self.shared.runtime.sessions.lock().values() {
            if which(slot) {
                let _ = slot.socket.shutdown(how);
            }
        }
    }
}

/// A connect to our own listener, for systems where shutdown() does not wake accept().
fn wake_listener(addr: SocketAddr) {
    let target = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], addr.port()))
        }
        _ => addr,
    };
    let _ = TcpStream::connect_timeout(&target, Duration::from_millis(200));
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
