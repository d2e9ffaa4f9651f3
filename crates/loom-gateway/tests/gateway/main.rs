//! Integration tests of the gateway.

mod bridge;
mod catalog;
mod mcp;
mod resources;
mod workshop;
