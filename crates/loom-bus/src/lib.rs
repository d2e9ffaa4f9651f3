//! The message bus behind Loom.
//!
//! * [`Bus`]: the object-safe trait the rest of Loom talks to: publish, subscribe
//!   (optionally in a queue group), request/reply with a timeout, flush, drain-on-close
//!   and a connection [`BusState`] for `/health`.
//! * [`MemoryBus`]: an in-process bus with NATS semantics (`*`/`>` wildcards, queue
//!   groups, bounded buffers that drop for slow subscribers like a NATS server does,
//!   one multiplexed reply inbox), the embedded default.
//! * [`NatsBus`]: the same trait on a NATS server through `async-nats`, with reconnect
//!   forever and exponential backoff, TLS, credentials and drain on close.
//! * [`BusExt`]: typed JSON on any bus; [`Subscription::json`] skips (and logs)
//!   malformed bodies instead of failing.
//!
//! Both buses pass one conformance suite (`tests/conformance.rs`), so code written
//! against [`MemoryBus`] in tests behaves the same on NATS.
//!
//! # Delivery and slow subscribers
//!
//! There is no delivery guarantee: a message published while nobody subscribes is
//! dropped. Every subscription has a bounded buffer ([`DEFAULT_SUBSCRIPTION_CAPACITY`]
//! messages unless configured). When a subscriber falls behind and its buffer is full,
//! further messages are **dropped for that subscriber**, counted
//! ([`Subscription::dropped`] on the memory bus) and logged at WARN; publishers never
//! block. This is what a NATS server does with a slow consumer, and the memory bus does
//! the same on purpose: code that relied on in-process back-pressure would behave
//! differently once deployed on NATS. Consumers that must not lose work use a queue
//! group with enough members, or JetStream.
//!
//! ```
//! use std::time::Duration;
//!
//! use futures::StreamExt;
//! use loom_bus::{Bus, BusExt, MemoryBus, RequestErrorKind};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Task {
//!     task_id: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = MemoryBus::new();
//!
//! // Typed publish/subscribe through a queue group.
//! let mut tasks = bus.subscribe("loom.tasks.*", Some("workers")).await?.json::<Task>();
//! bus.publish_json("loom.tasks.summarize", &Task { task_id: "t1".into() }).await?;
//! assert_eq!(tasks.next().await, Some(Task { task_id: "t1".into() }));
//!
//! // Request/reply: a responder answers on the message's reply subject.
//! let mut service = bus.subscribe("svc.echo", None).await?;
//! let responder = bus.clone();
//! tokio::spawn(async move {
//!     while let Some(message) = service.next().await {
//!         if let Some(reply) = message.reply {
//!             let _ = responder.publish(&reply, message.payload).await;
//!         }
//!     }
//! });
//! let answer = bus.request("svc.echo", "ping".into(), Duration::from_secs(1)).await?;
//! assert_eq!(answer.payload, "ping");
//!
//! // Nobody listens: the caller learns it at once instead of waiting out the timeout.
//! let err = bus.request("svc.nobody", "ping".into(), Duration::from_secs(30)).await;
//! assert_eq!(err.map_err(|e| e.kind()).err(), Some(RequestErrorKind::NoResponders));
//! # Ok(())
//! # }
//! ```

mod bus;
mod error;
mod json;
pub mod memory;
pub mod nats;
pub mod subject;
mod subscription;

pub use bus::{Bus, BusState, Message};
pub use error::{
    BoxError, BusClosed, CloseError, PublishError, RequestError, RequestErrorKind, SubscribeError,
    UnsubscribeError,
};
pub use json::{BusExt, JsonMessages, JsonSubscription, PublishJsonError};
pub use memory::{DEFAULT_SUBSCRIPTION_CAPACITY, MemoryBus};
pub use nats::{ConnectError, NatsBus, NatsOptions};
pub use subject::SubjectError;
pub use subscription::Subscription;
