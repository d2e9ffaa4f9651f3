//! Typed JSON over any [`Bus`]: publish serializable values, receive deserialized ones.
//!
//! Receiving follows the original loom-ai bus: a body that is not valid UTF-8 JSON, or
//! that does not deserialize into the expected type, is logged at WARN
//! ("Skipping malformed message.") and skipped; the stream goes on with the next message.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bus::{Bus, Message};
use crate::error::{PublishError, UnsubscribeError};
use crate::subscription::Subscription;

/// JSON helpers for every [`Bus`], including `dyn Bus` and `Arc<dyn Bus>`.
pub trait BusExt: Bus {
    /// Serializes `value` as JSON and publishes it to `subject`.
    ///
    /// The value is encoded before the returned future is first polled, so `T` need not
    /// be `Send` or `Sync`.
    fn publish_json<'a, T: Serialize + ?Sized>(
        &'a self,
        subject: &'a str,
        value: &T,
    ) -> impl Future<Output = Result<(), PublishJsonError>> + Send + 'a {
        let encoded = serde_json::to_vec(value);
        async move {
            let body = encoded.map_err(|source| PublishJsonError::Encode {
                subject: subject.to_owned(),
                source,
            })?;
            self.publish(subject, Bytes::from(body)).await?;
            Ok(())
        }
    }

    /// Like [`publish_json`](Self::publish_json), asking for answers on `reply`.
    fn publish_json_with_reply<'a, T: Serialize + ?Sized>(
        &'a self,
        subject: &'a str,
        reply: &'a str,
        value: &T,
    ) -> impl Future<Output = Result<(), PublishJsonError>> + Send + 'a {
        let encoded = serde_json::to_vec(value);
        async move {
            let body = encoded.map_err(|source| PublishJsonError::Encode {
                subject: subject.to_owned(),
                source,
            })?;
            self.publish_with_reply(subject, reply, Bytes::from(body))
                .await?;
            Ok(())
        }
    }
}

impl<B: Bus + ?Sized> BusExt for B {}

/// Publishing a value as JSON failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishJsonError {
    /// The value could not be serialized.
    #[error("cannot encode the message for '{subject}' as JSON")]
    Encode {
        /// The subject it was meant for.
        subject: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// Publishing the encoded body failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl Message {
    /// Deserializes the payload as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.payload)
    }
}

impl Subscription {
    /// Turns the subscription into a stream of `T`, skipping malformed bodies.
    pub fn json<T: DeserializeOwned>(self) -> JsonSubscription<T> {
        JsonSubscription {
            inner: self,
            _marker: PhantomData,
        }
    }

    /// Turns the subscription into a stream of `(Message, T)`, skipping malformed bodies;
    /// use it when the reply subject matters.
    pub fn json_messages<T: DeserializeOwned>(self) -> JsonMessages<T> {
        JsonMessages {
            inner: self,
            _marker: PhantomData,
        }
    }
}

/// A [`Subscription`] that yields deserialized `T`s; see [`Subscription::json`].
#[derive(Debug)]
pub struct JsonSubscription<T> {
    inner: Subscription,
    // `fn() -> T`: the stream is Send, Sync and Unpin whatever T is.
    _marker: PhantomData<fn() -> T>,
}

/// A [`Subscription`] that yields each message with its deserialized body; see
/// [`Subscription::json_messages`].
#[derive(Debug)]
pub struct JsonMessages<T> {
    inner: Subscription,
    _marker: PhantomData<fn() -> T>,
}

macro_rules! typed_subscription_methods {
    ($name:ident) => {
        impl<T> $name<T> {
            /// The subject (pattern) subscribed to.
            pub fn subject(&self) -> &str {
                self.inner.subject()
            }

            /// See [`Subscription::dropped`].
            pub fn dropped(&self) -> Option<u64> {
                self.inner.dropped()
            }

            /// The untyped subscription.
            pub fn into_inner(self) -> Subscription {
                self.inner
            }

            /// See [`Subscription::unsubscribe`].
            pub async fn unsubscribe(self) -> Result<(), UnsubscribeError> {
                self.inner.unsubscribe().await
            }
        }
    };
}

typed_subscription_methods!(JsonSubscription);
typed_subscription_methods!(JsonMessages);

impl<T: DeserializeOwned> Stream for JsonSubscription<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        loop {
            match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                Some(message) => {
                    if let Some(value) = decode(&message) {
                        return Poll::Ready(Some(value));
                    }
                }
                None => return Poll::Ready(None),
            }
        }
    }
}

impl<T: DeserializeOwned> Stream for JsonMessages<T> {
    type Item = (Message, T);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<(Message, T)>> {
        loop {
            match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                Some(message) => {
                    if let Some(value) = decode(&message) {
                        return Poll::Ready(Some((message, value)));
                    }
                }
                None => return Poll::Ready(None),
            }
        }
    }
}

fn decode<T: DeserializeOwned>(message: &Message) -> Option<T> {
    match serde_json::from_slice(&message.payload) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(
                subject = %message.subject,
                bytes = message.payload.len(),
                error = %error,
                "Skipping malformed message."
            );
            None
        }
    }
}
