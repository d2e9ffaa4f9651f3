//! The loom-bus integration tests, one binary (ripgrep style): the conformance suite
//! runs every behaviour against both `MemoryBus` and `NatsBus` on a real nats-server.

#[macro_use]
mod util;

mod conformance;
mod memory_only;
mod nats_only;
