//! loom-query integration tests: one binary (style §8), modules by concept.

#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod common;

mod config;
mod ingest;
mod injection;
mod schema;
mod sqlite;
mod vector;
