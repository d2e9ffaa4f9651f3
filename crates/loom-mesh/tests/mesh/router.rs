//! Router tests: routing, tier overrides, dead letters with FAILED answers, rate limits,
//! ordering, replicas and shutdown, on both buses.
//!
//! Each body starts with `let tb = &tb;`. A body that only touches `tb.bus` would make
//! the `async move` block capture that one field (disjoint closure captures), dropping
//! the rest of the `TestBus`, and with it the nats-server, before the test starts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use loom_bus::{Bus, BusExt, Subscription};
use loom_core::config::{RateLimit, RouterRules};
use loom_core::message::{DeadLetter, ModelTier, TaskMessage, TaskResult, TaskStatus};
use loom_core::name::WorkerName;
use loom_core::subject::{TASKS_DEAD_LETTER, TASKS_INCOMING};
use loom_mesh::actor::ActorHandle;
use loom_mesh::router::spawn_router;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{TestBus, within};
use crate::on_both_buses;

/// How long a test listens to prove that nothing more arrives.
const QUIET: Duration = Duration::from_millis(300);

/// A running router and the token that stops it.
struct RunningRouter {
    handle: ActorHandle,
    shutdown: CancellationToken,
}

impl RunningRouter {
    async fn start(bus: &Arc<dyn Bus>, rules: RouterRules) -> RunningRouter {
        let shutdown = CancellationToken::new();
        let handle = spawn_router(bus.clone(), rules, shutdown.clone())
            .await
            .expect("router subscribes");
        // On NATS, make sure the server registered the subscription before anyone publishes.
        within("flush after subscribing", bus.flush())
            .await
            .expect("flush");
        RunningRouter { handle, shutdown }
    }

    async fn stop(self) -> loom_mesh::actor::ActorReport {
        self.shutdown.cancel();
        within("router shutdown", self.handle.join()).await
    }
}

fn rules(overrides: &[(&str, ModelTier)], limits: &[(ModelTier, u32, Option<f64>)]) -> RouterRules {
    let mut rules = RouterRules::default();
    for &(worker, tier) in overrides {
        rules
            .tier_overrides
            .insert(WorkerName::try_from(worker).expect("valid name"), tier);
    }
    for &(tier, max_concurrent, tokens_per_minute) in limits {
        rules.rate_limits.insert(
            tier,
            RateLimit {
                max_concurrent,
                tokens_per_minute,
            },
        );
    }
    rules
}

fn task(worker: &str, task_id: &str, tier: ModelTier) -> TaskMessage {
    let mut payload = serde_json::Map::new();
    payload.insert("text".into(), json!("hello"));
    TaskMessage::new(&WorkerName::try_from(worker).expect("valid name"), payload)
        .with_task_id(task_id)
        .with_parent_task_id("caller-1")
        .with_model_tier(tier)
}

async fn subscribe(bus: &Arc<dyn Bus>, subject: &str) -> Subscription {
    let sub = within("subscribe", bus.subscribe(subject, None))
        .await
        .expect("subscribe");
    within("flush after subscribing", bus.flush())
        .await
        .expect("flush");
    sub
}

async fn publish_raw(bus: &Arc<dyn Bus>, body: &'static str) {
    within(
        "publish",
        bus.publish(TASKS_INCOMING, Bytes::from_static(body.as_bytes())),
    )
    .await
    .expect("publish");
}

async fn publish_task(bus: &Arc<dyn Bus>, task: &TaskMessage) {
    within("publish", bus.publish_json(TASKS_INCOMING, task))
        .await
        .expect("publish");
}

async fn next(sub: &mut Subscription, what: &str) -> loom_bus::Message {
    within(what, sub.next())
        .await
        .unwrap_or_else(|| panic!("subscription for {what} ended"))
}

async fn next_json<T: serde::de::DeserializeOwned>(sub: &mut Subscription, what: &str) -> T {
    let message = next(sub, what).await;
    message
        .json()
        .unwrap_or_else(|e| panic!("{what} is not valid JSON for its type: {e}"))
}

/// The next dead letter, checked to have exactly the four envelope keys (§18 item 23).
async fn next_dead_letter(sub: &mut Subscription) -> DeadLetter {
    let raw: Value = next_json(sub, "dead letter").await;
    let keys: BTreeSet<&str> = raw
        .as_object()
        .expect("envelope is an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["reason", "original_task", "task_id", "worker_type"])
    );
    serde_json::from_value(raw).expect("dead letter")
}

/// Asserts that nothing arrives on `sub` for [`QUIET`].
async fn assert_quiet(sub: &mut Subscription, what: &str) {
    if let Ok(Some(message)) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!(
            "unexpected {what} on {}: {}",
            message.subject,
            String::from_utf8_lossy(&message.payload)
        );
    }
}

#[track_caller]
fn assert_failed(result: &TaskResult, task_id: &str, reason_prefix: &str) {
    assert_eq!(result.task_id, task_id);
    assert_eq!(result.status, TaskStatus::Failed);
    let error = result.error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with(&format!("Task dead-lettered: {reason_prefix}")),
        "{error}"
    );
}

// §18 item 19.
on_both_buses!(
    valid_task_is_forwarded_with_same_id_and_payload,
    |tb: TestBus| async move {
        let tb = &tb; // Keeps the nats-server alive; see the module docs.
        let mut forwarded = subscribe(&tb.bus, "loom.tasks.summarizer.standard").await;
        let router = RunningRouter::start(&tb.bus, RouterRules::default()).await;

        let mut trace = serde_json::Map::new();
        trace.insert(
            "traceparent".into(),
            json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let sent = task("summarizer", "t-valid", ModelTier::Standard).with_trace_context(trace);
        publish_task(&tb.bus, &sent).await;

        let message = next(&mut forwarded, "forwarded task").await;
        assert_eq!(message.subject, "loom.tasks.summarizer.standard");
        let got: TaskMessage = message.json().expect("a TaskMessage");
        assert_eq!(got.task_id, "t-valid");
        assert_eq!(got.payload, sent.payload);
        // Nothing else changes, the trace context included.
        let got_json: Value = message.json().expect("JSON");
        assert_eq!(got_json, serde_json::to_value(&sent).expect("encodes"));
        router.stop().await;
    }
);

// §18 item 20 and B3.
on_both_buses!(
    override_beats_message_tier_and_rewrites_model_tier,
    |tb: TestBus| async move {
        let tb = &tb; // Keeps the nats-server alive; see the module docs.
        let mut forwarded = subscribe(&tb.bus, "loom.tasks.summarizer.*").await;
        let router =
            RunningRouter::start(&tb.bus, rules(&[("summarizer", ModelTier::Local)], &[])).await;

        publish_task(
            &tb.bus,
            &task("summarizer", "t-override", ModelTier::Frontier),
        )
        .await;

        let message = next(&mut forwarded, "forwarded task").await;
        assert_eq!(message.subject, "loom.tasks.summarizer.local");
        let got: TaskMessage = message.json().expect("a TaskMessage");
        assert_eq!(got.task_id, "t-override");
        assert_eq!(
            got.model_tier,
            ModelTier::Local,
            "the router must rewrite model_tier (B3)"
        );
        assert_quiet(&mut forwarded, "second copy").await;
        router.stop().await;
    }
);

// §18 items 22 and 23, B12.
on_both_buses!(
    malformed_tasks_dead_letter_and_answer_failed,
    |tb: TestBus| async move {
        let tb = &tb; // Keeps the nats-server alive; see the module docs.
        let mut dead = subscribe(&tb.bus, TASKS_DEAD_LETTER).await;
        let mut results = subscribe(&tb.bus, "loom.results.caller-1").await;
        let mut default_results = subscribe(&tb.bus, "loom.results.default").await;
        let router = RunningRouter::start(&tb.bus, RouterRules::default()).await;

        // Not JSON at all: the body travels as a JSON string; nobody to answer.
        publish_raw(&tb.bus, "{not json").await;
        let letter = next_dead_letter(&mut dead).await;
        assert!(
            letter.reason.starts_with("invalid_task_message: "),
            "{}",
            letter.reason
        );
        assert_eq!(letter.original_task, json!("{not json"));
        assert_eq!((letter.task_id, letter.worker_type), (None, None));

        // The payload is not an object: the raw dict, unknown keys included, is kept.
        let raw = r#"{"task_id":"t-bad-payload","parent_task_id":"caller-1","worker_type":"summarizer","payload":"text","extra":[1,2]}"#;
        publish_raw(&tb.bus, raw).await;
        let letter = next_dead_letter(&mut dead).await;
        assert!(
            letter.reason.starts_with("invalid_task_message: "),
            "{}",
            letter.reason
        );
        assert_eq!(
            letter.original_task,
            serde_json::from_str::<Value>(raw).expect("JSON")
        );
        assert_eq!(letter.task_id.as_deref(), Some("t-bad-payload"));
        assert_eq!(letter.worker_type.as_deref(), Some("summarizer"));
        let failed: TaskResult = next_json(&mut results, "FAILED result").await;
        assert_failed(&failed, "t-bad-payload", "invalid_task_message: ");
        assert_eq!(failed.parent_task_id.as_deref(), Some("caller-1"));
        assert_eq!(failed.worker_type, "summarizer");

        // No worker_type and no parent: the answer goes to loom.results.default.
        publish_raw(&tb.bus, r#"{"task_id":"t-no-worker","payload":{}}"#).await;
        let letter = next_dead_letter(&mut dead).await;
        assert!(
            letter.reason.starts_with("invalid_task_message: "),
            "{}",
            letter.reason
        );
        assert!(letter.reason.contains("worker_type"), "{}", letter.reason);
        assert_eq!(letter.task_id.as_deref(), Some("t-no-worker"));
        assert_eq!(letter.worker_type, None);
        let failed: TaskResult = next_json(&mut default_results, "FAILED result on default").await;
        assert_failed(&failed, "t-no-worker", "invalid_task_message: ");

        assert_quiet(&mut results, "result").await;
        router.stop().await;
    }
);

// L8.
on_both_buses!(
    invalid_worker_type_dead_letters_and_answers_failed,
    |tb: TestBus| async move {
        let tb = &tb; // Keeps the nats-server alive; see the module docs.
        let mut dead = subscribe(&tb.bus, TASKS_DEAD_LETTER).await;
        let mut results = subscribe(&tb.bus, "loom.results.caller-1").await;
        let mut routed = subscribe(&tb.bus, "loom.tasks.>").await;
        let router = RunningRouter::start(&tb.bus, RouterRules::default()).await;

        for (task_id, worker_type) in [("t-dot", "a.b"), ("t-upper", "X")] {
            let mut raw = serde_json::to_value(task("summarizer", task_id, ModelTier::Local))
                .expect("encodes");
            raw["worker_type"] = json!(worker_type);
            within("publish", tb.bus.publish_json(TASKS_INCOMING, &raw))
                .await
                .expect("publish");

            let letter = next_dead_letter(&mut dead).await;
            assert!(
                letter.reason.starts_with("invalid_worker_type: "),
                "{}",
                letter.reason
            );
            assert!(
                letter.reason.contains(&format!("'{worker_type}'")),
                "{}",
                letter.reason
            );
            assert_eq!(letter.original_task, raw);
            assert_eq!(letter.worker_type.as_deref(), Some(worker_type));
            let failed: TaskResult = next_json(&mut results, "FAILED result").await;
            assert_failed(&failed, task_id, "invalid_worker_type: ");
        }

        // A valid task sent afterwards is the only thing forwarded (the router keeps order).
        publish_task(&tb.bus, &task("summarizer", "t-sentinel", ModelTier::Local)).await;
        loop {
            let message = next(&mut routed, "sentinel").await;
            match message.subject.as_str() {
                TASKS_INCOMING | TASKS_DEAD_LETTER => continue,
                "loom.tasks.summarizer.local" => {
                    let got: TaskMessage = message.json().expect("a TaskMessage");
                    assert_eq!(got.task_id, "t-sentinel");
                    break;
                }
                other => panic!("an invalid worker type was routed to {other}"),
            }
        }
        router.stop().await;
    }
);

// §18 item 25.
on_both_buses!(
    second_immediate_task_on_full_tier_is_rate_limited,
    |tb: TestBus| async move {
        let tb = &tb; // Keeps the nats-server alive; see the module docs.
        let mut forwarded = subscribe(&tb.bus, "loom.tasks.summarizer.local").await;
        let mut dead = subscribe(&tb.bus, TASKS_DEAD_LETTER).await;
        let mut results = subscribe(&tb.bus, "loom.results.caller-1").await;
        let router =
            RunningRouter::start(&tb.bus, rules(&[], &[(ModelTier::Local, 1, None)])).await;

        publish_task(&tb.bus, &task("summarizer", "t-first", ModelTier::Local)).await;
        let mut second = serde_json::to_value(task("summarizer", "t-second", ModelTier::Local))
            .expect("encodes");
        second["extra_key"] = json!("kept in the dead letter");
        within("publish", tb.bus.publish_json(TASKS_INCOMING, &second))
            .await
            .expect("publish");

        let first: TaskMessage = next_json(&mut forwarded, "first task").await;
        assert_eq!(first.task_id, "t-first");
        let letter = next_dead_letter(&mut dead).await;
        assert_eq!(
            letter.reason,
            "rate_limited: tier 'local' has no available capacity"
        );
        assert_eq!(letter.original_task, second);
        assert_eq!(letter.task_id.as_deref(), Some("t-second"));
        assert_eq!(letter.worker_type.as_deref(), Some("summarizer"));
        let failed: TaskResult = next_json(&mut results, "FAILED result").await;
        assert_eq!(
            failed.error.as_deref(),
            Some("Task dead-lettered: rate_limited: tier 'local' has no available capacity")
        );
        assert_failed(&failed, "t-second", "rate_limited: ");
        assert_quiet(&mut forwarded, "rate-limited task").await;
        router.stop().await;
    }
);

// B11: tokens_per_minute is a real budget.
on_both_buses!(
    token_budget_dead_letters_tasks_beyond_it,
    |tb: TestBus| async move {
        let tb = &tb; // Keeps the nats-server alive; see the module docs.
        let mut forwarded = subscribe(&tb.bus, "loom.tasks.summarizer.standard").await;
        let mut dead = subscribe(&tb.bus, TASKS_DEAD_LETTER).await;
        let router = RunningRouter::start(
            &tb.bus,
            rules(&[], &[(ModelTier::Standard, 100, Some(40.0))]),
        )
        .await;

        // Each payload is about 26 estimated tokens: the first fits in 40, the second does not.
        let mut payload = serde_json::Map::new();
        payload.insert("text".into(), json!("x".repeat(90)));
        let big = |id: &str| {
            let mut big = task("summarizer", id, ModelTier::Standard);
            big.payload = payload.clone();
            big
        };
        publish_task(&tb.bus, &big("t-big-1")).await;
        publish_task(&tb.bus, &big("t-big-2")).await;

        let first: TaskMessage = next_json(&mut forwarded, "first task").await;
        assert_eq!(first.task_id, "t-big-1");
        let letter = next_dead_letter(&mut dead).await;
        assert_eq!(letter.task_id.as_deref(), Some("t-big-2"));
        assert!(
            letter
                .reason
                .starts_with("rate_limited: tier 'standard' has no available capacity"),
            "{}",
            letter.reason
        );
        router.stop().await;
    }
);

// §18 item 27.
on_both_buses!(
    queued_tasks_are_forwarded_in_order,
    |tb: TestBus| async move {
        let tb = &tb; // Keeps the nats-server alive; see the module docs.
        let mut forwarded = subscribe(&tb.bus, "loom.tasks.summarizer.standard").await;
        let router = RunningRouter::start(&tb.bus, RouterRules::default()).await;

        let ids: Vec<String> = (0..50).map(|i| format!("t-{i:02}")).collect();
        for id in &ids {
            publish_task(&tb.bus, &task("summarizer", id, ModelTier::Standard)).await;
        }
        let mut got = Vec::with_capacity(ids.len());
        for _ in &ids {
            let task: TaskMessage = next_json(&mut forwarded, "queued task").await;
            got.push(task.task_id);
        }
        assert_eq!(got, ids);
        let report = router.stop().await;
        assert_eq!(report.received, 50);
    }
);

// L2: replicas share the work.
on_both_buses!(
    router_replicas_forward_each_task_exactly_once,
    |tb: TestBus| async move {
        let tb = &tb; // Keeps the nats-server alive; see the module docs.
        let mut forwarded = subscribe(&tb.bus, "loom.tasks.summarizer.standard").await;
        let first = RunningRouter::start(&tb.bus, RouterRules::default()).await;
        let other_client = tb.second_client().await;
        let second = RunningRouter::start(&other_client, RouterRules::default()).await;

        const N: usize = 60;
        for i in 0..N {
            publish_task(
                &tb.bus,
                &task("summarizer", &format!("t-{i}"), ModelTier::Standard),
            )
            .await;
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..N {
            let task: TaskMessage = next_json(&mut forwarded, "routed task").await;
            *seen.entry(task.task_id).or_default() += 1;
        }
        assert_quiet(&mut forwarded, "duplicate").await;
        assert_eq!(seen.len(), N, "every task is forwarded");
        assert!(
            seen.values().all(|&n| n == 1),
            "no task is forwarded twice: {seen:?}"
        );

        let (a, b) = (first.stop().await, second.stop().await);
        assert_eq!(a.received + b.received, N as u64);
        assert!(
            a.received > 0 && b.received > 0,
            "both replicas work: {a:?} {b:?}"
        );
    }
);

on_both_buses!(router_shuts_down_promptly, |tb: TestBus| async move {
    // Capture the whole TestBus: with only `tb.bus` used, the closure would capture just
    // that field and drop the nats-server at once.
    let tb = &tb;
    let mut forwarded = subscribe(&tb.bus, "loom.tasks.summarizer.standard").await;
    let router = RunningRouter::start(&tb.bus, RouterRules::default()).await;
    publish_task(
        &tb.bus,
        &task("summarizer", "t-before-stop", ModelTier::Standard),
    )
    .await;
    let _: TaskMessage = next_json(&mut forwarded, "routed task").await;

    router.shutdown.cancel();
    let report = tokio::time::timeout(Duration::from_secs(1), router.handle.join())
        .await
        .expect("the router stops within a second");
    assert_eq!(report.received, 1);
    assert_eq!(report.abandoned, 0);

    // Once stopped it routes nothing.
    publish_task(
        &tb.bus,
        &task("summarizer", "t-after-stop", ModelTier::Standard),
    )
    .await;
    assert_quiet(&mut forwarded, "task routed after shutdown").await;
});
