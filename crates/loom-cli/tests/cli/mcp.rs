//! `loom mcp` over stdio, driven by a real rmcp client that starts the binary as Claude
//! Desktop or Cursor would.

use std::path::Path;
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use serde_json::json;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn stdio_gateway_serves_the_docman_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_loom")).configure(|c| {
        c.args(["mcp", "--config", "examples/docman/mcp.yaml"])
            .current_dir(&root)
            .env_remove("LOOM_NATS_URL")
            .env("RUST_LOG", "debug");
    });
    let transport = TokioChildProcess::new(command).expect("spawn loom mcp");
    // Debug logs are on: if any reached stdout, the JSON-RPC stream would break here.
    let client = timeout(WAIT, ().serve(transport))
        .await
        .expect("initialize in time")
        .expect("initialize");
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("docman")
    );
    let tools = timeout(WAIT, client.list_all_tools())
        .await
        .expect("in time")
        .expect("tools/list");
    assert_eq!(tools.len(), 8);
    let args = json!({"text": "the quick brown fox", "title": "fox"})
        .as_object()
        .cloned()
        .expect("object");
    let result = timeout(
        WAIT,
        client.call_tool(CallToolRequestParams::new("ingest_document").with_arguments(args)),
    )
    .await
    .expect("in time")
    .expect("tools/call");
    assert_eq!(result.is_error, Some(false));
    let out = result.structured_content.expect("structured content");
    assert_eq!(out["stats"]["word_count"], json!(4));
    timeout(WAIT, client.cancel())
        .await
        .expect("in time")
        .expect("the gateway exits when stdin closes");
}
