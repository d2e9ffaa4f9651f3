//! loom-mcp against real MCP servers: server-everything (npm, stdio and streamable HTTP),
//! mcp-server-git (PyPI), a 2026-07-28 Python SDK server, a misbehaving fixture server, a
//! local HTTP server answering 429, and a process killed without closing its registry.
//! The servers are installed by scripts/install-mcp-test-servers (see `common`).

mod agent;
mod common;
mod lifecycle;
mod orphan;
mod rate_limit;
mod registry;
mod sampling;
mod servers;
