//! What long-running commands share: the bus to talk over, the Tokio runtime, shutdown
//! on SIGINT/SIGTERM, and serving one worker (`loom processor`, `loom worker`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use loom_bus::{Bus, MemoryBus, NatsBus, NatsOptions};
use loom_core::config::WorkerConfig;
use loom_mesh::worker::{Processor, ServeTiers, spawn_worker};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Where the mesh's NATS server is.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL; several may be given separated by commas.
    ///
    /// Without it, commands that can run the whole mesh in this process (`up`,
    /// `submit --embedded`) use the in-process bus; the others connect to
    /// nats://127.0.0.1:4222.
    #[arg(long, value_name = "URL", env = "LOOM_NATS_URL")]
    pub nats_url: Option<String>,

    /// NATS credentials file (.creds) for authentication.
    #[arg(long, value_name = "FILE", env = "LOOM_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,

    /// Require TLS to the NATS server.
    #[arg(long)]
    pub nats_tls: bool,

    /// CA certificate (PEM) to verify the NATS server with; implies --nats-tls.
    #[arg(long, value_name = "FILE")]
    pub nats_ca: Option<PathBuf>,
}

/// Model backends per tier from the environment, falling back to the user config file
/// (`$LOOM_HOME/config.yaml` or `~/.loom/config.yaml`): environment variables win.
pub(crate) fn tier_backends() -> anyhow::Result<loom_llm::TierBackends> {
    let env = |k: &str| std::env::var(k).ok();
    let user = match loom_core::config::user_config_path(env) {
        Some(path) => loom_core::config::load_user_config(&path)?,
        None => loom_core::config::UserConfig::default(),
    };
    Ok(loom_llm::TierBackends::from_env(|k| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| user.lookup(k))
    })?)
}

/// The NATS URL used when none is given.
pub(crate) const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

impl NatsArgs {
    /// Connects to NATS (the given URL, else `DEFAULT_NATS_URL`), named `client_name`.
    pub(crate) async fn connect(&self, client_name: &str) -> anyhow::Result<Arc<dyn Bus>> {
        let url = self.nats_url.as_deref().unwrap_or(DEFAULT_NATS_URL);
        let mut urls = url.split(',').map(str::trim).filter(|u| !u.is_empty());
        let first = urls.next().context("--nats-url is empty")?;
        let mut options = NatsOptions::new(first).with_name(client_name);
        for u in urls {
            options = options.with_server(u);
        }
        if let Some(creds) = &self.nats_creds {
            options = options.with_credentials_file(creds.clone());
        }
        if self.nats_tls || self.nats_ca.is_some() {
            options = options.with_tls_required(true);
        }
        if let Some(ca) = &self.nats_ca {
            options = options.with_root_certificate(ca.clone());
        }
        let bus = NatsBus::connect(options).await?;
        info!(url, "Connected to NATS.");
        Ok(Arc::new(bus))
    }

    /// NATS when a URL was given, else the in-process bus.
    pub(crate) async fn connect_or_embedded(
        &self,
        client_name: &str,
    ) -> anyhow::Result<Arc<dyn Bus>> {
        if self.nats_url.is_some() {
            self.connect(client_name).await
        } else {
            info!("No --nats-url: running on the in-process bus.");
            Ok(Arc::new(MemoryBus::new()))
        }
    }
}

/// Builds the multi-threaded Tokio runtime the commands run on.
pub(crate) fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")
}

/// A token cancelled on the first SIGINT or SIGTERM; a second signal exits at once
/// with status 130.
pub(crate) fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("Shutting down: finishing in-flight work (signal again to exit now).");
        cancel.cancel();
        wait_for_signal().await;
        warn!("Second signal: exiting without draining.");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                warn!(error = %e, "Cannot listen for SIGTERM; only Ctrl-C stops this process.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Drains and closes the bus, logging (not failing on) a problem.
pub(crate) async fn close_bus(bus: &dyn Bus) {
    if let Err(e) = bus.close().await {
        warn!(error = %e, "Cannot drain the bus cleanly.");
    }
}

/// Serves one worker on NATS (client name `client_name`) until SIGINT or SIGTERM, then
/// lets in-flight tasks finish and closes the bus.
pub(crate) fn serve_worker(
    nats: &NatsArgs,
    client_name: &str,
    config: WorkerConfig,
    processor: Arc<dyn Processor>,
    tiers: ServeTiers,
    max_concurrent: usize,
) -> anyhow::Result<ExitCode> {
    tokio_runtime()?.block_on(async {
        let bus = nats.connect(client_name).await?;
        let shutdown = shutdown_on_signals();
        let worker = spawn_worker(
            bus.clone(),
            config,
            processor,
            tiers,
            max_concurrent,
            shutdown,
        )
        .await?;
        worker.join().await;
        close_bus(&*bus).await;
        Ok(ExitCode::SUCCESS)
    })
}
