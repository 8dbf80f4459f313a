//! Bulk buffers for message data, kept per thread between messages.
//!
//! A DATA read needs a 64 KiB input buffer (the message is handed out from it; see
//! `data::Pieces`), and the Maildir writer a carry-over of the same size. Owned by the
//! session, the input buffer would cost 64 KiB for every session that ever received a large
//! message, even while it idles (issue 5: at most 12 KB per idle connection); allocated per
//! message, the allocator hands the pages back and every 1 MB message page-faults them in
//! again (a third of scenario d's page faults). Only a thread that is running a session reads
//! DATA, so a small cache per thread gives both: idle sessions hold nothing, and a busy thread
//! reuses the same warm pages message after message. A session that keeps a thread of its own
//! (TLS, or `park_idle_sessions` off) empties the cache before it waits for its next command,
//! so its idle thread holds none either; threads parked in the pool keep theirs (at most
//! `thread_pool_size` × 2 buffers).

use std::cell::RefCell;

/// Buffers kept per thread: the input buffer of the DATA read in progress, and the Maildir
/// writer's carry-over.
const KEPT_PER_THREAD: usize = 2;
/// A buffer that grew past this (a handler read huge blocks) is freed, not kept.
const LARGEST_KEPT: usize = 256 * 1024;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `capacity` bytes, from this thread's cache when it
/// has one large enough.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    let cached = SPARE
        .try_with(|spare| {
            let mut spare = spare.borrow_mut();
            let found = spare.iter().position(|b| b.capacity() >= capacity)?;
            Some(spare.swap_remove(found))
        })
        .ok()
        .flatten();
    let mut buf = cached.unwrap_or_default();
    buf.clear();
    buf.reserve(capacity);
    buf
}

/// Hands a buffer back to this thread's cache (or frees it when the cache is full, the buffer
/// is small or oversized, or the thread is exiting).
pub(crate) fn give_back(buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > LARGEST_KEPT {
        return;
    }
    // During thread exit the cache may already be gone; the buffer is then simply freed.
    let _ = SPARE.try_with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut() {
            if spare.len() < KEPT_PER_THREAD {
                spare.push(buf);
            }
        }
    });
}

/// Frees this thread's cache: the thread is about to wait for one client for an unknown time
/// (a session with a thread of its own, between commands), and should not sit on buffers.
pub(crate) fn release() {
    let _ = SPARE.try_with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut() {
            *spare = Vec::new();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_empty_with_its_capacity() {
        let mut buf = take(64 * 1024);
        buf.extend_from_slice(b"left over");
        let addr = buf.as_ptr();
        give_back(buf);
        let again = take(1024);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), addr);
        assert!(again.capacity() >= 64 * 1024);
    }

    #[test]
    fn the_cache_is_bounded_and_skips_oversized_buffers() {
        for _ in 0..KEPT_PER_THREAD + 3 {
            give_back(Vec::with_capacity(1024));
        }
        give_back(Vec::with_capacity(LARGEST_KEPT + 1));
        let kept = SPARE.with(|s| s.borrow().len());
        assert_eq!(kept, KEPT_PER_THREAD);
        let big = take(LARGEST_KEPT);
        assert!(big.capacity() >= LARGEST_KEPT);
        assert_eq!(SPARE.with(|s| s.borrow().len()), KEPT_PER_THREAD);
        release();
        assert_eq!(SPARE.with(|s| s.borrow().capacity()), 0);
    }
}
