//! Loom's MCP client side: [`ServerSpec`]s for stdio and streamable-HTTP servers, one
//! [`Client`] per server (on rmcp, both protocol eras), and a [`Registry`] that federates
//! their tools, resources and prompts behind loom-llm's [`ToolHost`](loom_llm::ToolHost).
//!
//! - [`ServerSpec::stdio`] / [`ServerSpec::http`] validate at construction.
//! - [`Client`]: a stdio child in its own process group, dying with this process, with an
//!   allow-listed environment and its stderr tail kept for [`McpError::Exited`]; or one
//!   long-lived HTTP client per server. Connects with `server/discover` (2026-07-28) and
//!   falls back to `initialize` (2025-11-25); every request has a timeout, and a timed-out
//!   call is cancelled on the server.
//! - [`Registry`]: lazy parallel connect, isolated failures, names per [`PrefixMode`],
//!   cached tool lists refreshed on list-changed, reconnect-and-retry once, HTTP 429
//!   retried per [`RetryPolicy`](loom_llm::RetryPolicy), [`Registry::watch`], and
//!   [`Registry::close`].
//!
//! ```no_run
//! use loom_mcp::{Registry, ServerSpec};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Registry::new([
//!     ServerSpec::stdio("git", "uvx", ["mcp-server-git", "--repo", "."], [] as [(&str, &str); 0], None)?,
//!     ServerSpec::http("hosted", "https://example.com/mcp/", [("Authorization", "Bearer sk-…")], None)?,
//! ])?;
//! for tool in registry.tools().await {
//!     println!("{} ({})", tool.name, tool.server);
//! }
//! let out = registry.call("git.git_status", serde_json::Map::new()).await?;
//! println!("{}", out.text);
//! registry.close().await;
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod config;
pub mod error;
pub mod naming;
pub mod output;
pub mod registry;
pub mod retry;
pub mod spec;

pub use client::{Change, Client, ClientOptions, Progress, ProgressCallback};
pub use config::{ServersFileError, load_servers_file};
pub use error::McpError;
pub use naming::PrefixMode;
pub use registry::{
    PromptInfo, Registry, RegistryOptions, ResourceInfo, ResourceTemplateInfo, ToolEvent,
    ToolEventKind, ToolInfo, ToolOutput, Watch,
};
pub use retry::retry_rate_limited;
pub use spec::{SamplingHandler, ServerSpec, SpecError, Transport};
