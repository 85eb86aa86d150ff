//! The fan-out from the chain to network clients.
//!
//! The chain's threads publish into the hub (a short lock, never a wait); each client has a
//! bounded queue of its own. What a client's queue cannot take is dropped and counted for that
//! client alone: a stuck browser never slows the chain or the other clients. The hub also keeps
//! the `start` event and the last [`BACKLOG`] events, so that a page opened mid-stream draws the
//! last minutes at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Instant, SystemTime};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::pipeline::events::Event;
use crate::pipeline::{Counters, Tap};

/// Events kept for clients that join late: five minutes at the bundled model's 1 s hop.
pub const BACKLOG: usize = 300;
/// Items one client may have waiting before its new items are dropped. Levels are only queued
/// while more than half of it is free, so that they never crowd out events.
pub const QUEUE: usize = 64;
/// Clients served at once; more are refused (503).
pub const MAX_CLIENTS: usize = 64;

/// What a client receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// An event line as written to stdout; `seq` counts events from 0 (the `start` event).
    Event { seq: u64, line: Arc<str> },
    /// `{"t":S,"dbfs":L}`: the input level (Server-Sent Events only).
    Level(Arc<str>),
}

/// The kind of client, as `/health` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Server-Sent Events: events and levels.
    Sse,
    /// WebSocket: events only, exactly stdout's lines.
    WebSocket,
}

struct Client {
    id: u64,
    kind: Kind,
    peer: String,
    since: Instant,
    tx: mpsc::Sender<Item>,
    sent: u64,
    dropped: u64,
}

#[derive(Default)]
struct State {
    start: Option<Arc<str>>,
    source: Option<String>,
    backlog: VecDeque<(u64, Arc<str>)>,
    next_seq: u64,
    emotions: u64,
    silences: u64,
    utterances: u64,
    ended: bool,
    /// The `end` event, for clients whose queue was full when it came.
    end: Option<(u64, Arc<str>)>,
    next_client: u64,
    clients: Vec<Client>,
    clients_served: u64,
    /// Drops of clients that have left.
    departed_dropped: u64,
}

impl State {
    /// No more items: dropping the senders ends each feed after what is queued. The clients'
    /// drops stay counted.
    fn end_feeds(&mut self) {
        self.ended = true;
        self.departed_dropped += self.clients.iter().map(|c| c.dropped).sum::<u64>();
        self.clients.clear();
    }
}

/// The hub: one per `listen --serve`, shared by the chain (as its [`Tap`]) and the server.
pub struct Hub {
    address: String,
    /// Names this run in event ids, so that a page left open across a restart of serd does not
    /// take the new run's events for ones it has seen.
    run: String,
    started: Instant,
    state: Mutex<State>,
    counters: OnceLock<Arc<Counters>>,
    /// WebSocket feeds still delivering (the server waits for them at exit).
    feeds: Arc<AtomicUsize>,
}

/// A client's feed: what was there when it joined, then its queue. Leaves the hub when dropped.
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    pending: VecDeque<Item>,
    rx: mpsc::Receiver<Item>,
    /// The last event delivered.
    last_seq: Option<u64>,
}

impl Subscription {
    /// The next item; `None` once the stream has ended and everything was delivered. The `end`
    /// event always comes last, even when the queue was full as it came.
    pub async fn next(&mut self) -> Option<Item> {
        let item = match self.pending.pop_front() {
            Some(item) => Some(item),
            None => match self.rx.recv().await {
                Some(item) => Some(item),
                None => {
                    let end = self.hub.lock().end.clone();
                    end.filter(|(seq, _)| self.last_seq.is_none_or(|last| last < *seq))
                        .map(|(seq, line)| Item::Event { seq, line })
                }
            },
        };
        if let Some(Item::Event { seq, .. }) = &item {
            self.last_seq = Some(*seq);
        }
        item
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Counts this feed as delivering until the guard is dropped.
    pub fn feed_guard(&self) -> FeedGuard {
        self.hub.feeds.fetch_add(1, Ordering::AcqRel);
        FeedGuard(self.hub.feeds.clone())
    }
}

/// See [`Subscription::feed_guard`].
pub struct FeedGuard(Arc<AtomicUsize>);

impl Drop for FeedGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// [`MAX_CLIENTS`] are connected already.
#[derive(Debug)]
pub struct Full;

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        if let Some(i) = state.clients.iter().position(|c| c.id == self.id) {
            let client = state.clients.swap_remove(i);
            state.departed_dropped += client.dropped;
        }
    }
}

/// `/health`'s answer.
#[derive(Debug, Serialize)]
pub struct Health {
    /// The stream has started and not yet ended.
    pub running: bool,
    pub source: Option<String>,
    pub uptime_s: f64,
    /// Windows classified or reported as silence so far.
    pub windows: u64,
    pub emotions: u64,
    pub silences: u64,
    /// Utterance events so far.
    pub utterances: u64,
    pub dropped: Dropped,
    /// How long the line being written has waited for stdout's reader, seconds (0: none is).
    /// The network carries stdout's lines, in order, once written: while stdout's reader takes
    /// nothing, no client gets anything new either.
    pub stdout_waiting_s: f64,
    pub clients: Vec<ClientHealth>,
    /// Clients connected since the start, including those that have left.
    pub clients_served: u64,
}

#[derive(Debug, Serialize)]
pub struct Dropped {
    /// Windows the chain dropped because a later stage (stdout's reader) was behind.
    pub windows: u64,
    /// Seconds of device audio dropped before resampling.
    pub audio_s: f64,
    /// Items dropped for slow clients, all clients together (those that left included).
    pub client_items: u64,
}

#[derive(Debug, Serialize)]
pub struct ClientHealth {
    pub id: u64,
    pub kind: Kind,
    pub peer: String,
    pub connected_s: f64,
    /// Items queued for it so far.
    pub sent: u64,
    /// Items its queue could not take.
    pub dropped: u64,
}

impl Hub {
    /// A hub whose clients reach it at `address` (`http://HOST:PORT/`).
    pub fn new(address: String) -> Hub {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Hub {
            address,
            run: format!("{:x}", (nanos as u64) ^ u64::from(std::process::id()) << 32),
            started: Instant::now(),
            state: Mutex::new(State::default()),
            counters: OnceLock::new(),
            feeds: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The SSE id of event `seq`: `RUN-SEQ`.
    pub fn event_id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.run)
    }

    /// The event a reconnecting client last saw, from its `Last-Event-ID`; `None` for another
    /// run's id (a page left open while serd restarted) or one not given out yet.
    pub fn seen(&self, last_event_id: &str) -> Option<u64> {
        let (run, seq) = last_event_id.trim().split_once('-')?;
        let seq: u64 = seq.parse().ok()?;
        (run == self.run && seq < self.lock().next_seq).then_some(seq)
    }

    /// The count of WebSocket feeds still delivering.
    pub fn websocket_feeds(&self) -> Arc<AtomicUsize> {
        self.feeds.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only counts half-updated: carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new client. It first gets the `start` event and the backlog (those after
    /// `after_seq`, when a reconnecting client says what it last saw), then what comes.
    pub fn subscribe(
        self: &Arc<Hub>,
        kind: Kind,
        peer: String,
        after_seq: Option<u64>,
    ) -> Result<Subscription, Full> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut state = self.lock();
        if state.clients.len() >= MAX_CLIENTS {
            return Err(Full);
        }
        let id = state.next_client;
        state.next_client += 1;
        state.clients_served += 1;
        let seen = |seq: u64| after_seq.is_some_and(|after| seq <= after);
        let mut pending = VecDeque::with_capacity(state.backlog.len() + 1);
        if let Some(start) = &state.start {
            if !seen(0) {
                pending.push_back(Item::Event {
                    seq: 0,
                    line: start.clone(),
                });
            }
        }
        for (seq, line) in &state.backlog {
            if !seen(*seq) {
                pending.push_back(Item::Event {
                    seq: *seq,
                    line: line.clone(),
                });
            }
        }
        // After the end, nothing more will come: the queue is closed.
        if !state.ended {
            state.clients.push(Client {
                id,
                kind,
                peer,
                since: Instant::now(),
                tx,
                sent: 0,
                dropped: 0,
            });
        }
        drop(state);
        Ok(Subscription {
            hub: self.clone(),
            id,
            pending,
            rx,
            last_seq: after_seq,
        })
    }

    /// Queues an item for every client that wants it, counting what a full queue refuses.
    fn publish(state: &mut State, item: &Item) {
        let mut departed = 0;
        state.clients.retain_mut(|client| {
            if let Item::Level(_) = item {
                // Levels are transient: skipped, not counted, when events could be crowded out.
                if client.kind == Kind::WebSocket || client.tx.capacity() <= QUEUE / 2 {
                    return true;
                }
            }
            match client.tx.try_send(item.clone()) {
                Ok(()) => {
                    client.sent += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    client.dropped += 1;
                    true
                }
                // The client's task is gone; its Subscription's drop may not have run yet.
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    departed += client.dropped;
                    false
                }
            }
        });
        state.departed_dropped += departed;
    }

    pub fn health(&self) -> Health {
        let counters = self.counters.get();
        let state = self.lock();
        Health {
            running: state.start.is_some() && !state.ended,
            source: state.source.clone(),
            uptime_s: self.started.elapsed().as_secs_f64(),
            windows: state.emotions + state.silences,
            emotions: state.emotions,
            silences: state.silences,
            utterances: state.utterances,
            dropped: Dropped {
                windows: counters.map_or(0, |c| c.windows_dropped()),
                audio_s: counters.map_or(0.0, |c| c.audio_dropped_s()),
                client_items: state.departed_dropped
                    + state.clients.iter().map(|c| c.dropped).sum::<u64>(),
            },
            stdout_waiting_s: counters.map_or(0.0, |c| c.stdout_waiting_s()),
            clients: state
                .clients
                .iter()
                .map(|c| ClientHealth {
                    id: c.id,
                    kind: c.kind,
                    peer: c.peer.clone(),
                    connected_s: c.since.elapsed().as_secs_f64(),
                    sent: c.sent,
                    dropped: c.dropped,
                })
                .collect(),
            clients_served: state.clients_served,
        }
    }

    /// Ends every client's feed once its queue is delivered (the stream is over, or serd stops).
    pub fn close(&self) {
        self.lock().end_feeds();
    }
}

impl Tap for Hub {
    fn address(&self) -> String {
        self.address.clone()
    }

    fn attach(&self, counters: Arc<Counters>) {
        let _ = self.counters.set(counters);
    }

    fn event(&self, event: &Event, line: &str) {
        let line: Arc<str> = line.into();
        let mut state = self.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        match event {
            Event::Start(start) => {
                state.start = Some(line.clone());
                state.source = Some(start.source.clone());
            }
            Event::Emotion(_) => state.emotions += 1,
            Event::Silence(_) => state.silences += 1,
            Event::Utterance(_) => state.utterances += 1,
            Event::End(_) => state.end = Some((seq, line.clone())),
        }
        // Everything after `start` is kept for late clients.
        if !matches!(event, Event::Start(_)) {
            if state.backlog.len() == BACKLOG {
                state.backlog.pop_front();
            }
            state.backlog.push_back((seq, line.clone()));
        }
        Hub::publish(&mut state, &Item::Event { seq, line });
        if state.end.is_some() {
            state.end_feeds();
        }
    }

    fn level(&self, t: f64, dbfs: f32) {
        let item = Item::Level(format!(r#"{{"t":{t:.1},"dbfs":{dbfs:.1}}}"#).into());
        let mut state = self.lock();
        Hub::publish(&mut state, &item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::events::End;

    fn silence(t: f64) -> (Event, String) {
        let e = Event::Silence(crate::pipeline::events::SilenceEvent::new(t, t + 2.0, 0.0));
        let line = e.to_line();
        (e, line)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn drain(sub: &mut Subscription) -> Vec<Item> {
        block_on(async {
            let mut got = Vec::new();
            while let Some(item) = sub.next().await {
                got.push(item);
            }
            got
        })
    }

    #[test]
    fn a_client_that_never_reads_loses_only_its_own_items_and_the_publisher_never_waits() {
        let hub = Arc::new(Hub::new("http://x/".into()));
        let mut reader = hub.subscribe(Kind::Sse, "a".into(), None).unwrap();
        let stuck = hub.subscribe(Kind::Sse, "b".into(), None).unwrap();
        let n = QUEUE * 3;
        let mut got = Vec::new();
        for i in 0..n {
            let (e, line) = silence(i as f64);
            hub.event(&e, &line);
            // The reader keeps up; the stuck client never reads.
            got.push(block_on(reader.next()).unwrap());
        }
        let health = hub.health();
        let by_peer = |p: &str| health.clients.iter().find(|c| c.peer == p).unwrap();
        assert_eq!((by_peer("a").sent, by_peer("a").dropped), (n as u64, 0));
        assert_eq!(
            (by_peer("b").sent, by_peer("b").dropped),
            (QUEUE as u64, (n - QUEUE) as u64)
        );
        assert_eq!(health.dropped.client_items, (n - QUEUE) as u64);
        assert_eq!(health.silences, n as u64);
        let seqs: Vec<u64> = got
            .iter()
            .map(|i| match i {
                Item::Event { seq, .. } => *seq,
                Item::Level(_) => panic!("no levels were published"),
            })
            .collect();
        assert_eq!(seqs, (0..n as u64).collect::<Vec<_>>());
        // A client that leaves takes its queue with it; its drops stay counted.
        drop(stuck);
        let health = hub.health();
        assert_eq!(health.clients.len(), 1);
        assert_eq!(health.dropped.client_items, (n - QUEUE) as u64);
        assert_eq!(health.clients_served, 2);
    }

    #[test]
    fn late_clients_get_start_and_backlog_and_websockets_get_no_levels() {
        let hub = Arc::new(Hub::new("http://x/".into()));
        let start = Event::Start(crate::pipeline::events::Start {
            serve: Some("http://x/".into()),
            ..crate::pipeline::events::Start::example()
        });
        hub.event(&start, &start.to_line());
        for i in 0..BACKLOG + 5 {
            let (e, line) = silence(i as f64);
            hub.event(&e, &line);
        }
        let mut sse = hub.subscribe(Kind::Sse, "s".into(), None).unwrap();
        let mut ws = hub.subscribe(Kind::WebSocket, "w".into(), None).unwrap();
        // A reconnecting client that saw up to event 300 gets the rest only.
        let mut again = hub.subscribe(Kind::Sse, "r".into(), Some(300)).unwrap();
        hub.level(1.0, -20.0);
        let end = Event::End(End::default());
        hub.event(&end, &end.to_line());
        assert!(!hub.health().running);

        let sse = drain(&mut sse);
        assert_eq!(sse.len(), 1 + BACKLOG + 1 + 1);
        assert!(matches!(&sse[0], Item::Event { seq: 0, line } if line.contains("\"start\"")));
        // The oldest five silences fell out of the backlog.
        assert!(matches!(&sse[1], Item::Event { seq: 6, .. }));
        assert_eq!(
            sse[1 + BACKLOG],
            Item::Level(r#"{"t":1.0,"dbfs":-20.0}"#.into())
        );
        assert!(matches!(&sse[2 + BACKLOG], Item::Event { line, .. } if line.contains("\"end\"")));
        let ws = drain(&mut ws);
        assert_eq!(ws.len(), 1 + BACKLOG + 1);
        assert!(ws.iter().all(|i| matches!(i, Item::Event { .. })));
        let again: Vec<u64> = drain(&mut again)
            .iter()
            .filter_map(|i| match i {
                Item::Event { seq, .. } => Some(*seq),
                Item::Level(_) => None,
            })
            .collect();
        assert_eq!(again, (301..=BACKLOG as u64 + 6).collect::<Vec<_>>());
        // After the end, a new client gets the backlog and its feed ends.
        let mut late = hub.subscribe(Kind::WebSocket, "l".into(), None).unwrap();
        assert_eq!(drain(&mut late).len(), 1 + BACKLOG);
    }

    #[test]
    fn the_end_comes_last_even_to_a_full_queue_and_levels_never_crowd_out_events() {
        let hub = Arc::new(Hub::new("http://x/".into()));
        let mut slow = hub.subscribe(Kind::Sse, "slow".into(), None).unwrap();
        // Levels stop at half the queue; events fill the rest, then are dropped.
        for i in 0..QUEUE {
            hub.level(i as f64, -30.0);
        }
        for i in 0..QUEUE {
            let (e, line) = silence(i as f64);
            hub.event(&e, &line);
        }
        let end = Event::End(End::default());
        hub.event(&end, &end.to_line());
        let got = drain(&mut slow);
        let levels = got.iter().filter(|i| matches!(i, Item::Level(_))).count();
        assert_eq!(levels, QUEUE / 2);
        assert_eq!(got.len(), QUEUE + 1, "a full queue, then the end");
        assert!(
            matches!(got.last(), Some(Item::Event { line, .. }) if line.contains("\"end\"")),
            "{:?}",
            got.last()
        );
        assert!(hub.health().dropped.client_items > 0);
    }

    #[test]
    fn reconnecting_clients_are_known_by_run_and_clients_are_capped() {
        let hub = Arc::new(Hub::new("http://x/".into()));
        let other = Hub::new("http://x/".into());
        for i in 0..3 {
            let (e, line) = silence(i as f64);
            hub.event(&e, &line);
        }
        assert_eq!(hub.seen(&hub.event_id(1)), Some(1));
        // Not given out yet, or given out by another run of serd.
        assert_eq!(hub.seen(&hub.event_id(3)), None);
        assert_ne!(hub.event_id(1), other.event_id(1));
        assert_eq!(hub.seen(&other.event_id(1)), None);
        assert_eq!(hub.seen("garbage"), None);

        let clients: Vec<Subscription> = (0..MAX_CLIENTS)
            .map(|i| hub.subscribe(Kind::Sse, i.to_string(), None).unwrap())
            .collect();
        assert!(hub
            .subscribe(Kind::WebSocket, "one more".into(), None)
            .is_err());
        drop(clients);
        assert!(hub
            .subscribe(Kind::WebSocket, "room again".into(), None)
            .is_ok());
    }
}
