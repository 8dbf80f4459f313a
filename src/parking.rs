//! Parked sessions: an idle client waits in the server's epoll set, not in a blocked thread.
//!
//! A session that has answered everything it was sent and has no input left is parked (a
//! command line's beginning may be pending: it stays with the session, and the line's
//! timeout counts from when its wait began): its
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
//! park too: before one parks, the records on its socket are read without waiting until the
//! socket is empty (rustls may hold plaintext the socket no longer shows), and its replies,
//! once encrypted, are sent the same way.
//!
//! When the role holder is saturated with heavy steps (handlers such as Maildir delivery keep
//! its CPU busy), a *helper* thread joins it, up to one per further CPU: it waits on the same
//! epoll set and runs ready sessions too, until it finds nothing to do or its steps turn
//! light. A server whose poller keeps up, or whose steps are quick, pays for no second thread.

#![cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    allow(dead_code, unused_imports)
)]

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
/// The role holder's load is judged over windows this long. A helper joins a saturated
/// poller only if its session steps took `HEAVY_STEP` or more on average: a second thread
/// pays off for handlers that work (with Maildir delivery a step takes 30-50 µs on average),
/// while for quick steps (a command and its reply: 11-16 µs) its wake-ups and the shared
/// queue cost more CPU than it saves (measured: 10-20 % more CPU per message, discarding).
const LOAD_WINDOW: Duration = Duration::from_millis(5);
const HEAVY_STEP: Duration = Duration::from_micros(20);
/// A helper leaves after waiting this long for events in vain.
const HELPER_LINGER: Duration = Duration::from_millis(5);

/// What a pool thread does for the parked sessions besides its own.
enum Duty {
    /// Holds the poller role of this epoch.
    Poller(Arc<Shared>, u64),
    /// Helps a saturated poller.
    Helper(Arc<Shared>),
}

thread_local! {
    static DUTY: RefCell<Option<Duty>> = const { RefCell::new(None) };
}

/// Whether this thread serves parked sessions (it must not block on one client).
pub(crate) fn serves_parked_sessions() -> bool {
    DUTY.with(|duty| duty.borrow().is_some())
}

fn set_duty(duty: Option<Duty>) {
    DUTY.with(|d| *d.borrow_mut() = duty);
}

/// Called before something that may block for a while on one session: hands the poller role,
/// if this thread holds it, to another thread; a helper stops helping.
pub(crate) fn before_blocking() {
    match DUTY.with(|duty| duty.borrow_mut().take()) {
        Some(Duty::Poller(shared, epoch)) if !hand_off(&shared, epoch) => {
            // No thread could take it: keep it; the parked sessions wait for this one.
            set_duty(Some(Duty::Poller(shared, epoch)));
        }
        Some(Duty::Helper(shared)) => {
            if let Some(parking) = &shared.runtime.parking {
                parking.helpers.fetch_sub(1, Ordering::SeqCst);
                parking.hand_back_ready();
            }
        }
        Some(Duty::Poller(..)) | None => {}
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
    /// Being served by a thread; `woken` when its socket reported new input meanwhile,
    /// `hung_up` when it reported the client's end of input.
    Running {
        woken: bool,
        hung_up: bool,
    },
}

impl Slot {
    const RUNNING: Slot = Slot::Running {
        woken: false,
        hung_up: false,
    };
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
    /// Helper threads running, and how many may (the CPUs less the poller's).
    helpers: AtomicUsize,
    max_helpers: usize,
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
            if let Some(Slot::Running { woken, hung_up }) = table.sessions.get_mut(&id) {
                session.hung_up |= std::mem::take(hung_up);
                if std::mem::take(woken) {
                    return Err(Declined {
                        session,
                        woken: true,
                    });
                }
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

    /// Notes that the client of session `id` ended its input (a FIN, `EPOLLRDHUP`). The edge
    /// that reported it may also have carried the session's last command: once that is
    /// served, the session must read again to meet the end, or it would park until its
    /// timeout with no further event to wake it.
    pub(super) fn hung_up(&self, id: u64) {
        match self.table.lock().sessions.get_mut(&id) {
            Some(Slot::Parked(parked)) => parked.session.hung_up = true,
            Some(Slot::Running { hung_up, .. }) => *hung_up = true,
            None => {}
        }
    }

    /// Wakes a thread waiting for events when sessions are queued as ready. A helper that
    /// leaves, or that blocks on one session, may have queued them itself with its last wait;
    /// the poller, asleep in `epoll_wait`, would otherwise see them only when its wait ends
    /// (up to `MAX_WAIT`), as their edge-triggered sockets report nothing new.
    fn hand_back_ready(&self) {
        if !self.ready.lock().is_empty() {
            self.wake_pollers();
        }
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

    /// Runs one ready session until it parks again or ends. `epoch` is the role holder's (the
    /// watchdog watches its steps), `None` for a helper.
    fn run(&self, shared: &Arc<Shared>, id: u64, epoch: Option<u64>) {
        let parked = {
            let mut table = self.table.lock();
            let Some(slot) = table.sessions.get_mut(&id) else {
                // Already ended (timed out, taken on stop).
                return;
            };
            if let Slot::Running { woken, .. } = slot {
                // A thread serves it right now: it looks again before it parks.
                *woken = true;
                return;
            }
            match std::mem::replace(slot, Slot::RUNNING) {
                Slot::Parked(parked) => parked,
                Slot::Running { .. } => return,
            }
        };
        let Some(epoch) = epoch else {
            session::resume(shared, parked.session);
            return;
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

    /// Starts a helper unless as many run as may.
    fn call_helper(&self, shared: &Arc<Shared>) {
        let room = self
            .helpers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max_helpers).then_some(n + 1)
            });
        if room.is_err() {
            return;
        }
        log::debug!("the poller is saturated: a helper joins it");
        let helped = Arc::clone(shared);
        if crate::listener::dispatch(shared, Box::new(move || help(&helped))).is_err() {
            self.helpers.fetch_sub(1, Ordering::SeqCst);
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
    set_duty(Some(Duty::Poller(Arc::clone(shared), epoch)));
    log::trace!("poller {epoch} starts");
    let mut next_sweep = Instant::now() + SWEEP_EVERY;
    let mut load = Load::new();
    while parking.holds(epoch) {
        let next = parking.ready.lock().pop_front();
        if let Some(id) = next {
            if load.verdict() == Some((true, true)) {
                parking.call_helper(shared);
            }
            parking.run(shared, id, Some(epoch));
            load.steps += 1;
            continue;
        }
        load.wait(parking, parking.wait_time(next_sweep));
        if Instant::now() >= next_sweep {
            parking.sweep(shared);
            next_sweep = Instant::now() + SWEEP_EVERY;
        }
    }
    set_duty(None);
}

/// How busy a thread serving parked sessions was over the last `LOAD_WINDOW`.
struct Load {
    since: Instant,
    /// Time spent waiting for events.
    idle: Duration,
    /// Sessions run.
    steps: u32,
}

impl Load {
    fn new() -> Load {
        Load {
            since: Instant::now(),
            idle: Duration::ZERO,
            steps: 0,
        }
    }

    /// Waits for events, counting the time as idle.
    fn wait(&mut self, parking: &Parking, timeout: Duration) -> usize {
        let started = Instant::now();
        let found = parking.wait(timeout);
        self.idle += started.elapsed();
        found
    }

    /// Once a window is over: whether the thread was saturated (idle under a quarter of the
    /// time) and its steps were heavy; `None` until then. A new window starts either way.
    fn verdict(&mut self) -> Option<(bool, bool)> {
        let window = self.since.elapsed();
        if window < LOAD_WINDOW {
            return None;
        }
        let working = window.saturating_sub(self.idle);
        let saturated = self.idle * 4 < window;
        let heavy = working >= HEAVY_STEP * self.steps;
        *self = Load::new();
        Some((saturated, heavy))
    }
}

/// A helper: runs ready sessions beside the poller until it waits `HELPER_LINGER` in vain,
/// its steps turn light, or a session it runs blocks (it then serves that one alone, like a
/// former poller).
fn help(shared: &Arc<Shared>) {
    let Some(parking) = &shared.runtime.parking else {
        return;
    };
    set_duty(Some(Duty::Helper(Arc::clone(shared))));
    let still_helping = || DUTY.with(|duty| matches!(*duty.borrow(), Some(Duty::Helper(_))));
    let mut load = Load::new();
    while still_helping() && !parking.closed.load(Ordering::SeqCst) {
        let next = parking.ready.lock().pop_front();
        match next {
            Some(id) => {
                parking.run(shared, id, None);
                load.steps += 1;
            }
            None if load.wait(parking, HELPER_LINGER) == 0 => break,
            None => {}
        }
        // The steps turned light: the poller keeps up alone again.
        if matches!(load.verdict(), Some((_, false))) {
            break;
        }
    }
    if still_helping() {
        parking.helpers.fetch_sub(1, Ordering::SeqCst);
        parking.hand_back_ready();
    }
    set_duty(None);
}

/// Passes the role from the holder of `epoch` to a new pool thread. False when no thread
/// could take it (the holder keeps it) or it had already passed.
fn hand_off(shared: &Arc<Shared>, epoch: u64) -> bool {
    let Some(parking) = &shared.runtime.parking else {
        return false;
    };
    if parking.closed.load(Ordering::SeqCst) {
        return false;
    }
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
mod epoll;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use epoll::{recv_now, send_now};

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod fallback;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) use fallback::{recv_now, send_now};
