//! Integration tests of loom-workshop: real files, SQLite, git repositories, a real
//! nats-server and the LLM HTTP stand-in.

mod common;
mod configs;
mod dead_letters;
mod evals;
mod sessions;
