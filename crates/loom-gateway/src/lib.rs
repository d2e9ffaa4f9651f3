//! Loom's MCP gateway: one YAML file turns the mesh into MCP tools and resources.
//!
//! | module | what it holds |
//! |---|---|
//! | [`catalog`] | tool discovery: workers, pipelines and query backends as MCP tool definitions |
//! | [`bridge`] | tool calls over the bus: one multiplexed result subscription, progress, cancel |
//! | [`resources`] | workspace files as `workspace:///…` resources, with change events |
//! | [`server`] | the rmcp `ServerHandler`: tools, resources, progress, cancellation, notifications |
//! | [`http`] | streamable HTTP: `/mcp`, `/health`, Host/Origin checks, bearer tokens, body limit |
//! | [`gateway`] | assembly: embedded mesh or NATS, bridge, catalog, resources; stdio serving |
//! | [`upstream`] | upstream MCP servers (`tools.mcp_servers`) re-exported: tools, resources, prompts, list-changed |
//! | [`workshop_tools`], [`session_tools`], [`local_tools`] | the `workshop.*` and `session.*` tools, run in the gateway over `loom-workshop` |
//!
//! Design notes on protocol eras and rmcp live in `src/README.md`.

pub mod bridge;
pub mod catalog;
pub mod gateway;
pub mod http;
pub mod local_tools;
pub mod resources;
pub mod server;
pub mod session_tools;
pub mod upstream;
pub mod workshop_tools;

pub use gateway::{Gateway, GatewayError, GatewayOptions, check_queries};
pub use http::{HttpOptions, HttpServer};
pub use server::McpHandler;
