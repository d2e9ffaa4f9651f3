//! Integration tests of the mesh, each run on the in-process bus and on a real
//! nats-server started by loom-testkit.

mod common;
mod embedded;
mod llm_worker;
mod mcp;
mod pipeline;
mod router;
mod worker;
