//! Parked sessions: an idle client waits in the server's epoll set, not in a blocked thread.
//!
//! A session that has answered everything it was sent and has no input left is parked: its
//! state goes into a table, and its socket is in the epoll set (added once, edge-triggered;
//! the session reads until the socket is empty before it parks, and a wake-up it was too busy
//! to take is remembered in the table).
//! One pool thread at a time holds the *poller role*: it waits for ready sockets and runs each
//! ready session inline until that session parks again. On a busy server one wake-up then
//! serves many commands, as in an event loop; a thread per connection woke once per command
//! (issue 5: those wake-ups were three quarters of the CPU per message).
//!
//! Handlers still run as in a thread-per-connection server and may block: before the role
//! holder blocks on one client's socket in the middle of a command (a slow DATA, an AUTH
//! exchange), it passes the role to another pool thread and goes on serving that one session
//! alone; a watchdog does the same for a handler that runs longer than a tick. TLS sessions
//! are never parked (rustls may hold records the socket no longer shows): they keep a thread.

#![cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    allow(dead_code, unused_imports)
)]

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::server::Shared;
use crate::session::{self, Session};

/// How often the watchdog looks at the role holder: a handler that blocks the role for a
/// whole tick delays the other parked sessions by at most two ticks.
const WATCHDOG_TICK: Duration = Duration::from_millis(25);
/// Ticks without a session step after which the watchdog sleeps until the next step, so an
/// idle server is not woken 40 times a second.
const WATCHDOG_IDLE_TICKS: u32 = 40;
/// Timed-out sessions are looked for at most this often (a scan of the table).
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// The longest wait for events, so that deadlines set while waiting are seen in time.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Events taken from the kernel per wait.
const BATCH: usize = 64;
/// The epoll token of the eventfd that wakes the pollers on stop (session ids start at 1).
const WAKER: u64 = 0;

thread_local! {
    /// Set while this thread holds the poller role: the server and the role's epoch.
    static ROLE: RefCell<Option<(Arc<Shared>, u64)>> = const { RefCell::new(None) };
}

/// Whether this thread holds the poller role (it must not block on one client).
pub(crate) fn holds_role() -> bool {
    ROLE.with(|role| role.borrow().is_some())
}

/// Called before something that may block for a while on one session: hands the poller role,
/// if this thread holds it, to another thread.
pub(crate) fn before_blocking() {
    if let Some((shared, epoch)) = ROLE.with(|role| role.borrow_mut().take()) {
        if !hand_off(&shared, epoch) {
            // No thread could take it: keep it; the parked sessions wait for this one.
            ROLE.with(|role| *role.borrow_mut() = Some((shared, epoch)));
        }
    }
}

/// A parked session and when it times out.
struct Parked {
    session: Box<Session>,
    deadline: Instant,
}

/// A session whose socket is in the epoll set.
enum Slot {
    Parked(Parked),
    /// Being served by a thread; `woken` when its socket reported new input meanwhile.
    Running {
        woken: bool,
    },
}

#[derive(Default)]
struct Table {
    sessions: HashMap<u64, Slot>,
    earliest: Option<Instant>,
    closed: bool,
}

/// A session `park` gave back.
pub(crate) struct Declined {
    pub(crate) session: Box<Session>,
    /// Input arrived while it ran: serve it on. Otherwise it cannot be parked at all.
    pub(crate) woken: bool,
}

impl Declined {
    fn refused(session: Box<Session>) -> Declined {
        Declined {
            session,
            woken: false,
        }
    }
}

/// The parked sessions and the epoll set they wait in.
pub(crate) struct Parking {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    epoll: rustix::fd::OwnedFd,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    waker: rustix::fd::OwnedFd,
    table: Mutex<Table>,
    /// Sessions whose socket is ready, taken from the kernel and not yet run.
    ready: Mutex<VecDeque<u64>>,
    /// The poller role's generation: bumped on every hand-off, so a thread that lost the role
    /// notices after its session step.
    epoch: AtomicU64,
    /// The role holder is running a session (for the watchdog).
    stepping: AtomicBool,
    steps: AtomicU64,
    /// The watchdog sleeps until the next step (see `WATCHDOG_IDLE_TICKS`).
    watchdog_asleep: AtomicBool,
    watchdog: Mutex<Option<thread::Thread>>,
    closed: AtomicBool,
}

impl Parking {
    /// Parks `session` until its socket is readable or `deadline` passes. Gives the session
    /// back when it cannot be parked (the server is stopping, or epoll refused the socket;
    /// the caller then serves it in its own thread), or when input arrived while it ran
    /// (`woken`: the caller reads it).
    pub(crate) fn park(
        &self,
        mut session: Box<Session>,
        deadline: Instant,
    ) -> Result<(), Declined> {
        let Some(socket) = session.socket() else {
            return Err(Declined::refused(session));
        };
        let id = session.id();
        let first = !session.registered;
        {
            let mut table = self.table.lock();
            if table.closed {
                return Err(Declined::refused(session));
            }
            if let Some(slot @ Slot::Running { woken: true }) = table.sessions.get_mut(&id) {
                *slot = Slot::Running { woken: false };
                return Err(Declined {
                    session,
                    woken: true,
                });
            }
            session.registered = true;
            let parked = Slot::Parked(Parked { session, deadline });
            table.sessions.insert(id, parked);
            table.earliest = Some(table.earliest.map_or(deadline, |e| e.min(deadline)));
        }
        if first {
            // The table entry exists before the socket is added: whoever gets the event finds
            // it. Adding reports input that is already there.
            if let Err(e) = self.register(&socket, id) {
                log::warn!("session {id}: cannot park: {e}");
                if let Some(Slot::Parked(parked)) = self.table.lock().sessions.remove(&id) {
                    let mut session = parked.session;
                    session.registered = false;
                    return Err(Declined::refused(session));
                }
            }
        }
        Ok(())
    }

    /// Drops an ended session's entry.
    pub(crate) fn forget(&self, id: u64) {
        self.table.lock().sessions.remove(&id);
    }

    /// Takes every parked session out, for good: the server is stopping.
    #[allow(clippy::vec_box)] // the sessions stay boxed: they are handed on as they were parked
    pub(crate) fn close(&self) -> Vec<Box<Session>> {
        self.closed.store(true, Ordering::SeqCst);
        self.wake_pollers();
        self.wake_watchdog();
        let mut table = self.table.lock();
        table.closed = true;
        table.earliest = None;
        let ids: Vec<u64> = table.sessions.keys().copied().collect();
        ids.into_iter()
            .filter_map(|id| match table.sessions.remove(&id) {
                Some(Slot::Parked(p)) => Some(p.session),
                running => {
                    // Still served by its thread, which ends it.
                    if let Some(slot) = running {
                        table.sessions.insert(id, slot);
                    }
                    None
                }
            })
            .collect()
    }

    fn wake_watchdog(&self) {
        if let Some(watchdog) = &*self.watchdog.lock() {
            watchdog.unpark();
        }
    }

    fn holds(&self, epoch: u64) -> bool {
        self.epoch.load(Ordering::SeqCst) == epoch && !self.closed.load(Ordering::SeqCst)
    }

    /// Runs one ready session until it parks again or ends.
    fn run(&self, shared: &Arc<Shared>, id: u64, epoch: u64) {
        let parked = {
            let mut table = self.table.lock();
            let Some(slot) = table.sessions.get_mut(&id) else {
                // Already ended (timed out, taken on stop).
                return;
            };
            match std::mem::replace(slot, Slot::Running { woken: true }) {
                Slot::Parked(parked) => {
                    *slot = Slot::Running { woken: false };
                    parked
                }
                // A thread serves it right now: it looks again before it parks.
                Slot::Running { .. } => return,
            }
        };
        self.stepping.store(true, Ordering::SeqCst);
        // SeqCst on both sides: either the watchdog sees `stepping` before it sleeps, or this
        // sees it asleep and wakes it.
        if self.watchdog_asleep.load(Ordering::SeqCst) {
            self.wake_watchdog();
        }
        session::resume(shared, parked.session);
        if self.epoch.load(Ordering::SeqCst) == epoch {
            self.stepping.store(false, Ordering::SeqCst);
            self.steps.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Closes the sessions whose deadline has passed with `421 4.4.2`.
    fn sweep(&self, shared: &Arc<Shared>) {
        let now = Instant::now();
        let expired: Vec<Box<Session>> = {
            let mut table = self.table.lock();
            match table.earliest {
                Some(earliest) if earliest <= now => {}
                _ => return,
            }
            let ids: Vec<u64> = table
                .sessions
                .iter()
                .filter(|(_, slot)| matches!(slot, Slot::Parked(p) if p.deadline <= now))
                .map(|(id, _)| *id)
                .collect();
            let expired = ids
                .iter()
                .filter_map(|id| match table.sessions.remove(id) {
                    Some(Slot::Parked(p)) => Some(p.session),
                    _ => None,
                })
                .collect();
            table.earliest = table
                .sessions
                .values()
                .filter_map(|slot| match slot {
                    Slot::Parked(p) => Some(p.deadline),
                    Slot::Running { .. } => None,
                })
                .min();
            expired
        };
        for session in expired {
            session::expire(shared, session);
        }
    }

    /// How long the poller may wait for events before the next sweep is due.
    fn wait_time(&self, next_sweep: Instant) -> Duration {
        let earliest = self.table.lock().earliest;
        let due = earliest.map_or(Instant::now() + MAX_WAIT, |e| e.max(next_sweep));
        due.saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), MAX_WAIT)
    }
}

/// Starts the first poller and the watchdog.
pub(crate) fn start(shared: &Arc<Shared>) -> crate::error::Result<()> {
    if shared.runtime.parking.is_none() {
        return Ok(());
    }
    let poller = Arc::clone(shared);
    if crate::listener::dispatch(shared, Box::new(move || poll(&poller, 0))).is_err() {
        return Err(crate::error::Error::Io(io::Error::other(
            "cannot start the poller thread",
        )));
    }
    let watched = Arc::clone(shared);
    let handle = thread::Builder::new()
        .name("smtp-watchdog".into())
        .stack_size(64 * 1024)
        .spawn(move || watchdog(&watched))
        .map_err(crate::error::Error::Io)?;
    crate::listener::remember(&shared.runtime, handle);
    Ok(())
}

/// The poller role: wait for ready sessions and run them, until the role passes on.
fn poll(shared: &Arc<Shared>, epoch: u64) {
    let Some(parking) = &shared.runtime.parking else {
        return;
    };
    ROLE.with(|role| *role.borrow_mut() = Some((Arc::clone(shared), epoch)));
    log::debug!("poller {epoch} starts");
    let mut next_sweep = Instant::now() + SWEEP_EVERY;
    while parking.holds(epoch) {
        let next = parking.ready.lock().pop_front();
        if let Some(id) = next {
            parking.run(shared, id, epoch);
            continue;
        }
        parking.wait(parking.wait_time(next_sweep));
        if Instant::now() >= next_sweep {
            parking.sweep(shared);
            next_sweep = Instant::now() + SWEEP_EVERY;
        }
    }
    ROLE.with(|role| role.borrow_mut().take());
}

/// Passes the role from the holder of `epoch` to a new pool thread. False when no thread
/// could take it (the holder keeps it) or it had already passed.
fn hand_off(shared: &Arc<Shared>, epoch: u64) -> bool {
    let Some(parking) = &shared.runtime.parking else {
        return false;
    };
    let next = epoch + 1;
    if parking
        .epoch
        .compare_exchange(epoch, next, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return false;
    }
    parking.stepping.store(false, Ordering::SeqCst);
    let poller = Arc::clone(shared);
    if crate::listener::dispatch(shared, Box::new(move || poll(&poller, next))).is_err() {
        log::error!("cannot start a poller thread; parked sessions wait");
        let _ = parking
            .epoch
            .compare_exchange(next, epoch, Ordering::SeqCst, Ordering::SeqCst);
        return false;
    }
    true
}

/// Moves the role away from a holder stuck in one session's handler for a whole tick.
fn watchdog(shared: &Arc<Shared>) {
    let Some(parking) = &shared.runtime.parking else {
        return;
    };
    *parking.watchdog.lock() = Some(thread::current());
    let mut last = (u64::MAX, u64::MAX);
    let mut idle_ticks = 0;
    while !parking.closed.load(Ordering::SeqCst) {
        if idle_ticks >= WATCHDOG_IDLE_TICKS {
            parking.watchdog_asleep.store(true, Ordering::SeqCst);
            if !parking.stepping.load(Ordering::SeqCst) && !parking.closed.load(Ordering::SeqCst) {
                // Spurious wake-ups are harmless: the loop looks again.
                thread::park();
            }
            parking.watchdog_asleep.store(false, Ordering::SeqCst);
            idle_ticks = 0;
        }
        thread::sleep(WATCHDOG_TICK);
        let now = (
            parking.epoch.load(Ordering::SeqCst),
            parking.steps.load(Ordering::SeqCst),
        );
        if parking.stepping.load(Ordering::SeqCst) && now == last {
            log::debug!("a session held the poller for a tick; another thread takes over");
            hand_off(shared, now.0);
        }
        if now == last && !parking.stepping.load(Ordering::SeqCst) {
            idle_ticks += 1;
        } else {
            idle_ticks = 0;
        }
        last = now;
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod epoll {
    use super::*;
    use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
    use rustix::event::{eventfd, EventfdFlags};
    use rustix::io::Errno;
    use rustix::net::{RecvFlags, SendFlags};

    impl Parking {
        pub(crate) fn new() -> io::Result<Parking> {
            let epoll = epoll::create(CreateFlags::CLOEXEC)?;
            let waker = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            epoll::add(&epoll, &waker, EventData::new_u64(WAKER), EventFlags::IN)?;
            Ok(Parking {
                epoll,
                waker,
                table: Mutex::default(),
                ready: Mutex::default(),
                epoch: AtomicU64::new(0),
                stepping: AtomicBool::new(false),
                steps: AtomicU64::new(0),
                watchdog_asleep: AtomicBool::new(false),
                watchdog: Mutex::new(None),
                closed: AtomicBool::new(false),
            })
        }

        /// Adds the socket, once for the session's life: edge-triggered, so parking again costs
        /// no system call (`EPOLLRDHUP`: a client that hangs up is seen at once).
        pub(super) fn register(&self, socket: &TcpStream, id: u64) -> io::Result<()> {
            let flags = EventFlags::IN | EventFlags::RDHUP | EventFlags::ET;
            epoll::add(&self.epoll, socket, EventData::new_u64(id), flags)?;
            Ok(())
        }

        /// Waits up to `timeout` and queues the sessions that became ready.
        pub(super) fn wait(&self, timeout: Duration) {
            let mut events = [Event {
                flags: EventFlags::empty(),
                data: EventData::new_u64(WAKER),
            }; BATCH];
            let timeout = rustix::event::Timespec {
                tv_sec: timeout.as_secs() as i64,
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            match epoll::wait(&self.epoll, &mut events[..], Some(&timeout)) {
                Ok(n) => {
                    let mut ready = self.ready.lock();
                    for event in &events[..n] {
                        let id = event.data.u64();
                        if id != WAKER {
                            ready.push_back(id);
                        }
                    }
                }
                Err(Errno::INTR) => {}
                Err(e) => {
                    log::error!("epoll_wait: {e}");
                    thread::sleep(Duration::from_millis(10));
                }
            }
        }

        pub(super) fn wake_pollers(&self) {
            let _ = rustix::io::write(&self.waker, &1u64.to_ne_bytes());
        }
    }

    /// One `send` that does not wait: how much the socket took (0 when its buffer is full).
    pub(crate) fn send_now(socket: &TcpStream, buf: &[u8]) -> io::Result<usize> {
        match rustix::net::send(socket, buf, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            Ok(n) => Ok(n),
            Err(Errno::AGAIN | Errno::INTR) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// One `recv` that does not wait: `None` when nothing has arrived yet.
    pub(crate) fn recv_now(socket: &TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match rustix::net::recv(socket, buf, RecvFlags::DONTWAIT) {
            Ok((n, _)) => Ok(Some(n)),
            Err(Errno::AGAIN | Errno::INTR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use epoll::{recv_now, send_now};

/// Elsewhere sessions are never parked: every session keeps its thread.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod fallback {
    use super::*;

    impl Parking {
        pub(crate) fn new() -> io::Result<Parking> {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "parking needs epoll",
            ))
        }
        pub(super) fn register(&self, _: &TcpStream, _: u64) -> io::Result<()> {
            Err(io::ErrorKind::Unsupported.into())
        }
        pub(super) fn wait(&self, timeout: Duration) {
            thread::sleep(timeout);
        }
        pub(super) fn wake_pollers(&self) {}
    }

    pub(crate) fn recv_now(_: &TcpStream, _: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }

    pub(crate) fn send_now(_: &TcpStream, _: &[u8]) -> io::Result<usize> {
        Ok(0)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) use fallback::{recv_now, send_now};
