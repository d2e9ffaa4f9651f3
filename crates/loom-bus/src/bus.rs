//! The [`Bus`] trait every transport implements, and the [`Message`] it carries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{CloseError, PublishError, RequestError, SubscribeError};
use crate::subscription::Subscription;

/// A message as delivered to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The subject it was published to (never a wildcard).
    pub subject: String,
    /// Where the publisher wants the answer, if anywhere.
    pub reply: Option<String>,
    /// The body, shared and cheap to clone.
    pub payload: Bytes,
}

/// The health of a bus, for `/health` endpoints and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BusState {
    /// Messages flow.
    Connected,
    /// The connection to the server is lost and the client is reconnecting; publishes
    /// are buffered (up to a limit) and subscriptions resume once it is back.
    Disconnected,
    /// [`Bus::close`] was called; every operation fails.
    Closed,
}

impl BusState {
    /// Whether messages flow right now.
    pub fn is_connected(self) -> bool {
        self == Self::Connected
    }
}

impl fmt::Display for BusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Closed => "closed",
        })
    }
}

/// A message bus with NATS semantics: subjects with `*`/`>` wildcards, queue groups,
/// request/reply, no delivery guarantee.
///
/// Object safe: hold it as `Arc<dyn Bus>`. Implementations are [`MemoryBus`] (one
/// process) and [`NatsBus`] (a NATS server); the same conformance suite runs against
/// both.
///
/// [`MemoryBus`]: crate::MemoryBus
/// [`NatsBus`]: crate::NatsBus
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `payload` to `subject`. Fire-and-forget: with no subscriber the message
    /// is dropped and this still succeeds.
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), PublishError>;

    /// Publishes `payload` to `subject` asking for answers on `reply`.
    async fn publish_with_reply(
        &self,
        subject: &str,
        reply: &str,
        payload: Bytes,
    ) -> Result<(), PublishError>;

    /// Subscribes to `subject` (wildcards allowed). With a `queue_group`, each message
    /// goes to exactly one member of the group instead of to every subscriber.
    ///
    /// Dropping the [`Subscription`] unsubscribes.
    async fn subscribe(
        &self,
        subject: &str,
        queue_group: Option<&str>,
    ) -> Result<Subscription, SubscribeError>;

    /// Sends `payload` to `subject` and waits at most `timeout` for the first reply.
    ///
    /// Fails with [`RequestErrorKind::NoResponders`](crate::RequestErrorKind::NoResponders)
    /// at once when nobody subscribes to `subject`.
    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, RequestError>;

    /// Waits until everything published and subscribed so far has reached the server
    /// (on NATS a round trip; on the in-process bus it already has), so that messages
    /// other connections publish afterwards reach this handle's new subscriptions.
    async fn flush(&self) -> Result<(), PublishError>;

    /// Drains and closes the bus: messages published before are delivered, existing
    /// subscriptions end after yielding what they already hold, and every later
    /// operation fails with a "closed" error. Closing twice is a no-op.
    async fn close(&self) -> Result<(), CloseError>;

    /// The current connection state.
    fn state(&self) -> BusState;
}

#[async_trait]
impl<B: Bus + ?Sized> Bus for Arc<B> {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), PublishError> {
        (**self).publish(subject, payload).await
    }

    async fn publish_with_reply(
        &self,
        subject: &str,
        reply: &str,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        (**self).publish_with_reply(subject, reply, payload).await
    }

    async fn subscribe(
        &self,
        subject: &str,
        queue_group: Option<&str>,
    ) -> Result<Subscription, SubscribeError> {
        (**self).subscribe(subject, queue_group).await
    }

    async fn request(
        &self,
        subject: &str,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        (**self).request(subject, payload, timeout).await
    }

    async fn flush(&self) -> Result<(), PublishError> {
        (**self).flush().await
    }

    async fn close(&self) -> Result<(), CloseError> {
        (**self).close().await
    }

    fn state(&self) -> BusState {
        (**self).state()
    }
}
