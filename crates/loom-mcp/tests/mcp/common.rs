//! Specs of the real test servers, fixtures, timeouts. Locating (and installing) the
//! servers is loom-testkit's (`loom_testkit::mcp_servers`), shared with the gateway's
//! tests.

use std::time::Duration;

use loom_mcp::{ClientOptions, RegistryOptions, ServerSpec};
use loom_testkit::mcp_servers;
pub(crate) use loom_testkit::mcp_servers::{
    Background, everything_js, free_port, mcp_fixture as fixture, mcp_server_git, python,
    servers_dir,
};

/// The longest any awaited step of a test may take.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// Awaits `fut`, failing the test with `what` if it takes longer than [`WAIT`].
pub(crate) async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub(crate) fn no_env() -> [(&'static str, &'static str); 0] {
    []
}

/// The fixture server (tests/fixtures/fixture_server.py) named `name` with `flags`.
pub(crate) fn fixture_spec(name: &str, flags: &[&str]) -> ServerSpec {
    let mut args = vec![fixture("fixture_server.py")];
    args.extend(flags.iter().map(|f| f.to_string()));
    ServerSpec::stdio(name, python(), args, no_env(), None).expect("valid spec")
}

/// server-everything over stdio.
pub(crate) fn everything_spec(name: &str) -> ServerSpec {
    ServerSpec::stdio(
        name,
        "node",
        [everything_js(), "stdio".into()],
        no_env(),
        None,
    )
    .expect("valid spec")
}

/// Short timeouts for tests.
pub(crate) fn quick_options() -> RegistryOptions {
    RegistryOptions {
        client: ClientOptions {
            init_timeout: Duration::from_secs(20),
            call_timeout: Duration::from_secs(20),
            close_grace: Duration::from_millis(500),
        },
        ..RegistryOptions::default()
    }
}

/// Waits until something accepts TCP connections on `port`, failing the test after
/// [`WAIT`].
pub(crate) async fn wait_for_port(port: u16) {
    assert!(
        mcp_servers::wait_for_port(port, WAIT).await,
        "timed out waiting for the server's port"
    );
}

/// Whether process `pid` is alive (not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits up to 10 s for `pid` to be gone.
pub(crate) async fn wait_gone(pid: u32) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
