//! Log setup: `tracing` to stderr, never stdout (stdout carries results and, for
//! `loom mcp` over stdio, the protocol itself).

use tracing_subscriber::EnvFilter;

/// Installs the subscriber: `RUST_LOG` if set, else info (warn when `quiet_by_default`;
/// debug with -v, trace with -vv, error with -q). ANSI colour only when stderr is a
/// terminal and `NO_COLOR` is unset.
pub(crate) fn init(verbose: u8, quiet: bool, quiet_by_default: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) if quiet_by_default => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // rmcp logs every stateless request at info; only its warnings matter to operators.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let rmcp = if verbose > 0 || quiet {
            default
        } else {
            "warn"
        };
        EnvFilter::new(format!("{default},rmcp={rmcp}"))
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}
