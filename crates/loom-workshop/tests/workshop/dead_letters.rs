//! Dead letters from a real router over a real nats-server: stored, listed, replayed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use loom_bus::{Bus, NatsBus, NatsOptions};
use loom_core::config::RouterRules;
use loom_core::subject::TASKS_INCOMING;
use loom_llm::TierBackends;
use loom_testkit::NatsServer;
use loom_workshop::WorkshopError;
use loom_workshop::dead_letters::DeadLetterPage;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{within, workshop};

async fn connect(server: &NatsServer) -> Arc<dyn Bus> {
    Arc::new(
        within("connect", NatsBus::connect(NatsOptions::new(&server.url())))
            .await
            .expect("connect to nats-server"),
    )
}

/// Polls the store until it holds `n` entries.
async fn until_stored(w: &loom_workshop::Workshop, n: usize) -> DeadLetterPage {
    within("dead letters stored", async {
        loop {
            let page = w.dead_letters().list(50, 0).await.expect("list");
            if page.total >= n {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test]
async fn dead_letters_from_the_live_subject_are_stored_listed_and_replayed_with_a_new_id() {
    let server = NatsServer::start().expect("nats-server");
    let shutdown = CancellationToken::new();
    let mesh = connect(&server).await;
    let _router =
        loom_mesh::router::spawn_router(mesh.clone(), RouterRules::default(), shutdown.clone())
            .await
            .expect("router");
    let dir = tempfile::tempdir().expect("tempdir");
    let w = workshop(dir.path(), TierBackends::new());
    let gateway = connect(&server).await;
    let listener = w
        .dead_letters()
        .listen(gateway.clone(), shutdown.child_token())
        .await
        .expect("subscribed");

    // A task the router cannot parse (payload is not an object) is dead-lettered.
    let client = connect(&server).await;
    let mut incoming = client
        .subscribe(TASKS_INCOMING, None)
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    let bad = json!({"task_id": "t-1", "worker_type": "echo", "payload": "not an object"});
    client
        .publish(TASKS_INCOMING, bad.to_string().into_bytes().into())
        .await
        .expect("publish");
    let _ = within("the bad task", incoming.next()).await;

    let page = until_stored(&w, 1).await;
    assert_eq!((page.count, page.total), (1, 1));
    let entry = &page.entries[0];
    assert_eq!(entry.task_id.as_deref(), Some("t-1"));
    assert_eq!(entry.worker_type.as_deref(), Some("echo"));
    assert!(
        entry.reason.starts_with("invalid_task_message"),
        "{}",
        entry.reason
    );
    assert_eq!(entry.original_task, bad);

    // Replay: the task goes back to the router with a new id, and the entry is gone.
    let replayed = w
        .dead_letters()
        .replay(&entry.id, gateway.as_ref())
        .await
        .expect("replayed");
    assert_ne!(replayed.task_id, "t-1");
    assert_eq!(replayed.original_task_id.as_deref(), Some("t-1"));
    let again = within("the replayed task", incoming.next())
        .await
        .expect("a message");
    let task: Value = again.json().expect("json");
    assert_eq!(task["task_id"], json!(replayed.task_id));
    assert_eq!(task["payload"], bad["payload"]);
    // Still malformed, so the router dead-letters it again, under its new id.
    let page = within("the second dead letter", async {
        loop {
            let page = w.dead_letters().list(50, 0).await.expect("list");
            if page
                .entries
                .iter()
                .any(|e| e.task_id.as_deref() == Some(replayed.task_id.as_str()))
            {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(page.total, 1, "the replayed entry was removed");

    assert!(matches!(
        w.dead_letters().replay(&entry.id, gateway.as_ref()).await,
        Err(WorkshopError::DeadLetterNotFound(_))
    ));
    assert!(matches!(
        w.dead_letters()
            .replay("../../etc/passwd", gateway.as_ref())
            .await,
        Err(WorkshopError::InvalidId { .. })
    ));

    // Entries persist: a new store over the same database sees them.
    let reopened = workshop(dir.path(), TierBackends::new());
    assert_eq!(
        reopened
            .dead_letters()
            .list(10, 0)
            .await
            .expect("list")
            .total,
        1
    );
    shutdown.cancel();
    let _ = within("listener stops", listener).await;
}
