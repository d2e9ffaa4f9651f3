//! Tests of the actor runtime on the in-process bus.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use loom_bus::MemoryBus;
use tokio::time::timeout;

use super::*;

const WAIT: Duration = Duration::from_secs(5);

/// Records what it handled; optionally sleeps, panics on "boom", or waits for cancel.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    reloads: AtomicUsize,
    cancelled: AtomicUsize,
    delay: Duration,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, message: Message, cancel: CancellationToken) {
        let body = String::from_utf8_lossy(&message.payload).into_owned();
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        if body == "boom" {
            self.running.fetch_sub(1, Ordering::SeqCst);
            panic!("handler panics on purpose");
        }
        if body == "stuck" {
            cancel.cancelled().await;
            self.cancelled.fetch_add(1, Ordering::SeqCst);
        } else {
            tokio::time::sleep(self.delay).await;
        }
        self.seen.lock().expect("lock").push(body);
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    async fn on_reload(&self) {
        self.reloads.fetch_add(1, Ordering::SeqCst);
    }
}

impl Recorder {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    timeout(WAIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition not met in time");
}

#[tokio::test]
async fn idle_actor_stops_at_once_on_shutdown() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let shutdown = CancellationToken::new();
    let h = Arc::new(Recorder::default());
    let actor = spawn_actor(bus, ActorSpec::new("idle", "a.b"), h, shutdown.clone())
        .await
        .expect("spawn");
    shutdown.cancel();
    let report = timeout(Duration::from_secs(1), actor.join())
        .await
        .expect("an idle actor must stop promptly (B4)");
    assert_eq!(
        report,
        ActorReport {
            received: 0,
            abandoned: 0
        }
    );
}

#[tokio::test]
async fn one_at_a_time_keeps_arrival_order() {
    let bus = MemoryBus::new();
    let shutdown = CancellationToken::new();
    let h = Arc::new(Recorder {
        delay: Duration::from_millis(1),
        ..Recorder::default()
    });
    let actor = spawn_actor(
        Arc::new(bus.clone()),
        ActorSpec::new("seq", "q"),
        h.clone(),
        shutdown.clone(),
    )
    .await
    .expect("spawn");
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    for m in &expected {
        bus.publish("q", m.clone().into()).await.expect("publish");
    }
    wait_until(|| h.seen().len() == 20).await;
    assert_eq!(h.seen(), expected);
    assert_eq!(h.max_running.load(Ordering::SeqCst), 1);
    shutdown.cancel();
    assert_eq!(
        timeout(WAIT, actor.join()).await.expect("join").received,
        20
    );
}

#[tokio::test]
async fn concurrency_never_exceeds_the_limit() {
    let bus = MemoryBus::new();
    let shutdown = CancellationToken::new();
    let h = Arc::new(Recorder {
        delay: Duration::from_millis(20),
        ..Recorder::default()
    });
    let spec = ActorSpec::new("par", "q").max_concurrent(3);
    let actor = spawn_actor(Arc::new(bus.clone()), spec, h.clone(), shutdown.clone())
        .await
        .expect("spawn");
    for i in 0..12 {
        bus.publish("q", i.to_string().into())
            .await
            .expect("publish");
    }
    wait_until(|| h.seen().len() == 12).await;
    assert_eq!(h.max_running.load(Ordering::SeqCst), 3);
    shutdown.cancel();
    timeout(WAIT, actor.join()).await.expect("join");
}

#[tokio::test]
async fn a_panicking_handler_does_not_stop_the_actor() {
    let bus = MemoryBus::new();
    let shutdown = CancellationToken::new();
    let h = Arc::new(Recorder::default());
    let actor = spawn_actor(
        Arc::new(bus.clone()),
        ActorSpec::new("p", "q"),
        h.clone(),
        shutdown.clone(),
    )
    .await
    .expect("spawn");
    bus.publish("q", "boom".into()).await.expect("publish");
    bus.publish("q", "after".into()).await.expect("publish");
    wait_until(|| h.seen() == ["after"]).await;
    shutdown.cancel();
    assert_eq!(timeout(WAIT, actor.join()).await.expect("join").received, 2);
}

#[tokio::test]
async fn shutdown_finishes_in_flight_work_and_consumes_nothing_more() {
    let bus = MemoryBus::new();
    let shutdown = CancellationToken::new();
    let h = Arc::new(Recorder {
        delay: Duration::from_millis(200),
        ..Recorder::default()
    });
    let spec = ActorSpec::new("drain", "q").max_concurrent(2);
    let actor = spawn_actor(Arc::new(bus.clone()), spec, h.clone(), shutdown.clone())
        .await
        .expect("spawn");
    bus.publish("q", "a".into()).await.expect("publish");
    bus.publish("q", "b".into()).await.expect("publish");
    wait_until(|| h.running.load(Ordering::SeqCst) == 2).await;
    shutdown.cancel();
    // Published after shutdown: must not be handled.
    bus.publish("q", "late".into()).await.expect("publish");
    let report = timeout(WAIT, actor.join()).await.expect("join");
    let mut seen = h.seen();
    seen.sort();
    assert_eq!(
        seen,
        ["a", "b"],
        "in-flight messages finish; later ones are not consumed"
    );
    assert_eq!(
        report,
        ActorReport {
            received: 2,
            abandoned: 0
        }
    );
}

#[tokio::test]
async fn shutdown_finishes_the_one_in_flight_message_of_a_sequential_actor() {
    // With max_concurrent 1 the handler runs inside the actor's loop; on shutdown it
    // must still finish (within the deadline) while nothing more is consumed.
    let bus = MemoryBus::new();
    let shutdown = CancellationToken::new();
    let h = Arc::new(Recorder {
        delay: Duration::from_millis(200),
        ..Recorder::default()
    });
    let actor = spawn_actor(
        Arc::new(bus.clone()),
        ActorSpec::new("seq-drain", "q"),
        h.clone(),
        shutdown.clone(),
    )
    .await
    .expect("spawn");
    bus.publish("q", "a".into()).await.expect("publish");
    bus.publish("q", "queued".into()).await.expect("publish");
    wait_until(|| h.running.load(Ordering::SeqCst) == 1).await;
    shutdown.cancel();
    let report = timeout(WAIT, actor.join()).await.expect("join");
    assert_eq!(
        h.seen(),
        ["a"],
        "the in-flight message finishes, the queued one is not consumed"
    );
    assert_eq!(
        report,
        ActorReport {
            received: 1,
            abandoned: 0
        }
    );
}

#[tokio::test]
async fn stragglers_are_cancelled_at_the_drain_deadline() {
    let bus = MemoryBus::new();
    let shutdown = CancellationToken::new();
    let h = Arc::new(Recorder::default());
    let spec = ActorSpec::new("stuck", "q").drain_deadline(Duration::from_millis(100));
    let actor = spawn_actor(Arc::new(bus.clone()), spec, h.clone(), shutdown.clone())
        .await
        .expect("spawn");
    bus.publish("q", "stuck".into()).await.expect("publish");
    wait_until(|| h.running.load(Ordering::SeqCst) == 1).await;
    shutdown.cancel();
    let report = timeout(WAIT, actor.join()).await.expect("join");
    assert_eq!(report.abandoned, 1);
    assert_eq!(
        h.cancelled.load(Ordering::SeqCst),
        1,
        "the handler saw its cancel token fire"
    );
}

#[tokio::test]
async fn reload_messages_call_on_reload_and_others_are_ignored() {
    let bus = MemoryBus::new();
    let shutdown = CancellationToken::new();
    let h = Arc::new(Recorder::default());
    let spec = ActorSpec::new("r", "q").listen_for_reload();
    let actor = spawn_actor(Arc::new(bus.clone()), spec, h.clone(), shutdown.clone())
        .await
        .expect("spawn");
    bus.publish(CONTROL_RELOAD, r#"{"action":"reload"}"#.into())
        .await
        .expect("publish");
    bus.publish(CONTROL_RELOAD, r#"{"action":"restart"}"#.into())
        .await
        .expect("publish");
    bus.publish(CONTROL_RELOAD, "not json".into())
        .await
        .expect("publish");
    bus.publish("q", "x".into()).await.expect("publish");
    wait_until(|| h.seen() == ["x"]).await;
    assert_eq!(h.reloads.load(Ordering::SeqCst), 1);
    shutdown.cancel();
    timeout(WAIT, actor.join()).await.expect("join");
}
