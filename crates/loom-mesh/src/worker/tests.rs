//! Unit tests of the worker's pure parts; the lifecycle is tested in `tests/mesh/worker.rs`.

use super::*;

#[test]
fn tier_comes_from_the_subject_last_token() {
    assert_eq!(
        tier_from_subject("loom.tasks.echo.local"),
        Some(ModelTier::Local)
    );
    assert_eq!(
        tier_from_subject("loom.tasks.echo.frontier"),
        Some(ModelTier::Frontier)
    );
    assert_eq!(tier_from_subject("loom.tasks.echo.LOCAL"), None);
    assert_eq!(tier_from_subject("custom"), None);
}

#[test]
fn token_usage_is_normalised_to_both_keys() {
    let usage: TokenUsage = [("completion_tokens", 4), ("cache_tokens", 9)]
        .into_iter()
        .collect();
    let normalised = normalise_token_usage(&usage);
    assert_eq!(
        serde_json::to_string(&normalised).expect("serialises"),
        r#"{"prompt_tokens":0,"completion_tokens":4}"#
    );
    assert_eq!(
        serde_json::to_string(&normalise_token_usage(&TokenUsage::new())).expect("serialises"),
        r#"{"prompt_tokens":0,"completion_tokens":0}"#
    );
}

#[test]
fn process_errors_say_whether_to_retry() {
    let e = ProcessError::retryable("busy").with_model_used("m");
    assert!(e.retryable);
    assert_eq!(e.to_string(), "busy");
    assert!(!ProcessError::fatal("no").retryable);
}

#[test]
fn a_cancel_that_arrives_first_fires_when_the_task_registers() {
    let registry = Arc::new(CancelRegistry::new());
    assert!(!registry.cancel("t-early", Some("client cancelled".into())));
    let token = CancellationToken::new();
    let registration = registry.register("t-early", token.clone());
    assert!(token.is_cancelled());
    assert_eq!(
        registration.slot().reason().as_deref(),
        Some("client cancelled")
    );
    assert_eq!(registry.running(), 1);
    drop(registration);
    assert_eq!(registry.running(), 0);

    // Only once: a second task with that id is not cancelled.
    let token = CancellationToken::new();
    let _registration = registry.register("t-early", token.clone());
    assert!(!token.is_cancelled());
    assert!(registry.cancel("t-early", None));
    assert!(token.is_cancelled());
}

#[test]
fn early_cancels_are_bounded() {
    let registry = Arc::new(CancelRegistry::new());
    for i in 0..EARLY_CANCEL_CAPACITY + 10 {
        registry.cancel(&format!("t-{i}"), None);
    }
    let token = CancellationToken::new();
    let _oldest = registry.register("t-0", token.clone());
    assert!(
        !token.is_cancelled(),
        "the oldest early cancel was forgotten"
    );
    let token = CancellationToken::new();
    let _newest = registry.register(&format!("t-{}", EARLY_CANCEL_CAPACITY + 9), token.clone());
    assert!(token.is_cancelled());
}

#[derive(Default)]
struct Counters {
    running: std::sync::atomic::AtomicUsize,
    max_running: std::sync::atomic::AtomicUsize,
}

struct Sleepy(Arc<Counters>);

impl SyncProcessor for Sleepy {
    fn process_sync(
        &self,
        task: &TaskMessage,
        _ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError> {
        use std::sync::atomic::Ordering::SeqCst;
        if task.payload.contains_key("panic") {
            panic!("sync processor panics on purpose");
        }
        let now = self.0.running.fetch_add(1, SeqCst) + 1;
        self.0.max_running.fetch_max(now, SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        self.0.running.fetch_sub(1, SeqCst);
        Err(ProcessError::fatal("sync failure"))
    }
}

fn task_with(payload: serde_json::Value) -> TaskMessage {
    let serde_json::Value::Object(payload) = payload else {
        panic!("payload must be an object");
    };
    TaskMessage::new(
        &loom_core::WorkerName::try_from("sync").expect("name"),
        payload,
    )
}

async fn max_overlap(serialize: bool) -> usize {
    let counters = Arc::new(Counters::default());
    let mut p = BlockingProcessor::new(Sleepy(counters.clone()));
    if serialize {
        p = p.serialize_writes();
    }
    let task = task_with(serde_json::json!({}));
    let ctx = TaskContext::new(ModelTier::Local);
    let calls = futures::future::join_all((0..4).map(|_| p.process(&task, &ctx))).await;
    for result in calls {
        assert_eq!(result.expect_err("fails").message, "sync failure");
    }
    counters
        .max_running
        .load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serialize_writes_prevents_overlapping_sync_calls() {
    assert_eq!(max_overlap(true).await, 1);
    assert!(max_overlap(false).await > 1);
}

#[tokio::test]
async fn a_sync_panic_reaches_the_worker_as_a_panic() {
    use futures::FutureExt;
    let p = BlockingProcessor::new(Sleepy(Arc::default()));
    let task = task_with(serde_json::json!({"panic": true}));
    let ctx = TaskContext::new(ModelTier::Local);
    let outcome = std::panic::AssertUnwindSafe(p.process(&task, &ctx))
        .catch_unwind()
        .await;
    assert!(outcome.is_err());
}
