//! The subscription table of a `MemoryBus` and fan-out over it.
//!
//! Exact subjects live in a hash map (one lookup per publish). Wildcard patterns are
//! indexed by their first token when it is literal (`loom.*.x` under `loom`), so a
//! publish only tests the patterns that can match; patterns starting with a wildcard are
//! tested on every publish.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::inbox::Inbox;
use crate::bus::Message;
use crate::subject::{is_wildcard, matches};

/// How often a slow subscriber's drops are logged at most (the first drop always is).
pub(super) const SLOW_CONSUMER_WARN_INTERVAL: Duration = Duration::from_secs(5);

/// Sentinel for "never warned" in [`SubStats::last_warn_ms`].
const NEVER: u64 = u64::MAX;

/// One subscription in the table.
pub(super) struct Sub {
    pub(super) id: u64,
    pub(super) sink: Sink,
}

/// Where a subscription's messages go.
pub(super) enum Sink {
    /// A subscriber's bounded buffer.
    Channel {
        tx: mpsc::Sender<Message>,
        stats: Arc<SubStats>,
    },
    /// The bus's multiplexed reply inbox; delivery completes a pending request.
    Inbox(Arc<Inbox>),
}

/// What a subscriber and the table share about one subscription.
pub(super) struct SubStats {
    pub(super) subject: Box<str>,
    pub(super) queue_group: Option<Box<str>>,
    pub(super) dropped: AtomicU64,
    /// Milliseconds since the bus started at the last drop warning, or [`NEVER`].
    last_warn_ms: AtomicU64,
}

impl SubStats {
    pub(super) fn new(subject: &str, queue_group: Option<&str>) -> Self {
        Self {
            subject: subject.into(),
            queue_group: queue_group.map(Into::into),
            dropped: AtomicU64::new(0),
            last_warn_ms: AtomicU64::new(NEVER),
        }
    }
}

/// Counts and logs messages dropped because a subscriber's buffer was full.
pub(super) struct DropLog {
    started: Instant,
    capacity: usize,
    pub(super) total: AtomicU64,
}

impl DropLog {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            started: Instant::now(),
            capacity,
            total: AtomicU64::new(0),
        }
    }

    fn record(&self, stats: &SubStats) {
        let dropped = stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(NEVER - 1);
        let last = stats.last_warn_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(SLOW_CONSUMER_WARN_INTERVAL.as_millis()).unwrap_or(0);
        let due = last == NEVER || now.saturating_sub(last) >= interval;
        if due
            && stats
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                subject = %stats.subject,
                queue_group = stats.queue_group.as_deref().unwrap_or(""),
                capacity = self.capacity,
                dropped,
                "Subscriber is too slow; dropping messages that do not fit its buffer."
            );
        }
    }
}

/// A message a sink did not take, handed back for the next queue-group member.
struct Refused {
    message: Message,
    full: bool,
}

impl Sub {
    fn try_deliver(&self, message: Message) -> Result<(), Refused> {
        match &self.sink {
            Sink::Channel { tx, .. } => tx.try_send(message).map_err(|err| match err {
                TrySendError::Full(message) => Refused {
                    message,
                    full: true,
                },
                TrySendError::Closed(message) => Refused {
                    message,
                    full: false,
                },
            }),
            Sink::Inbox(inbox) => {
                inbox.deliver(message);
                Ok(())
            }
        }
    }

    fn stats(&self) -> Option<&SubStats> {
        match &self.sink {
            Sink::Channel { stats, .. } => Some(stats),
            Sink::Inbox(_) => None,
        }
    }

    fn is_channel(&self) -> bool {
        matches!(self.sink, Sink::Channel { .. })
    }
}

/// The subscriptions of one subject pattern.
#[derive(Default)]
pub(super) struct Entry {
    plain: Vec<Sub>,
    groups: Vec<Group>,
}

struct Group {
    name: Box<str>,
    members: Vec<Sub>,
    /// Round-robin position, advanced on every message.
    next: AtomicUsize,
}

impl Entry {
    fn add(&mut self, queue_group: Option<&str>, sub: Sub) {
        match queue_group {
            None => self.plain.push(sub),
            Some(name) => match self.groups.iter_mut().find(|g| &*g.name == name) {
                Some(group) => group.members.push(sub),
                None => self.groups.push(Group {
                    name: name.into(),
                    members: vec![sub],
                    next: AtomicUsize::new(0),
                }),
            },
        }
    }

    /// Removes subscription `id`; returns it if found.
    fn remove(&mut self, queue_group: Option<&str>, id: u64) -> Option<Sub> {
        match queue_group {
            None => {
                let index = self.plain.iter().position(|s| s.id == id)?;
                Some(self.plain.remove(index))
            }
            Some(name) => {
                let group_index = self.groups.iter().position(|g| &*g.name == name)?;
                let group = &mut self.groups[group_index];
                let index = group.members.iter().position(|s| s.id == id)?;
                let sub = group.members.remove(index);
                if group.members.is_empty() {
                    self.groups.remove(group_index);
                }
                Some(sub)
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.groups.is_empty()
    }
}

struct WildEntry {
    pattern: Box<str>,
    entry: Entry,
}

/// Every live subscription of a bus.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) closed: bool,
    exact: HashMap<Box<str>, Entry>,
    wild_by_first: HashMap<Box<str>, Vec<WildEntry>>,
    wild_leading: Vec<WildEntry>,
    /// Subscriber (channel) subscriptions, not counting the reply inbox.
    subscriber_count: usize,
    /// Round-robin position for queue groups whose members span several patterns.
    merged_next: AtomicUsize,
}

/// The first token of a subject or pattern.
fn first_token(subject: &str) -> &str {
    subject.split_once('.').map_or(subject, |(first, _)| first)
}

impl Registry {
    /// Adds a subscription to a valid pattern. Ignored once the bus is closed.
    pub(super) fn insert(&mut self, pattern: &str, queue_group: Option<&str>, sub: Sub) {
        if self.closed {
            return;
        }
        if sub.is_channel() {
            self.subscriber_count += 1;
        }
        let entry = if !is_wildcard(pattern) {
            self.exact.entry(pattern.into()).or_default()
        } else {
            let first = first_token(pattern);
            let list = if first == "*" || first == ">" {
                &mut self.wild_leading
            } else {
                self.wild_by_first.entry(first.into()).or_default()
            };
            match list.iter().position(|w| &*w.pattern == pattern) {
                Some(index) => &mut list[index].entry,
                None => {
                    list.push(WildEntry {
                        pattern: pattern.into(),
                        entry: Entry::default(),
                    });
                    let last = list.len() - 1;
                    &mut list[last].entry
                }
            }
        };
        entry.add(queue_group, sub);
    }

    /// Removes subscription `id` and returns it; entries left empty are removed too.
    pub(super) fn remove(
        &mut self,
        pattern: &str,
        queue_group: Option<&str>,
        id: u64,
    ) -> Option<Sub> {
        let removed = if !is_wildcard(pattern) {
            let entry = self.exact.get_mut(pattern)?;
            let removed = entry.remove(queue_group, id);
            if entry.is_empty() {
                self.exact.remove(pattern);
            }
            removed
        } else {
            let first = first_token(pattern);
            let leading = first == "*" || first == ">";
            let list = if leading {
                &mut self.wild_leading
            } else {
                self.wild_by_first.get_mut(first)?
            };
            let index = list.iter().position(|w| &*w.pattern == pattern)?;
            let removed = list[index].entry.remove(queue_group, id);
            if list[index].entry.is_empty() {
                list.swap_remove(index);
            }
            if !leading && list.is_empty() {
                self.wild_by_first.remove(first);
            }
            removed
        };
        if removed.as_ref().is_some_and(Sub::is_channel) {
            self.subscriber_count -= 1;
        }
        removed
    }

    /// Marks the table closed and empties it; dropping the senders ends every
    /// subscription once it has yielded what it holds.
    pub(super) fn close(&mut self) {
        self.closed = true;
        self.exact.clear();
        self.wild_by_first.clear();
        self.wild_leading.clear();
        self.subscriber_count = 0;
    }

    pub(super) fn subscriber_count(&self) -> usize {
        self.subscriber_count
    }

    /// The entries whose pattern matches the literal `subject`.
    fn matching<'a>(&'a self, subject: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        let by_first = self
            .wild_by_first
            .get(first_token(subject))
            .into_iter()
            .flatten();
        self.exact.get(subject).into_iter().chain(
            by_first
                .chain(self.wild_leading.iter())
                .filter(move |w| matches(&w.pattern, subject))
                .map(|w| &w.entry),
        )
    }

    /// Delivers a message to every plain subscriber and to one member of each queue
    /// group whose pattern matches `subject`. Returns how many subscriptions showed
    /// interest (0 means nobody listens).
    pub(super) fn deliver(
        &self,
        subject: &str,
        reply: Option<&str>,
        payload: &Bytes,
        drops: &DropLog,
    ) -> usize {
        let make = || Message {
            subject: subject.to_owned(),
            reply: reply.map(str::to_owned),
            payload: payload.clone(),
        };
        let mut interest = 0;
        let mut grouped: Option<&Entry> = None;
        let mut grouped_entries = 0;
        for entry in self.matching(subject) {
            for sub in &entry.plain {
                interest += 1;
                if let Err(refused) = sub.try_deliver(make()) {
                    if refused.full {
                        if let Some(stats) = sub.stats() {
                            drops.record(stats);
                        }
                    }
                }
            }
            if !entry.groups.is_empty() {
                interest += entry.groups.len();
                grouped_entries += 1;
                grouped.get_or_insert(entry);
            }
        }
        match (grouped_entries, grouped) {
            (1, Some(entry)) => {
                // The common case: every queue subscriber uses the same pattern.
                for group in &entry.groups {
                    let start = group.next.fetch_add(1, Ordering::Relaxed);
                    deliver_to_one(&group.members, start, make(), drops);
                }
            }
            (0, _) | (_, None) => {}
            _ => self.deliver_merged(subject, &make, drops),
        }
        interest
    }

    /// Queue groups are formed by name across every matching pattern (as in NATS), so
    /// members subscribed with different patterns share one round robin.
    fn deliver_merged(&self, subject: &str, make: &dyn Fn() -> Message, drops: &DropLog) {
        let mut members: Vec<(&str, &Sub)> = Vec::new();
        for entry in self.matching(subject) {
            for group in &entry.groups {
                members.extend(group.members.iter().map(|sub| (&*group.name, sub)));
            }
        }
        members.sort_by(|a, b| a.0.cmp(b.0));
        for run in members.chunk_by(|a, b| a.0 == b.0) {
            let subs: Vec<&Sub> = run.iter().map(|(_, sub)| *sub).collect();
            let start = self.merged_next.fetch_add(1, Ordering::Relaxed);
            deliver_to_one(&subs, start, make(), drops);
        }
    }
}

/// Gives `message` to one member, starting at `start` and skipping members whose
/// buffer is full or gone. If every buffer is full the message is dropped and counted
/// against the member whose turn it was.
fn deliver_to_one<S: Borrow<Sub>>(
    members: &[S],
    start: usize,
    mut message: Message,
    drops: &DropLog,
) {
    let n = members.len();
    let mut first_full: Option<&Sub> = None;
    for i in 0..n {
        let sub = members[(start.wrapping_add(i)) % n].borrow();
        match sub.try_deliver(message) {
            Ok(()) => return,
            Err(refused) => {
                if refused.full && first_full.is_none() {
                    first_full = Some(sub);
                }
                message = refused.message;
            }
        }
    }
    if let Some(stats) = first_full.and_then(Sub::stats) {
        drops.record(stats);
    }
}
