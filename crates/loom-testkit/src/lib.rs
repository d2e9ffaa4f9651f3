//! Test helpers for Loom: a real `nats-server` on a free loopback port, an LLM HTTP
//! stand-in ([`llm`]) and temporary workspaces.
//!
//! This crate is a dev-dependency only and depends on no other Loom crate.
//!
//! ```no_run
//! use loom_testkit::{NatsServer, TempWorkspace};
//!
//! let mut server = NatsServer::start()?;
//! assert!(server.url().starts_with("nats://127.0.0.1:"));
//! server.restart()?; // same port, so clients can reconnect
//!
//! let ws = TempWorkspace::new()?;
//! ws.write("docs/a.txt", "hello")?;
//! # Ok::<(), loom_testkit::TestkitError>(())
//! ```

mod error;
mod nats;
mod workspace;

pub use error::TestkitError;
pub use nats::{NATS_SERVER_READY_TIMEOUT, NatsServer};
pub use workspace::TempWorkspace;

pub mod llm;
pub mod mcp_servers;
pub use llm::{LlmStandIn, RecordedRequest, Reply};
