//! MCP servers for the mesh: `mcp_servers` config sections become a [`Registry`] behind
//! a [`ToolHost`] that applies each server's `allow`/`deny` lists — the tools of an LLM
//! worker's tool-use loop and of a pipeline's `mcp_tool` stages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use loom_core::config::{McpPrefixMode, McpServerConfig, McpServers, McpTransportConfig};
use loom_llm::{ToolError, ToolHost, ToolSpec};
use loom_mcp::{PrefixMode, Registry, RegistryOptions, ServerSpec, SpecError, ToolInfo};
use serde_json::Value;

/// Why an `mcp_servers` section cannot become clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpSetupError {
    /// An entry is not a valid server.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The registry refused the servers (a duplicate name).
    #[error(transparent)]
    Registry(#[from] loom_mcp::McpError),
}

/// The client spec of config entry `c` (`timeout` bounds an HTTP server's requests).
pub fn server_spec(c: &McpServerConfig) -> Result<ServerSpec, SpecError> {
    let spec = match &c.transport {
        McpTransportConfig::Stdio {
            command,
            args,
            env,
            cwd,
        } => ServerSpec::stdio(
            c.name.clone(),
            command.clone(),
            args.clone(),
            env.clone(),
            cwd.clone(),
        )?,
        McpTransportConfig::Http { url, headers } => ServerSpec::http(
            c.name.clone(),
            url.clone(),
            headers.clone(),
            c.timeout_seconds
                .and_then(|s| Duration::try_from_secs_f64(s).ok()),
        )?,
        // A transport added to the config later, unknown to this build.
        #[allow(unreachable_patterns)]
        _ => {
            return Err(SpecError::EmptyCommand {
                name: c.name.clone(),
            });
        }
    };
    Ok(match &c.description {
        Some(d) => spec.with_description(d.clone()),
        None => spec,
    })
}

/// The registry's prefix mode for the config's.
pub fn prefix_mode(mode: McpPrefixMode) -> PrefixMode {
    match mode {
        McpPrefixMode::Always => PrefixMode::Always,
        McpPrefixMode::Never => PrefixMode::Never,
        _ => PrefixMode::Conditional,
    }
}

/// A registry of `section`'s servers (not connected yet) with `options`, whose prefix
/// mode is replaced by the section's.
pub fn registry(
    section: &McpServers,
    mut options: RegistryOptions,
) -> Result<Registry, McpSetupError> {
    options.prefix_mode = prefix_mode(section.prefix_mode);
    let specs = section
        .servers
        .iter()
        .map(server_spec)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Registry::with_options(specs, options)?)
}

/// A [`Registry`] as a [`ToolHost`] that lists and calls only the tools each server's
/// `allow`/`deny` lists let through.
#[derive(Clone)]
pub struct McpTools {
    registry: Registry,
    configs: Arc<HashMap<String, McpServerConfig>>,
}

impl std::fmt::Debug for McpTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpTools")
            .field("servers", &self.registry.server_names())
            .finish_non_exhaustive()
    }
}

impl McpTools {
    /// The tools of `section`'s servers, with default registry options.
    pub fn from_section(section: &McpServers) -> Result<Self, McpSetupError> {
        Ok(Self::new(
            registry(section, RegistryOptions::default())?,
            section,
        ))
    }

    /// `registry` (built from `section`) filtered by `section`'s allow/deny lists.
    pub fn new(registry: Registry, section: &McpServers) -> Self {
        Self {
            registry,
            configs: Arc::new(
                section
                    .servers
                    .iter()
                    .map(|c| (c.name.clone(), c.clone()))
                    .collect(),
            ),
        }
    }

    /// The registry behind the tools.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn exposed(&self, info: &ToolInfo) -> bool {
        self.configs
            .get(&info.server)
            .is_none_or(|c| c.exposes(&info.tool))
    }

    /// Whether `name` (listed, `server.tool` or `server__tool`) is a denied tool.
    async fn denied(&self, name: &str) -> bool {
        self.registry.tools().await.iter().any(|t| {
            let names = [
                t.name.clone(),
                format!("{}.{}", t.server, t.tool),
                format!("{}__{}", t.server, t.tool),
            ];
            names.iter().any(|n| n == name) && !self.exposed(t)
        })
    }
}

#[async_trait]
impl ToolHost for McpTools {
    async fn list_tools(&self) -> Result<Vec<ToolSpec>, ToolError> {
        Ok(self
            .registry
            .tools()
            .await
            .into_iter()
            .filter(|t| self.exposed(t))
            .map(|t| ToolSpec::new(t.name, t.description, t.input_schema))
            .collect())
    }

    async fn call_tool(&self, name: &str, arguments: Value) -> Result<String, ToolError> {
        if self.denied(name).await {
            return Err(ToolError::NotFound {
                name: name.to_owned(),
            });
        }
        self.registry.call_tool(name, arguments).await
    }

    fn unavailable_servers(&self) -> Vec<String> {
        self.registry.unavailable_servers()
    }
}

/// A [`ToolHost`] shared by a mesh's pipelines (the gateway's upstream registry), in
/// options that are `Debug` and `Clone`.
#[derive(Clone)]
pub struct SharedTools(pub Arc<dyn ToolHost>);

impl std::fmt::Debug for SharedTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedTools(..)")
    }
}
