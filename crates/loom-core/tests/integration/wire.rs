//! Wire messages against fixtures emitted by the Python original (`fixtures/generate.py`).

use std::path::PathBuf;

use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use loom_core::WorkerName;
use loom_core::message::{
    CancelRequest, DeadLetter, ModelTier, OrchestratorGoal, TaskMessage, TaskPriority, TaskResult,
    TaskStatus, TokenUsage, format_timestamp, to_python_json,
};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).expect("fixture file is readable")
}

fn fixture_value(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name)).expect("fixture is valid JSON")
}

fn parse<T: DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&fixture_text(name))
        .unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test value is not an object: {other}"),
    }
}

#[track_caller]
fn assert_python_bytes<T: Serialize + DeserializeOwned>(name: &str) {
    let text = fixture_text(name);
    let parsed: T =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
    let bytes = to_python_json(&parsed).expect("serialises");
    let ours = String::from_utf8(bytes).expect("python json is ASCII");
    assert_eq!(ours, text, "{name}: Rust bytes differ from Python's");
    let value = serde_json::to_value(&parsed).expect("serialises");
    assert_eq!(value, fixture_value(name), "{name}: values differ");
}

#[test]
fn python_fixtures_round_trip_byte_for_byte() {
    assert_python_bytes::<TaskMessage>("task_message_routed.py.json");
    assert_python_bytes::<TaskMessage>("task_message_bridge.py.json");
    assert_python_bytes::<TaskResult>("task_result_completed.py.json");
    assert_python_bytes::<TaskResult>("task_result_failed.py.json");
    assert_python_bytes::<TaskResult>("pipeline_final_result.py.json");
    assert_python_bytes::<OrchestratorGoal>("orchestrator_goal.py.json");
    assert_python_bytes::<DeadLetter>("dead_letter_rate_limited.py.json");
    assert_python_bytes::<DeadLetter>("dead_letter_invalid.py.json");
}

#[test]
fn routed_task_keeps_trace_context_and_fields() {
    let task: TaskMessage = parse("task_message_routed.py.json");
    assert_eq!(task.worker_type, "summarizer");
    assert_eq!(task.model_tier, ModelTier::Local);
    assert_eq!(task.parent_task_id.as_deref(), Some("mcp-0123456789ab"));
    assert_eq!(task.request_id, None);
    assert_eq!(task.payload["text"], "Grüße — 東京 😀");
    assert_eq!(task.created_at.nanosecond(), 123_456_000);
    let trace = task.trace_context.as_ref().expect("_trace_context parsed");
    assert!(
        trace["traceparent"]
            .as_str()
            .is_some_and(|t| t.starts_with("00-"))
    );
    assert_eq!(
        task.result_subject().as_deref(),
        Ok("loom.results.mcp-0123456789ab")
    );
}

#[test]
fn unknown_keys_are_ignored_and_dropped() {
    let task: TaskMessage = parse("task_message_extra_keys.json");
    let mut expected = obj(fixture_value("task_message_extra_keys.json"));
    for unknown in ["x_producer", "schema_version", "deadline"] {
        assert!(expected.remove(unknown).is_some(), "fixture has {unknown}");
    }
    // The only normalisation: timestamps are written in Pydantic's form.
    expected.insert("created_at".into(), json!("2026-03-25T10:00:00.500000Z"));
    assert_eq!(
        serde_json::to_value(&task).expect("serialises"),
        Value::Object(expected)
    );
    assert_eq!(task.priority, TaskPriority::High);
    assert_eq!(task.model_tier, ModelTier::Frontier);
}

#[test]
fn malformed_trace_context_is_ignored_like_python_does() {
    for junk in [json!("00-abc"), json!([1]), json!(7), Value::Null] {
        let mut raw = fixture_value("task_message_minimal.json");
        raw["_trace_context"] = junk.clone();
        let task: TaskMessage =
            serde_json::from_value(raw).unwrap_or_else(|e| panic!("{junk}: {e}"));
        assert_eq!(task.trace_context, None);
    }
}

#[test]
fn unknown_keys_are_ignored_on_every_wire_struct() {
    let extra = |mut v: Value| {
        v["zz_unknown"] = json!({"any": ["thing"]});
        v
    };
    serde_json::from_value::<TaskResult>(extra(fixture_value("task_result_minimal.json")))
        .expect("result");
    serde_json::from_value::<OrchestratorGoal>(extra(json!({"instruction": "x"}))).expect("goal");
    serde_json::from_value::<CancelRequest>(extra(json!({"task_id": "t"}))).expect("cancel");
    let dl: DeadLetter =
        serde_json::from_value(extra(fixture_value("dead_letter_rate_limited.py.json")))
            .expect("dead letter");
    let keys: Vec<String> = obj(serde_json::to_value(&dl).expect("serialises"))
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["reason", "original_task", "task_id", "worker_type"]);
}

#[test]
fn new_task_message_has_documented_defaults() {
    let worker = WorkerName::try_from("summarizer").expect("valid name");
    let before = Utc::now() - Duration::seconds(1);
    let task = TaskMessage::new(&worker, Map::new());
    let id = uuid::Uuid::parse_str(&task.task_id).expect("task_id is a UUID");
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(task.model_tier, ModelTier::Standard);
    assert_eq!(task.priority, TaskPriority::Normal);
    assert_eq!(task.max_retries, 2);
    assert_eq!(task.retry_count, 0);
    assert!(task.metadata.is_empty());
    assert_eq!(task.parent_task_id, None);
    assert_eq!(task.request_id, None);
    assert!(task.created_at >= before && task.created_at <= Utc::now() + Duration::seconds(1));
    assert_eq!(
        task.created_at.nanosecond() % 1000,
        0,
        "microsecond precision"
    );
    let value = obj(serde_json::to_value(&task).expect("serialises"));
    assert_eq!(
        value["request_id"],
        Value::Null,
        "request_id is serialised as null"
    );
    assert_eq!(value["parent_task_id"], Value::Null);
    assert!(
        !value.contains_key("_trace_context"),
        "absent trace context is omitted"
    );
    let keys: Vec<&str> = value.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "task_id",
            "parent_task_id",
            "worker_type",
            "payload",
            "model_tier",
            "priority",
            "max_retries",
            "retry_count",
            "created_at",
            "request_id",
            "metadata"
        ]
    );
    let again = TaskMessage::new(&worker, Map::new());
    assert_ne!(task.task_id, again.task_id, "ids are fresh");
}

#[test]
fn minimal_task_message_takes_defaults() {
    let task: TaskMessage = parse("task_message_minimal.json");
    assert!(uuid::Uuid::parse_str(&task.task_id).is_ok());
    assert_eq!(task.model_tier, ModelTier::Standard);
    assert_eq!(task.priority, TaskPriority::Normal);
    assert_eq!((task.max_retries, task.retry_count), (2, 0));
    assert!(task.metadata.is_empty() && task.payload.is_empty());
    assert_eq!(task.trace_context, None);
    assert!((Utc::now() - task.created_at).num_seconds().abs() < 5);
    assert_eq!(task.result_subject().as_deref(), Ok("loom.results.default"));
}

#[test]
fn task_result_defaults() {
    let result: TaskResult = parse("task_result_minimal.json");
    assert!(result.token_usage.is_empty());
    assert_eq!(result.processing_time_ms, 0);
    assert!((Utc::now() - result.completed_at).num_seconds().abs() < 5);
    assert_eq!(
        (
            result.output.as_ref(),
            result.error.as_ref(),
            result.model_used.as_ref()
        ),
        (None, None, None)
    );
    let value = serde_json::to_value(&result).expect("serialises");
    assert_eq!(value["token_usage"], json!({}));
    assert_eq!(value["output"], Value::Null);
    let built = TaskResult::new("t", "w", TaskStatus::Completed);
    assert!(built.token_usage.is_empty() && built.processing_time_ms == 0);
}

#[test]
fn enum_strings_are_lowercase_and_case_sensitive() {
    for tier in ModelTier::ALL {
        assert_eq!(
            serde_json::to_value(tier).expect("serialises"),
            json!(tier.as_str())
        );
        assert_eq!(tier.as_str().parse::<ModelTier>(), Ok(tier));
    }
    for p in TaskPriority::ALL {
        assert_eq!(
            serde_json::to_value(p).expect("serialises"),
            json!(p.to_string())
        );
        assert_eq!(p.as_str().parse::<TaskPriority>(), Ok(p));
    }
    for s in TaskStatus::ALL {
        assert_eq!(
            serde_json::to_value(s).expect("serialises"),
            json!(s.to_string())
        );
        assert_eq!(s.as_str().parse::<TaskStatus>(), Ok(s));
    }
    assert_eq!(TaskPriority::default(), TaskPriority::Normal);
    assert!(TaskStatus::Completed.is_terminal() && TaskStatus::Failed.is_terminal());
    assert!(
        !TaskStatus::Pending.is_terminal()
            && !TaskStatus::Processing.is_terminal()
            && !TaskStatus::Retry.is_terminal()
    );

    let with = |key: &str, v: &str| {
        let mut t = fixture_value("task_message_minimal.json");
        t[key] = json!(v);
        serde_json::from_value::<TaskMessage>(t)
    };
    let err = with("model_tier", "LOCAL").expect_err("LOCAL is rejected");
    assert!(err.to_string().contains("LOCAL"), "{err}");
    assert!(with("priority", "HIGH").is_err());
    assert!(with("model_tier", "local").is_ok());
    assert!("LOCAL".parse::<ModelTier>().is_err());
    assert!("Normal".parse::<TaskPriority>().is_err());
    assert!("COMPLETED".parse::<TaskStatus>().is_err());
    let bad_status = json!({"task_id": "t", "worker_type": "w", "status": "Completed"});
    assert!(serde_json::from_value::<TaskResult>(bad_status).is_err());
}

#[test]
fn payload_must_be_an_object() {
    for payload in [json!([1, 2]), json!("text"), json!(3), Value::Null] {
        let raw = json!({"worker_type": "summarizer", "payload": payload});
        assert!(
            serde_json::from_value::<TaskMessage>(raw).is_err(),
            "{payload} accepted"
        );
    }
    let err = serde_json::from_value::<TaskMessage>(json!({"worker_type": "summarizer"}))
        .expect_err("no payload");
    assert!(err.to_string().contains("payload"), "{err}");
    let err =
        serde_json::from_value::<TaskMessage>(json!({"payload": {}})).expect_err("no worker_type");
    assert!(err.to_string().contains("worker_type"), "{err}");
    let goal = serde_json::from_value::<OrchestratorGoal>(json!({"context": {}}));
    assert!(goal.is_err(), "instruction is required");
}

#[test]
fn naive_datetime_is_read_as_utc() {
    let task: TaskMessage = parse("task_message_naive_datetime.json");
    let want = Utc
        .with_ymd_and_hms(2026, 3, 25, 10, 0, 0)
        .single()
        .expect("valid date")
        + Duration::microseconds(123_456);
    assert_eq!(task.created_at, want);
    let value = serde_json::to_value(&task).expect("serialises");
    assert_eq!(value["created_at"], "2026-03-25T10:00:00.123456Z");
}

#[test]
fn timestamps_serialise_like_pydantic() {
    let base: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 3, 25, 10, 0, 0)
        .single()
        .expect("valid date");
    let worker = WorkerName::try_from("w").expect("valid name");
    let task = TaskMessage::new(&worker, Map::new())
        .with_created_at(base + Duration::nanoseconds(123_456_789));
    assert_eq!(
        serde_json::to_value(&task).expect("serialises")["created_at"],
        "2026-03-25T10:00:00.123456Z"
    );
    let task = task.with_created_at(base);
    assert_eq!(
        serde_json::to_value(&task).expect("serialises")["created_at"],
        "2026-03-25T10:00:00Z"
    );
    assert_eq!(
        format_timestamp(&(base + Duration::microseconds(1))),
        "2026-03-25T10:00:00.000001Z"
    );
    // Offsets are converted to UTC; excess precision is truncated.
    let mut raw = fixture_value("task_message_minimal.json");
    raw["created_at"] = json!("2026-03-25T12:00:00.9999999+02:00");
    let task: TaskMessage = serde_json::from_value(raw).expect("offset accepted");
    assert_eq!(
        format_timestamp(&task.created_at),
        "2026-03-25T10:00:00.999999Z"
    );
    let mut raw = fixture_value("task_message_minimal.json");
    raw["created_at"] = json!("not a date");
    let err = serde_json::from_value::<TaskMessage>(raw).expect_err("garbage rejected");
    assert!(
        err.to_string().contains("invalid datetime 'not a date'"),
        "{err}"
    );
}

#[test]
fn lax_integers_are_accepted_like_pydantic() {
    let with = |v: Value| {
        let mut t = fixture_value("task_message_minimal.json");
        t["max_retries"] = v;
        serde_json::from_value::<TaskMessage>(t).map(|t| t.max_retries)
    };
    assert_eq!(with(json!(3)).ok(), Some(3));
    assert_eq!(with(json!(3.0)).ok(), Some(3));
    assert_eq!(with(json!("3")).ok(), Some(3));
    assert!(with(json!(3.5)).is_err());
    assert!(with(json!("three")).is_err());
    assert!(with(json!(-1)).is_err());
    let usage: TokenUsage =
        serde_json::from_value(json!({"prompt_tokens": "12", "completion_tokens": 3.0}))
            .expect("lax");
    assert_eq!((usage.prompt_tokens(), usage.completion_tokens()), (12, 3));
}

#[test]
fn token_usage_serialises_in_insertion_order() {
    let usage = TokenUsage::from_counts(412, 37);
    let text = String::from_utf8(to_python_json(&usage).expect("serialises")).expect("ascii");
    assert_eq!(text, r#"{"prompt_tokens": 412, "completion_tokens": 37}"#);
    let collected: TokenUsage = [("b", 1), ("a", 2), ("b", 3)].into_iter().collect();
    assert_eq!(collected.iter().collect::<Vec<_>>(), [("b", 3), ("a", 2)]);
}

#[test]
fn dead_letter_envelope_has_exactly_four_keys() {
    let raw = json!({"task_id": "t-9", "parent_task_id": "p-1", "worker_type": "summarizer", "payload": {}});
    let dl = DeadLetter::new(
        "rate_limited: tier 'local' has no available capacity",
        raw.clone(),
    );
    let value = obj(serde_json::to_value(&dl).expect("serialises"));
    assert_eq!(
        value.keys().collect::<Vec<_>>(),
        ["reason", "original_task", "task_id", "worker_type"]
    );
    assert_eq!(
        value["original_task"], raw,
        "original task is kept verbatim"
    );
    assert_eq!(value["task_id"], "t-9");

    let dl = DeadLetter::new("invalid_task_message: bad", json!([1]));
    let value = serde_json::to_value(&dl).expect("serialises");
    assert_eq!(
        value,
        json!({"reason": "invalid_task_message: bad", "original_task": [1], "task_id": null, "worker_type": null})
    );
}

#[test]
fn dead_letter_parsing_follows_the_python_consumer() {
    let envelope = json!({"task_id": "t-1", "worker_type": 7, "payload": {}});
    let dl: DeadLetter = serde_json::from_value(envelope.clone()).expect("parses");
    assert_eq!(dl.reason, "unknown");
    assert_eq!(
        dl.original_task, envelope,
        "missing original_task falls back to the envelope"
    );
    assert_eq!(dl.task_id.as_deref(), Some("t-1"));
    assert_eq!(dl.worker_type, None, "non-string worker_type reads as null");
}

#[test]
fn dead_letter_answers_caller_with_failed_result() {
    let dl: DeadLetter = parse("dead_letter_invalid.py.json");
    let result = dl.failed_result().expect("task_id is known");
    assert_eq!(result.status, TaskStatus::Failed);
    assert_eq!(result.task_id, "c1b2a3d4-0000-4000-8000-00000000dead");
    assert_eq!(result.worker_type, "");
    assert_eq!(
        result.subject().as_deref(),
        Ok("loom.results.mcp-0123456789ab")
    );
    let error = result.error.as_deref().expect("error text");
    assert!(
        error.starts_with("Task dead-lettered: invalid_task_message: "),
        "{error}"
    );

    let anonymous = DeadLetter::new("invalid_task_message: x", json!({"payload": {}}));
    assert_eq!(
        anonymous.failed_result(),
        None,
        "no task_id, nobody to answer"
    );
}

#[test]
fn malformed_worker_type_still_parses_then_fails_validation() {
    let raw = json!({"worker_type": "Bad.Name >", "payload": {}});
    let task: TaskMessage = serde_json::from_value(raw).expect("parses so it can be dead-lettered");
    let err = task.worker_name().expect_err("not a valid name");
    assert!(err.to_string().contains("Bad.Name >"), "{err}");
    let ok: TaskMessage = parse("task_message_minimal.json");
    assert_eq!(
        ok.worker_name().map(String::from).ok().as_deref(),
        Some("summarizer")
    );
}

#[test]
fn result_constructors_copy_task_identity() {
    let worker = WorkerName::try_from("summarizer").expect("valid name");
    let task = TaskMessage::new(&worker, Map::new())
        .with_parent_task_id("goal-1")
        .with_request_id("goal-1");
    let ok = TaskResult::completed(&task, obj(json!({"summary": "s"})))
        .with_model_used("llama3.2:3b")
        .with_token_usage(TokenUsage::from_counts(1, 2))
        .with_processing_time_ms(15);
    assert_eq!(
        (ok.task_id.as_str(), ok.parent_task_id.as_deref()),
        (task.task_id.as_str(), Some("goal-1"))
    );
    assert_eq!(ok.status, TaskStatus::Completed);
    assert!(ok.is_terminal());
    assert_eq!(
        ok.output.as_ref().map(|o| o["summary"].clone()),
        Some(json!("s"))
    );
    let failed = TaskResult::failed(&task, "No backend for tier: standard");
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("No backend for tier: standard")
    );
    assert_eq!(failed.output, None);
    assert_eq!(failed.subject().as_deref(), Ok("loom.results.goal-1"));
}

#[test]
fn goal_defaults_and_result_subject() {
    let goal =
        OrchestratorGoal::new("MCP tool call").with_context(obj(json!({"file_ref": "a.pdf"})));
    assert!(uuid::Uuid::parse_str(&goal.goal_id).is_ok());
    assert_eq!(goal.priority, TaskPriority::Normal);
    assert_eq!(
        goal.result_subject(),
        Ok(format!("loom.results.{}", goal.goal_id))
    );
    let value = obj(serde_json::to_value(&goal).expect("serialises"));
    assert_eq!(
        value.keys().collect::<Vec<_>>(),
        [
            "goal_id",
            "instruction",
            "context",
            "request_id",
            "priority",
            "created_at"
        ]
    );
    assert_eq!(value["request_id"], Value::Null);
}

#[test]
fn pipeline_final_result_keeps_its_timeline() {
    let result: TaskResult = parse("pipeline_final_result.py.json");
    assert_eq!(result.parent_task_id, None);
    assert_eq!(result.worker_type, "doc_pipeline");
    let output = result.output.as_ref().expect("completed with output");
    let timeline = output["_timeline"].as_array().expect("_timeline is a list");
    assert_eq!(timeline.len(), 2);
    assert_eq!(timeline[0]["stage"], "extract");
    assert!(result.token_usage.is_empty());
}

#[test]
fn failed_result_fixture_parses() {
    let result: TaskResult = parse("task_result_failed.py.json");
    assert_eq!(result.status, TaskStatus::Failed);
    let error = result.error.as_deref().expect("error text");
    assert!(
        error.starts_with("Input validation: [\"input: missing required field 'text'\""),
        "{error}"
    );
    assert_eq!(result.token_usage, TokenUsage::from_counts(0, 0));
}

#[test]
fn cancel_request_round_trips() {
    let cancel =
        CancelRequest::new("5b0c7f0e-8d0c-4a53-9a56-2f3c1c0f7a11").with_reason("client cancelled");
    let value = serde_json::to_value(&cancel).expect("serialises");
    assert_eq!(
        value,
        json!({"task_id": "5b0c7f0e-8d0c-4a53-9a56-2f3c1c0f7a11", "reason": "client cancelled"})
    );
    assert_eq!(
        serde_json::from_value::<CancelRequest>(value).ok(),
        Some(cancel.clone())
    );
    assert_eq!(
        cancel.subject().as_deref(),
        Ok("loom.control.cancel.5b0c7f0e-8d0c-4a53-9a56-2f3c1c0f7a11")
    );
    let bare: CancelRequest =
        serde_json::from_value(json!({"task_id": "t"})).expect("reason optional");
    assert_eq!(bare.reason, None);
    // Dotted ids are several literal tokens (gateway goal ids look like `gw-x.1`)…
    assert_eq!(
        CancelRequest::new("gw-x.1").subject().as_deref(),
        Ok("loom.control.cancel.gw-x.1")
    );
    // …but wildcards and empty tokens never reach a subject.
    assert!(CancelRequest::new("a.*").subject().is_err());
    assert!(CancelRequest::new("a..b").subject().is_err());
}

#[test]
fn python_encoding_escapes_like_json_dumps() {
    let value = json!({"s": "é😀\u{7f}\n\"", "f": [1e-05, 1e16, 0.5, 2.0], "n": null, "b": [true, false], "e": {}, "a": []});
    let text = String::from_utf8(to_python_json(&value).expect("serialises")).expect("ascii");
    assert_eq!(
        text,
        r#"{"s": "\u00e9\ud83d\ude00\u007f\n\"", "f": [1e-05, 1e+16, 0.5, 2.0], "n": null, "b": [true, false], "e": {}, "a": []}"#
    );
}

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        // Quarters are exact in binary, so the round trip cannot hit float-parsing rounding.
        (-4000i32..4000).prop_map(|n| Value::from(f64::from(n) / 4.0)),
        Just(Value::Null),
    ]
}

fn arb_task() -> impl Strategy<Value = TaskMessage> {
    (
        "[a-z0-9-]{1,36}",
        proptest::option::of("[a-z0-9.-]{1,20}"),
        "[a-z][a-z0-9_]{0,10}",
        proptest::collection::btree_map(".{0,8}", arb_scalar(), 0..5),
        0usize..3,
        0usize..4,
        0u32..10,
        0i64..4_102_444_800_000_000,
        proptest::option::of(".{0,10}"),
    )
        .prop_map(
            |(id, parent, worker, payload, tier, prio, retries, micros, request)| {
                let worker =
                    WorkerName::try_from(worker.as_str()).expect("strategy makes valid names");
                let mut task = TaskMessage::new(&worker, payload.into_iter().collect())
                    .with_task_id(id)
                    .with_model_tier(ModelTier::ALL[tier])
                    .with_priority(TaskPriority::ALL[prio])
                    .with_max_retries(retries)
                    .with_created_at(Utc.timestamp_micros(micros).single().expect("in range"));
                task.parent_task_id = parent;
                task.request_id = request;
                task
            },
        )
}

proptest! {
    #[test]
    fn task_messages_round_trip_through_both_encoders(task in arb_task()) {
        let compact = serde_json::to_vec(&task).expect("serialises");
        prop_assert_eq!(&serde_json::from_slice::<TaskMessage>(&compact).expect("parses"), &task);
        let python = to_python_json(&task).expect("serialises");
        prop_assert!(python.is_ascii());
        prop_assert_eq!(&serde_json::from_slice::<TaskMessage>(&python).expect("parses"), &task);
    }
}
