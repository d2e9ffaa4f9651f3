//! [`MemoryBus`]: an in-process bus with NATS semantics, the embedded default.
//!
//! * **Subjects** follow NATS: exact tokens, `*` for one token, `>` for one or more
//!   trailing tokens ([`crate::subject`]).
//! * **Fan-out:** every plain subscriber whose pattern matches gets each message. Queue
//!   subscribers are grouped by queue name across all matching patterns, and each group
//!   delivers each message to exactly one member, round-robin, skipping members whose
//!   buffer is full when another member has room.
//! * **Buffers** are bounded: [`DEFAULT_SUBSCRIPTION_CAPACITY`] messages per
//!   subscription unless [`MemoryBus::with_capacity`] says otherwise.
//! * **Slow subscribers:** like a NATS server facing a slow consumer, a message that does
//!   not fit in a subscriber's buffer is *dropped for that subscriber*, counted
//!   ([`Subscription::dropped`], [`MemoryBus::dropped_total`]) and logged at WARN (the
//!   first drop, then at most every few seconds per subscription). Publishers never
//!   block. The reason: code that relied on the memory bus pushing back on publishers
//!   would behave differently, and wrongly, once deployed on NATS.
//! * **No subscriber:** publishing is a silent no-op.
//! * **Unsubscribe** (drop or [`Subscription::unsubscribe`]) removes the table entry.
//! * **Request/reply** uses one multiplexed reply subscription per bus
//!   (`_INBOX.<uuid>.*`, created on the first request) and fails with
//!   [`RequestErrorKind::NoResponders`] at once when no subscription matches.
//! * **Close** rejects later operations; existing subscriptions end after yielding what
//!   they already hold; waiting requests fail with [`RequestErrorKind::Closed`].
//!
//! `MemoryBus` is a cheap [`Clone`] handle: clones share one bus, and closing any of
//! them closes it.

mod inbox;
mod registry;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use self::inbox::Inbox;
use self::registry::{DropLog, Registry, Sink, Sub, SubStats};
use crate::bus::{Bus, BusState, Message};
use crate::error::{
    BusClosed, CloseError, PublishError, RequestError, RequestErrorKind, SubscribeError,
};
use crate::subject::{is_valid_queue_group, validate_publish_subject, validate_subscribe_subject};
use crate::subscription::{Backend, Subscription};

/// Messages a subscription buffers before further messages are dropped for it, when the
/// bus is built with [`MemoryBus::new`]. The same as async-nats's default subscription
/// capacity, so both buses start dropping at the same depth.
pub const DEFAULT_SUBSCRIPTION_CAPACITY: usize = 65_536;

/// The largest capacity tokio's bounded channel accepts.
const MAX_SUBSCRIPTION_CAPACITY: usize = usize::MAX >> 3;

/// An in-process message bus with NATS semantics; see the [module docs](self).
///
/// ```
/// use std::time::Duration;
///
/// use futures::StreamExt;
/// use loom_bus::{Bus, MemoryBus};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bus = MemoryBus::new();
/// let mut workers = bus.subscribe("loom.tasks.*", Some("workers")).await?;
/// bus.publish("loom.tasks.summarize", "hello".into()).await?;
/// let message = workers.next().await.ok_or("subscription ended")?;
/// assert_eq!(message.subject, "loom.tasks.summarize");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

struct Inner {
    registry: RwLock<Registry>,
    closed: AtomicBool,
    capacity: usize,
    next_id: AtomicU64,
    inbox: OnceLock<Arc<Inbox>>,
    drops: DropLog,
}

impl MemoryBus {
    /// A bus whose subscriptions buffer [`DEFAULT_SUBSCRIPTION_CAPACITY`] messages.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_SUBSCRIPTION_CAPACITY)
    }

    /// A bus whose subscriptions buffer `capacity` messages each (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_SUBSCRIPTION_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                registry: RwLock::new(Registry::default()),
                closed: AtomicBool::new(false),
                capacity,
                next_id: AtomicU64::new(0),
                inbox: OnceLock::new(),
                drops: DropLog::new(capacity),
            }),
        }
    }

    /// The per-subscription buffer size.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Messages dropped so far because a subscriber's buffer was full, over all
    /// subscriptions.
    pub fn dropped_total(&self) -> u64 {
        self.inner.drops.total.load(Ordering::Relaxed)
    }

    /// Live subscriptions (not counting the internal reply inbox).
    pub fn subscription_count(&self) -> usize {
        self.inner.read_registry().subscriber_count()
    }

    /// Delivers a message; returns how many subscriptions showed interest.
    fn publish_inner(
        &self,
        subject: &str,
        reply: Option<&str>,
        payload: Bytes,
    ) -> Result<usize, PublishError> {
        validate_publish_subject(subject)?;
        if let Some(reply) = reply {
            validate_publish_subject(reply)?;
        }
        self.deliver_validated(subject, reply, payload)
    }

    /// [`publish_inner`](Self::publish_inner) for subjects already known to be valid.
    fn deliver_validated(
        &self,
        subject: &str,
        reply: Option<&str>,
        payload: Bytes,
    ) -> Result<usize, PublishError> {
        let registry = self.inner.read_registry();
        if registry.closed {
            return Err(PublishError::Closed {
                subject: subject.to_owned(),
            });
        }
        Ok(registry.deliver(subject, reply, &payload, &self.inner.drops))
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBus")
            .field("capacity", &self.inner.capacity)
            .field("state", &self.state())
            .field("subscriptions", &self.subscription_count())
            .finish()
    }
}

impl Inner {
    fn read_registry(&self) -> RwLockReadGuard<'_, Registry> {
        // Nothing panics while holding this lock, so a poisoned table is consistent.
        self.registry.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_registry(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The reply inbox, subscribed on first use.
    fn inbox(&self) -> &Arc<Inbox> {
        self.inbox.get_or_init(|| {
            let inbox = Arc::new(Inbox::new());
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            self.write_registry().insert(
                &inbox.pattern(),
                None,
                Sub {
                    id,
                    sink: Sink::Inbox(Arc::clone(&inbox)),
                },
            );
            inbox
        })
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), PublishError> {
        self.publish_inner(subject, None, payload).map(drop)
    }

    async fn publish_with_reply(
        &self,
        subject: &str,
        reply: &str,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        self.publish_inner(subject, Some(reply), payload).map(drop)
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue_group: Option<&str>,
    ) -> Result<Subscription, SubscribeError> {
        validate_subscribe_subject(subject)?;
        if let Some(queue_group) = queue_group {
            if !is_valid_queue_group(queue_group) {
                return Err(SubscribeError::InvalidQueueGroup {
                    subject: subject.to_owned(),
                    queue_group: queue_group.to_owned(),
                });
            }
        }
        let (tx, rx) = mpsc::channel(self.inner.capacity);
        let stats = Arc::new(SubStats::new(subject, queue_group));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut registry = self.inner.write_registry();
            if registry.closed {
                return Err(SubscribeError::Closed {
                    subject: subject.to_owned(),
                });
            }
            let sink = Sink::Channel {
                tx,
                stats: Arc::clone(&stats),
            };
            registry.insert(subject, queue_group, Sub { id, sink });
        }
        let receiver = MemoryReceiver {
            rx,
            registration: Registration {
                bus: Arc::downgrade(&self.inner),
                id,
                stats,
            },
        };
        Ok(Subscription::new(
            subject,
            queue_group,
            Backend::Memory(receiver),
        ))
    }

    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        if let Err(err) = validate_publish_subject(subject) {
            return Err(
                RequestError::new(RequestErrorKind::InvalidSubject, subject, timeout)
                    .with_source(err),
            );
        }
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(
                RequestError::new(RequestErrorKind::Closed, subject, timeout)
                    .with_source(BusClosed),
            );
        }
        let inbox = self.inner.inbox();
        let (token, reply, rx) = inbox.register();
        // Forgets the waiter however this future ends, including when it is dropped.
        let _pending = PendingGuard { inbox, token };
        // The subject was validated above and the reply subject is ours.
        match self.deliver_validated(subject, Some(&reply), payload) {
            Ok(0) => {
                return Err(RequestError::new(
                    RequestErrorKind::NoResponders,
                    subject,
                    timeout,
                ));
            }
            Ok(_) => {}
            Err(PublishError::Closed { .. }) => {
                return Err(
                    RequestError::new(RequestErrorKind::Closed, subject, timeout)
                        .with_source(BusClosed),
                );
            }
            Err(err) => {
                return Err(
                    RequestError::new(RequestErrorKind::Other, subject, timeout).with_source(err)
                );
            }
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(_)) => Err(
                RequestError::new(RequestErrorKind::Closed, subject, timeout)
                    .with_source(BusClosed),
            ),
            Err(_) => Err(RequestError::new(
                RequestErrorKind::TimedOut,
                subject,
                timeout,
            )),
        }
    }

    async fn flush(&self) -> Result<(), PublishError> {
        // Publishing is synchronous: once `publish` returned, the message is delivered.
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PublishError::Flush {
                source: Box::new(BusClosed),
            });
        }
        Ok(())
    }

    async fn close(&self) -> Result<(), CloseError> {
        {
            let mut registry = self.inner.write_registry();
            registry.close();
            self.inner.closed.store(true, Ordering::Release);
        }
        if let Some(inbox) = self.inner.inbox.get() {
            inbox.close();
        }
        Ok(())
    }

    fn state(&self) -> BusState {
        if self.inner.closed.load(Ordering::Acquire) {
            BusState::Closed
        } else {
            BusState::Connected
        }
    }
}

/// Removes a request's waiter from the inbox when the request ends in any way.
struct PendingGuard<'a> {
    inbox: &'a Inbox,
    token: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.inbox.cancel(self.token);
    }
}

/// The receiving half of a memory subscription.
pub(crate) struct MemoryReceiver {
    rx: mpsc::Receiver<Message>,
    registration: Registration,
}

impl MemoryReceiver {
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.registration.stats.dropped.load(Ordering::Relaxed)
    }
}

/// Removes the subscription from the table when the subscriber goes away.
struct Registration {
    bus: Weak<Inner>,
    id: u64,
    stats: Arc<SubStats>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(inner) = self.bus.upgrade() {
            let removed = inner.write_registry().remove(
                &self.stats.subject,
                self.stats.queue_group.as_deref(),
                self.id,
            );
            // Drop the sender outside the lock.
            drop(removed);
        }
    }
}
