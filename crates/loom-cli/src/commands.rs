//! One module per subcommand, each with its clap `Args` and a `run`.

pub(crate) mod agent;
pub(crate) mod mcp;
pub(crate) mod pipeline;
pub(crate) mod processor;
pub(crate) mod query;
pub(crate) mod router;
pub(crate) mod submit;
pub(crate) mod tools;
pub(crate) mod up;
pub(crate) mod validate;
pub(crate) mod worker;
pub(crate) mod workshop;
