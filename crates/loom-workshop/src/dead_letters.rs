//! The dead-letter store: every envelope the router publishes on
//! `loom.tasks.dead_letter`, kept in the Workshop database, listed newest first and
//! replayable (mesh spec §5.5; gateway spec §13.28).
//!
//! The original's MCP tools read an in-memory store nothing ever subscribed, so the list
//! was always empty. Here [`DeadLetterStore::listen`] subscribes to the live subject (before
//! returning, so nothing published afterwards is missed) and persists each envelope. The
//! store keeps the newest [`MAX_DEAD_LETTERS`] entries.
//!
//! Replay publishes the original task to `loom.tasks.incoming` with a **new task id**
//! (the old one already has a FAILED answer, and reusing it would confuse anyone
//! correlating by it), removes the entry and records the replay (old and new id).

use std::sync::Arc;

use futures::StreamExt;
use loom_bus::{Bus, SubscribeError};
use loom_core::message::DeadLetter;
use loom_core::subject::{TASKS_DEAD_LETTER, TASKS_INCOMING};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::error::WorkshopError;
use crate::eval::check_uuid;
use crate::history::{Db, now};

/// Most entries kept; older ones are dropped as new ones arrive.
pub const MAX_DEAD_LETTERS: i64 = 1000;

/// Entries listed when no limit is given.
pub const DEFAULT_LIST_LIMIT: usize = 50;

/// One stored dead letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DeadLetterEntry {
    /// The entry's id (a UUID).
    pub id: String,
    /// When it arrived (RFC 3339, UTC).
    pub timestamp: String,
    /// Why the router refused the task.
    pub reason: String,
    /// The task's id, when it had one.
    pub task_id: Option<String>,
    /// The task's worker type, when it had one.
    pub worker_type: Option<String>,
    /// The task as the router received it.
    pub original_task: Value,
}

/// A page of entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetterPage {
    /// The entries, newest first.
    pub entries: Vec<DeadLetterEntry>,
    /// How many are on this page.
    pub count: usize,
    /// How many are stored.
    pub total: usize,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replayed {
    /// Always true (failures are errors).
    pub success: bool,
    /// The entry replayed (now removed).
    pub entry_id: String,
    /// The id the replayed task carries.
    pub task_id: String,
    /// The id it had before.
    pub original_task_id: Option<String>,
}

/// Dead letters in the Workshop database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeadLetterStore {
    db: Db,
}

impl DeadLetterStore {
    /// A store in `db`.
    pub fn new(db: Db) -> Self {
        DeadLetterStore { db }
    }

    /// Stores one envelope; returns its entry id.
    pub async fn record(&self, letter: DeadLetter) -> Result<String, WorkshopError> {
        let id = uuid::Uuid::new_v4().to_string();
        let row = id.clone();
        let original = letter.original_task.to_string();
        self.db
            .run(move |c| {
                c.execute(
                    "INSERT INTO dead_letters (id, received_at, reason, task_id, worker_type, original_task)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![row, now(), letter.reason, letter.task_id, letter.worker_type, original],
                )?;
                c.execute(
                    "DELETE FROM dead_letters WHERE rowid NOT IN
                        (SELECT rowid FROM dead_letters ORDER BY rowid DESC LIMIT ?1)",
                    params![MAX_DEAD_LETTERS],
                )?;
                Ok(())
            })
            .await?;
        Ok(id)
    }

    /// Entries newest first, `offset` skipped, at most `limit`.
    pub async fn list(&self, limit: usize, offset: usize) -> Result<DeadLetterPage, WorkshopError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (entries, total) = self
            .db
            .run(move |c| {
                let total: i64 =
                    c.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))?;
                let mut stmt = c.prepare(
                    "SELECT id, received_at, reason, task_id, worker_type, original_task
                     FROM dead_letters ORDER BY rowid DESC LIMIT ?1 OFFSET ?2",
                )?;
                let rows = stmt.query_map(params![limit, offset], entry_row)?;
                let entries: Vec<DeadLetterEntry> = rows.collect::<rusqlite::Result<_>>()?;
                Ok((entries, total))
            })
            .await?;
        Ok(DeadLetterPage {
            count: entries.len(),
            total: usize::try_from(total).unwrap_or(0),
            entries,
        })
    }

    /// Publishes entry `entry_id`'s task again, with a new task id, to
    /// `loom.tasks.incoming` on `bus`, then removes the entry.
    pub async fn replay(&self, entry_id: &str, bus: &dyn Bus) -> Result<Replayed, WorkshopError> {
        check_uuid("entry_id", entry_id)?;
        let id = entry_id.to_owned();
        let entry = self
            .db
            .run(move |c| {
                c.query_row(
                    "SELECT id, received_at, reason, task_id, worker_type, original_task
                     FROM dead_letters WHERE id = ?1",
                    params![id],
                    entry_row,
                )
                .optional()
            })
            .await?
            .ok_or_else(|| WorkshopError::DeadLetterNotFound(entry_id.to_owned()))?;
        let Value::Object(mut task) = entry.original_task else {
            return Err(WorkshopError::NotReplayable {
                id: entry_id.to_owned(),
                reason: "the original task is not a JSON object".to_owned(),
            });
        };
        let original_task_id = task
            .get("task_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let new_id = uuid::Uuid::new_v4().to_string();
        task.insert("task_id".to_owned(), Value::String(new_id.clone()));
        let body = Value::Object(task).to_string();
        bus.publish(TASKS_INCOMING, body.into_bytes().into())
            .await
            .map_err(|e| WorkshopError::Publish {
                subject: TASKS_INCOMING.to_owned(),
                message: e.to_string(),
            })?;
        let (id, new, old) = (
            entry_id.to_owned(),
            new_id.clone(),
            original_task_id.clone(),
        );
        self.db
            .run(move |c| {
                let tx = c.transaction()?;
                tx.execute("DELETE FROM dead_letters WHERE id = ?1", params![id])?;
                tx.execute(
                    "INSERT INTO dead_letter_replays (id, entry_id, original_task_id, new_task_id, replayed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![uuid::Uuid::new_v4().to_string(), id, old, new, now()],
                )?;
                tx.commit()
            })
            .await?;
        Ok(Replayed {
            success: true,
            entry_id: entry_id.to_owned(),
            task_id: new_id,
            original_task_id,
        })
    }

    /// Subscribes to `loom.tasks.dead_letter` on `bus` (done when this returns) and
    /// stores every envelope until `cancel` fires.
    pub async fn listen(
        &self,
        bus: Arc<dyn Bus>,
        cancel: CancellationToken,
    ) -> Result<JoinHandle<()>, SubscribeError> {
        let mut sub = bus.subscribe(TASKS_DEAD_LETTER, None).await?;
        if let Err(e) = bus.flush().await {
            warn!(error = %e, "Cannot flush after subscribing to dead letters.");
        }
        let store = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = cancel.cancelled() => break,
                    m = sub.next() => match m {
                        Some(m) => m,
                        None => break,
                    },
                };
                let letter: DeadLetter = match message.json() {
                    Ok(l) => l,
                    Err(e) => {
                        warn!(error = %e, "Ignoring a dead letter that is not a JSON object.");
                        continue;
                    }
                };
                match store.record(letter).await {
                    Ok(id) => debug!(entry = %id, "Stored a dead letter."),
                    Err(e) => warn!(error = %e, "Cannot store a dead letter."),
                }
            }
        }))
    }
}

fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetterEntry> {
    let original: String = r.get(5)?;
    Ok(DeadLetterEntry {
        id: r.get(0)?,
        timestamp: r.get(1)?,
        reason: r.get(2)?,
        task_id: r.get(3)?,
        worker_type: r.get(4)?,
        original_task: serde_json::from_str(&original).unwrap_or(Value::String(original)),
    })
}
