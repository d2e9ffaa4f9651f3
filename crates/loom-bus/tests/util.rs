//! Shared helpers: fixtures that hand out bus handles, and waits that never hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use loom_bus::{Bus, BusState, MemoryBus, NatsBus, NatsOptions, RequestErrorKind, Subscription};
use loom_testkit::NatsServer;

/// The longest any single step of a test may take before it fails.
pub(crate) const STEP: Duration = Duration::from_secs(10);

/// Awaits `$fut` for at most [`STEP`], failing the test with the expression if it hangs.
macro_rules! within {
    ($fut:expr) => {
        tokio::time::timeout($crate::util::STEP, $fut)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out after {:?}: {}",
                    $crate::util::STEP,
                    stringify!($fut)
                )
            })
    };
}

/// Hands out handles to one bus: clones of one `MemoryBus`, or new connections to one
/// nats-server.
#[async_trait]
pub(crate) trait Fixture: Send + Sync {
    /// A new handle (for NATS: a new connection).
    async fn bus(&self) -> Arc<dyn Bus>;
}

pub(crate) struct MemoryFixture(MemoryBus);

#[async_trait]
impl Fixture for MemoryFixture {
    async fn bus(&self) -> Arc<dyn Bus> {
        Arc::new(self.0.clone())
    }
}

pub(crate) struct NatsFixture {
    server: NatsServer,
}

#[async_trait]
impl Fixture for NatsFixture {
    async fn bus(&self) -> Arc<dyn Bus> {
        Arc::new(connect(&self.server.url()).await)
    }
}

pub(crate) fn memory() -> MemoryFixture {
    MemoryFixture(MemoryBus::new())
}

pub(crate) fn nats() -> NatsFixture {
    NatsFixture {
        server: start_server(),
    }
}

/// Starts nats-server, failing (not skipping) with the testkit's message if it is missing.
pub(crate) fn start_server() -> NatsServer {
    NatsServer::start().unwrap_or_else(|err| panic!("{err}"))
}

pub(crate) async fn connect(url: &str) -> NatsBus {
    within!(NatsBus::connect(NatsOptions::new(url)))
        .unwrap_or_else(|err| panic!("cannot connect to {url}: {err:?}"))
}

pub(crate) async fn subscribe(
    bus: &dyn Bus,
    subject: &str,
    queue_group: Option<&str>,
) -> Subscription {
    within!(bus.subscribe(subject, queue_group))
        .unwrap_or_else(|err| panic!("subscribe to {subject}: {err}"))
}

pub(crate) async fn publish(bus: &dyn Bus, subject: &str, payload: impl Into<Bytes>) {
    within!(bus.publish(subject, payload.into()))
        .unwrap_or_else(|err| panic!("publish to {subject}: {err}"));
}

/// The next item, failing if the stream ends or nothing comes within [`STEP`].
pub(crate) async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    within!(stream.next()).expect("stream ended while a message was expected")
}

/// Fails if the stream yields anything within `quiet`.
pub(crate) async fn assert_silent<S>(stream: &mut S, quiet: Duration)
where
    S: Stream + Unpin,
    S::Item: std::fmt::Debug,
{
    if let Ok(Some(item)) = tokio::time::timeout(quiet, stream.next()).await {
        panic!("expected no message, got {item:?}");
    }
}

/// A round trip through the bus: once it returns, everything this handle sent before
/// (subscribes, unsubscribes, publishes) has been processed by the server.
pub(crate) async fn barrier(bus: &dyn Bus) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let subject = format!("test.barrier.{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let err = within!(bus.request(&subject, Bytes::new(), STEP))
        .expect_err("nobody listens on a barrier subject");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
}

/// Answers every request on `subscription` with its own payload.
pub(crate) fn spawn_echo(bus: Arc<dyn Bus>, mut subscription: Subscription) {
    tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            if let Some(reply) = message.reply {
                // The requester may have given up; nothing to do about it here.
                let _ = bus.publish(&reply, message.payload).await;
            }
        }
    });
}

/// Polls `bus.state()` until it equals `expected`.
pub(crate) async fn wait_for_state(bus: &dyn Bus, expected: BusState) {
    within!(async {
        while bus.state() != expected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}
