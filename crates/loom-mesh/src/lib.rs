//! Loom's actors and the runtime that runs them.
//!
//! | module | what it holds |
//! |---|---|
//! | [`actor`] | the runtime: bounded concurrency, reload, shutdown that drains |
//! | [`reply`] | answering callers with `TaskResult`s, also for tasks that never parsed |
//! | [`router`] | `loom.tasks.incoming` → `loom.tasks.{worker_type}.{tier}`, dead letters |
//! | [`rate_limit`] | the router's per-tier token buckets |
//! | [`worker`] | the task lifecycle every worker shares: contracts, timeout, retries, cancel |
//! | [`llm_worker`] | the LLM worker: prompt, knowledge, file refs, tool loop, JSON output |
//! | [`mcp`] | `mcp_servers` sections as a filtered MCP registry: worker tools, `mcp_tool` stages |
//! | [`mesh`] | a whole mesh in one process: plan from configs, start, join |
//! | [`processors`] | built-in non-LLM processors: `echo`, `text_stats`, `subprocess` |
//! | [`pipeline`] | the pipeline orchestrator, and `submit_goal` for clients |
//! | [`task_client`] | `submit_task`: one task through the router, waiting for its result |

pub mod actor;
pub mod llm_worker;
pub mod mcp;
pub mod mesh;
pub mod pipeline;
pub mod processors;
pub mod rate_limit;
pub mod reply;
pub mod router;
pub mod task_client;
pub mod worker;
