//! The open connections, bounded: at most [`MAX_CONNECTIONS`], whatever they do.
//!
//! A connection is *busy* while a request is being answered and for as long as a stream (Server-
//! Sent Events) runs on it; otherwise it is *idle*: waiting for its first request header (a slow
//! or silent client), or between requests. When every slot is taken, the connection idle longest
//! is closed to make room for the new one, so that idle connections, however many, never lock out
//! the page or `/health`; only when every slot is busy is the newcomer refused, with 503. Idle
//! connections also end by themselves: hyper closes one whose request header is not complete
//! within the header timeout (`super::HEADER_TIMEOUT`), which is also how long a connection may
//! sit idle between requests.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;

/// Connections open at once (all kinds: streams, requests, idle ones).
pub const MAX_CONNECTIONS: usize = 256;

/// What a connection's service tells the registry.
#[derive(Debug)]
pub struct Activity {
    /// Requests being answered or streams running.
    busy: AtomicUsize,
    /// When it last became idle (ms after the registry's start).
    idle_since_ms: AtomicU64,
    base: Instant,
}

impl Activity {
    /// A request came in.
    pub fn begin(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
    }

    /// A request was answered (a stream's answer is not over until the connection closes, and
    /// never calls this).
    pub fn end(&self) {
        self.idle_since_ms
            .store(self.base.elapsed().as_millis() as u64, Ordering::Release);
        self.busy.fetch_sub(1, Ordering::AcqRel);
    }

    fn idle_since(&self) -> Option<u64> {
        (self.busy.load(Ordering::Acquire) == 0).then(|| self.idle_since_ms.load(Ordering::Acquire))
    }
}

struct Open {
    activity: Arc<Activity>,
    /// Closes the connection (dropped by its task).
    close: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    open: BTreeMap<u64, Open>,
    /// Connections closed to make room, and refused, since the start.
    evicted: u64,
    refused: u64,
}

/// The registry of open connections.
pub struct Connections {
    base: Instant,
    max: usize,
    inner: Mutex<Inner>,
}

/// A connection's place in the registry; leaves it when dropped.
pub struct Slot {
    registry: Arc<Connections>,
    id: u64,
    pub activity: Arc<Activity>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.lock().open.remove(&self.id);
    }
}

impl Connections {
    pub fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            base: Instant::now(),
            max,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection, closing the connection idle longest when all are taken;
    /// `None` when every one is busy (the caller refuses the connection). The receiver resolves
    /// when the registry closes this connection to make room for another.
    pub fn admit(self: &Arc<Self>) -> Option<(Slot, oneshot::Receiver<()>)> {
        let mut inner = self.lock();
        if inner.open.len() >= self.max {
            let oldest = inner
                .open
                .iter()
                .filter_map(|(id, open)| Some((open.activity.idle_since()?, *id)))
                .min();
            let Some((_, victim)) = oldest else {
                inner.refused += 1;
                return None;
            };
            if let Some(mut open) = inner.open.remove(&victim) {
                if let Some(close) = open.close.take() {
                    let _ = close.send(());
                }
            }
            inner.evicted += 1;
        }
        let id = inner.next;
        inner.next += 1;
        let activity = Arc::new(Activity {
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(self.base.elapsed().as_millis() as u64),
            base: self.base,
        });
        let (close, closed) = oneshot::channel();
        inner.open.insert(
            id,
            Open {
                activity: activity.clone(),
                close: Some(close),
            },
        );
        Some((
            Slot {
                registry: self.clone(),
                id,
                activity,
            },
            closed,
        ))
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Connections closed to make room, and refused, since the start.
    pub fn evicted_and_refused(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.evicted, inner.refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_idle_longest_makes_room_and_busy_ones_are_kept() {
        let registry = Connections::new(3);
        let mut slots: Vec<(Slot, oneshot::Receiver<()>)> =
            (0..3).map(|_| registry.admit().unwrap()).collect();
        // The first is busy (a stream), the second was idle longest.
        slots[0].0.activity.begin();
        std::thread::sleep(std::time::Duration::from_millis(5));
        slots[2].0.activity.begin();
        slots[2].0.activity.end();
        let mut fourth = registry.admit().unwrap();
        assert_eq!(registry.open(), 3);
        assert!(slots[1].1.try_recv().is_ok(), "the idle one is closed");
        assert!(slots[2].1.try_recv().is_err());
        assert!(slots[0].1.try_recv().is_err());
        // The closed connection's task ends and leaves; the rest stay.
        slots.remove(1);
        assert_eq!(registry.open(), 3);
        // All busy: refused.
        slots[1].0.activity.begin();
        fourth.0.activity.begin();
        assert!(registry.admit().is_none());
        assert_eq!(registry.evicted_and_refused(), (1, 1));
        fourth.0.activity.end();
        assert!(registry.admit().is_some());
        assert!(fourth.1.try_recv().is_ok());
    }
}
