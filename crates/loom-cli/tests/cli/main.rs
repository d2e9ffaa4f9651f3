//! Drives the built `loom` binary.

mod mcp;
mod mesh;
mod validate;
