//! Integration tests for loom-core: wire compatibility with loom-ai 0.9.0, JSON-Schema
//! contracts and the workspace path jail. One binary, one module per concept.

mod integration {
    mod contract;
    mod wire;
    mod workspace;
}
