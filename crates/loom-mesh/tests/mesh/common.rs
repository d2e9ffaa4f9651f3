//! A bus for each test: `MemoryBus`, or a `NatsBus` on its own nats-server.

use std::sync::Arc;
use std::time::Duration;

use loom_bus::{Bus, MemoryBus, NatsBus, NatsOptions};
use loom_testkit::NatsServer;

/// Every wait in these tests is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Which bus a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BusKind {
    /// The in-process bus.
    Memory,
    /// A real nats-server on a free loopback port.
    Nats,
}

/// A bus and, for NATS, the server behind it (stopped when dropped).
pub(crate) struct TestBus {
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) kind: BusKind,
    pub(crate) server: Option<NatsServer>,
}

// A type with `Drop` is always captured whole by `async move` blocks, so a test body that
// only names `tb.bus` still keeps the nats-server alive until the body ends.
impl Drop for TestBus {
    fn drop(&mut self) {}
}

impl TestBus {
    /// Which bus this is.
    #[allow(dead_code)] // Used by tests that behave differently on NATS.
    pub(crate) fn kind(&self) -> BusKind {
        self.kind
    }

    pub(crate) async fn new(kind: BusKind) -> TestBus {
        match kind {
            BusKind::Memory => TestBus {
                bus: Arc::new(MemoryBus::new()),
                kind,
                server: None,
            },
            BusKind::Nats => {
                let server = NatsServer::start().expect("start nats-server");
                let bus = NatsBus::connect(NatsOptions::new(&server.url()))
                    .await
                    .expect("connect to nats-server");
                TestBus {
                    bus: Arc::new(bus),
                    kind,
                    server: Some(server),
                }
            }
        }
    }

    /// Another connection to the same bus (a second process, on NATS).
    pub(crate) async fn second_client(&self) -> Arc<dyn Bus> {
        match &self.server {
            None => self.bus.clone(),
            Some(server) => Arc::new(
                NatsBus::connect(NatsOptions::new(&server.url()))
                    .await
                    .expect("connect to nats-server"),
            ),
        }
    }
}

/// Defines `mod $name { memory, nats }`: the async body runs once per bus kind.
///
/// ```ignore
/// on_both_buses!(routes_valid_tasks, |tb: TestBus| async move { … });
/// ```
#[macro_export]
macro_rules! on_both_buses {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn memory() {
                let tb = $crate::common::TestBus::new($crate::common::BusKind::Memory).await;
                ($body)(tb).await;
            }

            #[tokio::test]
            async fn nats() {
                let tb = $crate::common::TestBus::new($crate::common::BusKind::Nats).await;
                ($body)(tb).await;
            }
        }
    };
}

/// Runs `fut`, failing the test with `what` if it takes longer than [`WAIT`].
pub(crate) async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
