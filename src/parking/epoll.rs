//! Linux: the epoll set, the stop waker, and reads and writes that do not wait.

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
            helpers: AtomicUsize::new(0),
            max_helpers: thread::available_parallelism().map_or(0, |n| n.get() - 1),
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

    /// Waits up to `timeout` and queues the sessions that became ready; how many.
    pub(super) fn wait(&self, timeout: Duration) -> usize {
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
                // Marked before the session can be run from the queue.
                let ended = EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR;
                for event in &events[..n] {
                    let flags = event.flags;
                    if flags.intersects(ended) && event.data.u64() != WAKER {
                        self.hung_up(event.data.u64());
                    }
                }
                let mut ready = self.ready.lock();
                let before = ready.len();
                for event in &events[..n] {
                    let id = event.data.u64();
                    if id != WAKER {
                        ready.push_back(id);
                    } else if !self.closed.load(Ordering::SeqCst) {
                        // A nudge (`hand_back_ready`): the eventfd is level-triggered, so it
                        // is emptied, or every wait would return at once. On stop it stays
                        // full and wakes everyone.
                        let _ = rustix::io::read(&self.waker, &mut [0u8; 8]);
                    }
                }
                // A thread woken by a nudge alone finds the queued sessions when it looks at
                // the queue again, as every caller does before it waits.
                ready.len() - before
            }
            Err(Errno::INTR) => 0,
            Err(e) => {
                log::error!("epoll_wait: {e}");
                thread::sleep(Duration::from_millis(10));
                0
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
