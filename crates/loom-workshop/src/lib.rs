//! Loom's Workshop: the operations behind the gateway's `workshop.*` and `session.*`
//! tools and `loom workshop`.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config_manager`] | worker configs across the base folder and apps: list, read, validate-then-save |
//! | [`history`] | the SQLite database (`$LOOM_HOME/workshop.db`) and worker version history |
//! | [`bench`](mod@bench) | the test bench: one worker config against one payload, no bus |
//! | [`eval`] | eval suites, scoring (`exact_match`, `field_match`, `llm_judge`), baselines, comparison |
//! | [`impact`] | which pipeline stages a worker change affects |
//! | [`dead_letters`] | a persistent store of `loom.tasks.dead_letter`, with replay |
//! | [`sessions`] | work sessions on a git repository: markers, pull, sync, hooks |
//! | [`home`] | `$LOOM_HOME` or `~/.loom` |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use loom_workshop::{Workshop, WorkshopOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let workshop = Workshop::new(WorkshopOptions::new(dir.path().join("configs"), dir.path().join("home")));
//! let yaml = "name: echo\nworker_kind: processor\nprocessing_backend: echo\n";
//! let saved = workshop.update_worker("echo", yaml, Some("first version")).await?;
//! assert!(saved.success);
//!
//! let run = workshop.test_worker("echo", serde_json::json!({"x": 1}).as_object().cloned().unwrap_or_default(), None).await?;
//! assert_eq!(run.output, serde_json::json!({"x": 1}).as_object().cloned());
//!
//! let detail = workshop.get_worker("echo").await?;
//! assert_eq!(detail.version_history.len(), 1);
//! # Ok(())
//! # }
//! ```

pub mod bench;
pub mod config_manager;
pub mod dead_letters;
mod error;
pub mod eval;
pub mod history;
pub mod home;
pub mod impact;
pub mod sessions;
mod workshop;

pub use error::WorkshopError;
pub use workshop::{UpdateResult, WorkerDetail, Workshop, WorkshopOptions};
