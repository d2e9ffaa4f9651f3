//! [`Subscription`]: the stream of messages one subscribe call receives.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

use crate::bus::Message;
use crate::error::UnsubscribeError;

/// The messages of one subscription, as a [`Stream`].
///
/// The stream ends when the bus is closed (after the messages it already holds) or when
/// the transport gives up. Dropping the subscription unsubscribes; so does
/// [`unsubscribe`](Self::unsubscribe), which also reports transport errors.
pub struct Subscription {
    subject: String,
    queue_group: Option<String>,
    backend: Backend,
}

/// The transport-specific part of a subscription.
pub(crate) enum Backend {
    Memory(crate::memory::MemoryReceiver),
    Nats(crate::nats::NatsReceiver),
    Custom(Pin<Box<dyn Stream<Item = Message> + Send + 'static>>),
}

impl Subscription {
    pub(crate) fn new(subject: &str, queue_group: Option<&str>, backend: Backend) -> Self {
        Self {
            subject: subject.to_owned(),
            queue_group: queue_group.map(ToOwned::to_owned),
            backend,
        }
    }

    /// Wraps any stream of messages, for [`Bus`](crate::Bus) implementations outside
    /// this crate. Dropping the subscription drops the stream.
    pub fn from_stream(
        subject: &str,
        queue_group: Option<&str>,
        stream: impl Stream<Item = Message> + Send + 'static,
    ) -> Self {
        Self::new(subject, queue_group, Backend::Custom(Box::pin(stream)))
    }

    /// The subject (pattern) subscribed to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The queue group, if any.
    pub fn queue_group(&self) -> Option<&str> {
        self.queue_group.as_deref()
    }

    /// How many messages were dropped because this subscriber's buffer was full, if the
    /// transport counts them per subscription ([`MemoryBus`](crate::MemoryBus) does;
    /// `NatsBus` logs slow-consumer events instead and returns `None`).
    pub fn dropped(&self) -> Option<u64> {
        match &self.backend {
            Backend::Memory(receiver) => Some(receiver.dropped()),
            Backend::Nats(_) | Backend::Custom(_) => None,
        }
    }

    /// Unsubscribes now and reports whether the transport accepted it. Messages still
    /// buffered are discarded.
    pub async fn unsubscribe(self) -> Result<(), UnsubscribeError> {
        match self.backend {
            Backend::Memory(receiver) => {
                drop(receiver);
                Ok(())
            }
            Backend::Nats(receiver) => receiver.unsubscribe(&self.subject).await,
            Backend::Custom(stream) => {
                drop(stream);
                Ok(())
            }
        }
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        match &mut self.backend {
            Backend::Memory(receiver) => receiver.poll_recv(cx),
            Backend::Nats(receiver) => receiver.poll_recv(cx),
            Backend::Custom(stream) => stream.as_mut().poll_next(cx),
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Nats(_) => "nats",
            Backend::Custom(_) => "custom",
        };
        f.debug_struct("Subscription")
            .field("subject", &self.subject)
            .field("queue_group", &self.queue_group)
            .field("backend", &backend)
            .finish()
    }
}
