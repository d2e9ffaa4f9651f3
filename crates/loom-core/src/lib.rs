//! The vocabulary every Loom component shares.
//!
//! `loom-core` holds what Python and Rust parts of a mesh must agree on, and what
//! every other crate needs, without any network I/O:
//!
//! | module | what it holds |
//! |---|---|
//! | [`message`] | `TaskMessage`, `TaskResult`, `OrchestratorGoal` with loom-ai 0.9.0's JSON |
//! | [`subject`] | the `loom.*` NATS subjects |
//! | [`name`] | validated worker, pipeline and stage names |
//! | [`contract`] | payload and output checks against JSON Schema (Draft 2020-12) |
//! | [`config`] | worker, pipeline, router-rules and gateway YAML, with every error at once |
//! | [`glob`] | `fnmatch`-style path patterns (resource patterns, `.siloignore` lines) |
//! | [`python`] | Python's `repr()`/`str()` of JSON values, for texts that must match the original |
//! | [`workspace`] | file refs that cannot escape their workspace root |

pub mod config;
pub mod contract;
pub mod glob;
pub mod message;
pub mod name;
pub mod python;
pub mod subject;
pub mod workspace;

pub use name::{PipelineName, StageName, WorkerName};
