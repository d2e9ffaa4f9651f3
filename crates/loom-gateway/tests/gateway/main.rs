//! Integration tests of the gateway.

mod bridge;
mod catalog;
mod common;
mod federation;
mod mcp;
mod resources;
mod workshop;
