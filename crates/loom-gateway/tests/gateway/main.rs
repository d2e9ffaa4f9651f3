//! Integration tests of the gateway.

mod bridge;
mod catalog;
mod federation;
mod mcp;
mod resources;
mod workshop;
