//! Unit tests of the router's decisions, with injected time and no bus traffic.

use std::time::Duration;

use loom_bus::MemoryBus;
use loom_core::config::RateLimit;
use serde_json::json;

use super::*;

fn router(overrides: &[(&str, ModelTier)], limits: &[(ModelTier, RateLimit)]) -> Router {
    let mut rules = RouterRules::default();
    for &(worker, tier) in overrides {
        let worker = WorkerName::try_from(worker).expect("valid test name");
        rules.tier_overrides.insert(worker, tier);
    }
    rules.rate_limits.extend(limits.iter().copied());
    Router::new(Arc::new(MemoryBus::new()), rules)
}

fn limit(max_concurrent: u32, tokens_per_minute: Option<f64>) -> RateLimit {
    RateLimit {
        max_concurrent,
        tokens_per_minute,
    }
}

fn body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("encodes")
}

#[track_caller]
fn forwarded(decision: Decision) -> (String, TaskMessage) {
    match decision {
        Decision::Forward { subject, task } => (subject, task),
        Decision::DeadLetter { reason } => panic!("dead-lettered: {reason}"),
    }
}

#[track_caller]
fn reason(decision: Decision) -> String {
    match decision {
        Decision::DeadLetter { reason } => reason,
        Decision::Forward { subject, .. } => panic!("forwarded to {subject}"),
    }
}

fn task(worker: &str, tier: &str) -> Value {
    json!({
        "task_id": "t1",
        "parent_task_id": "p1",
        "worker_type": worker,
        "payload": {"text": "hello"},
        "model_tier": tier,
        "created_at": "2026-03-25T10:00:00.123456Z",
    })
}

#[test]
fn valid_task_goes_to_its_worker_and_tier_unchanged() {
    let r = router(&[], &[]);
    let raw = task("summarizer", "frontier");
    let (subject, task) = forwarded(r.decide(&body(&raw), Instant::now()));
    assert_eq!(subject, "loom.tasks.summarizer.frontier");
    let expected: TaskMessage = serde_json::from_value(raw).expect("valid task");
    assert_eq!(task, expected);
}

#[test]
fn override_beats_message_tier_and_rewrites_it() {
    let r = router(&[("summarizer", ModelTier::Local)], &[]);
    let (subject, routed) =
        forwarded(r.decide(&body(&task("summarizer", "frontier")), Instant::now()));
    assert_eq!(subject, "loom.tasks.summarizer.local");
    assert_eq!(routed.model_tier, ModelTier::Local);
    assert_eq!(routed.worker_type, "summarizer");
    // Other workers keep their own tier.
    let (subject, _) = forwarded(r.decide(&body(&task("extractor", "frontier")), Instant::now()));
    assert_eq!(subject, "loom.tasks.extractor.frontier");
}

#[test]
fn unknown_keys_are_dropped_and_trace_context_kept() {
    let r = router(&[], &[]);
    let mut raw = task("summarizer", "standard");
    raw["_trace_context"] = json!({"traceparent": "00-abc-def-01"});
    raw["unknown"] = json!(1);
    let (_, task) = forwarded(r.decide(&body(&raw), Instant::now()));
    let out = serde_json::to_value(&task).expect("encodes");
    assert_eq!(
        out["_trace_context"],
        json!({"traceparent": "00-abc-def-01"})
    );
    assert!(out.get("unknown").is_none());
}

#[test]
fn malformed_tasks_are_invalid_task_messages() {
    let r = router(&[], &[]);
    let now = Instant::now();
    for bad in [
        b"not json".to_vec(),
        body(&json!([1, 2])),
        body(&json!({"task_id": "t", "worker_type": "w", "payload": "text"})),
        body(&json!({"task_id": "t", "payload": {}})),
        body(&json!({"task_id": "t", "worker_type": "w", "payload": {}, "model_tier": "LOCAL"})),
    ] {
        let why = reason(r.decide(&bad, now));
        assert!(why.starts_with("invalid_task_message: "), "{why}");
    }
}

#[test]
fn worker_types_that_are_not_names_are_refused() {
    let r = router(&[], &[]);
    for bad in ["a.b", "X", "a*", "a b", "", ">"] {
        let why = reason(r.decide(&body(&task(bad, "local")), Instant::now()));
        assert!(
            why.starts_with("invalid_worker_type: name"),
            "{bad:?}: {why}"
        );
    }
}

#[test]
fn second_immediate_task_on_a_full_tier_is_rate_limited() {
    let r = router(&[], &[(ModelTier::Local, limit(1, None))]);
    let t0 = Instant::now();
    let one = body(&task("summarizer", "local"));
    forwarded(r.decide(&one, t0));
    assert_eq!(
        reason(r.decide(&one, t0)),
        "rate_limited: tier 'local' has no available capacity"
    );
    // Other tiers are unlimited.
    forwarded(r.decide(&body(&task("summarizer", "standard")), t0));
    // A minute later the local bucket has refilled.
    forwarded(r.decide(&one, t0 + Duration::from_secs(60)));
}

#[test]
fn the_rate_limit_applies_to_the_resolved_tier() {
    let r = router(
        &[("summarizer", ModelTier::Local)],
        &[(ModelTier::Local, limit(1, None))],
    );
    let t0 = Instant::now();
    forwarded(r.decide(&body(&task("summarizer", "frontier")), t0));
    let why = reason(r.decide(&body(&task("summarizer", "frontier")), t0));
    assert_eq!(why, "rate_limited: tier 'local' has no available capacity");
}

#[test]
fn token_budget_refuses_tasks_beyond_the_estimate() {
    // 40 tokens per minute; a payload of ~100 bytes is ~25 tokens.
    let r = router(&[], &[(ModelTier::Standard, limit(100, Some(40.0)))]);
    let t0 = Instant::now();
    let mut raw = task("summarizer", "standard");
    raw["payload"] = json!({"text": "x".repeat(90)});
    assert_eq!(estimate_tokens(&raw["payload"]), 26);
    forwarded(r.decide(&body(&raw), t0));
    let why = reason(r.decide(&body(&raw), t0));
    assert!(
        why.starts_with("rate_limited: tier 'standard' has no available capacity"),
        "{why}"
    );
    assert!(
        why.contains("needs about 26 tokens; 14 of 40 tokens per minute are left"),
        "{why}"
    );
    // A small task still fits in what is left.
    forwarded(r.decide(&body(&task("summarizer", "standard")), t0));
}
