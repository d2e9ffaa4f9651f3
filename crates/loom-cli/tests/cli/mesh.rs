//! The mesh commands as users run them: `submit --embedded`, and `up`, `router`,
//! `processor`, `submit` as separate processes on a real nats-server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use loom_testkit::NatsServer;

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn loom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loom"))
        .args(args)
        .current_dir(repo_root())
        .env_remove("RUST_LOG")
        .env_remove("LOOM_NATS_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run loom")
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// A long-running `loom` process, killed when dropped.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    /// Starts `loom args…` and waits until its stderr shows `ready`.
    fn start(args: &[&str], ready: &str) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_loom"))
            .args(args)
            .current_dir(repo_root())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loom");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let d = Daemon { child, lines: rx };
        d.wait_for(ready);
        d
    }

    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains(needle) => return,
                Ok(line) => seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "loom never logged '{needle}'; it logged:\n{}",
            seen.join("\n")
        );
    }

    /// Sends SIGTERM and returns the exit status, failing if it takes over 10 s.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "loom did not stop within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn submit_embedded_runs_the_example_pipeline() {
    let o = loom(&[
        "submit",
        "--embedded",
        "examples/docman",
        "--pipeline",
        "ingest",
        r#"{"text": "the quick brown fox", "title": "fox"}"#,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let result = stdout_json(&o);
    assert_eq!(result["status"], "completed");
    assert_eq!(result["worker_type"], "ingest");
    assert_eq!(result["output"]["stats"]["word_count"], 4);
    assert_eq!(result["output"]["report"]["kind"], "word_report");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("[3/3] stage report completed"), "{stderr}");
}

#[test]
fn submit_exit_status_follows_the_result() {
    let o = loom(&[
        "submit",
        "--embedded",
        "examples/docman",
        "--worker",
        "text_stats",
        "--context",
        "txt=x",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let result = stdout_json(&o);
    assert_eq!(result["status"], "failed");
    assert!(
        result["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Input validation:"),
        "{result}"
    );

    let o = loom(&[
        "submit",
        "--embedded",
        "examples/docman",
        "--pipeline",
        "nope",
        "{}",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("no pipeline 'nope' in the embedded configs (pipelines: ingest)")
    );

    let o = loom(&[
        "submit",
        "--embedded",
        "examples/docman",
        "--worker",
        "echo",
        "[1]",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("the input must be a JSON object, not an array")
    );
}

#[test]
fn unreachable_nats_is_a_one_line_error_naming_the_url() {
    // Port 1 on loopback: nothing listens there.
    let o = loom(&["router", "--nats-url", "nats://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("nats://127.0.0.1:1"), "{stderr}");
}

#[test]
fn separate_processes_form_a_mesh_over_nats() {
    let nats = NatsServer::start().expect("nats-server");
    let url = nats.url();
    let router = Daemon::start(&["router", "--nats-url", &url], "Actor started");
    let processor = Daemon::start(
        &[
            "processor",
            "--config",
            "examples/docman/workers/text_stats.yaml",
            "--nats-url",
            &url,
        ],
        "Actor started. subject=loom.tasks.text_stats.*",
    );
    let o = loom(&[
        "submit",
        "--nats-url",
        &url,
        "--worker",
        "text_stats",
        "--context",
        "text=hello mesh",
        "--timeout",
        "10",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let result = stdout_json(&o);
    assert_eq!(result["output"]["word_count"], 2);
    assert_eq!(result["output"]["reversed"], "hsem olleh");
    assert!(
        processor.terminate().success(),
        "processor exits 0 on SIGTERM"
    );
    assert!(router.terminate().success(), "router exits 0 on SIGTERM");
}

#[test]
fn up_runs_the_example_mesh_for_other_processes() {
    let nats = NatsServer::start().expect("nats-server");
    let url = nats.url();
    let up = Daemon::start(
        &["up", "--config", "examples/docman", "--nats-url", &url],
        "Mesh started",
    );
    let o = loom(&[
        "submit",
        "--nats-url",
        &url,
        "--pipeline",
        "ingest",
        "--context",
        "text=one two three",
        "--context",
        "title=t",
        "--timeout",
        "10",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout_json(&o)["output"]["stats"]["word_count"], 3);
    let started = Instant::now();
    assert!(up.terminate().success(), "loom up exits 0 on SIGTERM");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an idle mesh stops promptly"
    );
}

#[test]
fn query_ingest_then_a_query_worker_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("docs.jsonl");
    std::fs::write(
        &data,
        "{\"id\": \"a\", \"title\": \"red fox\", \"year\": 2020}\n{\"id\": \"b\", \"title\": \"blue whale\", \"year\": 2021}\n",
    )
    .expect("write");
    let db = dir.path().join("docs.db");
    let (db_s, data_s) = (
        db.to_string_lossy().into_owned(),
        data.to_string_lossy().into_owned(),
    );
    let o = loom(&[
        "query",
        "ingest",
        "--db",
        &db_s,
        "--fts-fields",
        "title",
        &data_s,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("2 rows into"));
    let again = loom(&["query", "ingest", "--db", &db_s, &data_s]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "an existing table needs --replace"
    );

    std::fs::write(
        dir.path().join("q.yaml"),
        "name: docs_query\nworker_kind: processor\nprocessing_backend: sqlite\n\
         backend_config: {db_path: docs.db, result_columns: [id, title], fts_fields: [title], full_text_column: null}\n",
    )
    .expect("write");
    let cfg = dir.path().join("q.yaml").to_string_lossy().into_owned();
    let o = loom(&[
        "submit",
        "--embedded",
        &cfg,
        "--worker",
        "docs_query",
        r#"{"action": "search", "query": "fox"}"#,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let result = stdout_json(&o);
    assert_eq!(result["model_used"], "sqlite");
    assert_eq!(result["output"]["results"][0]["id"], "a");
}

#[tokio::test]
async fn llm_workers_find_their_endpoint_in_the_user_config() {
    let stand_in = loom_testkit::LlmStandIn::start()
        .await
        .expect("LLM stand-in");
    stand_in.push(loom_testkit::Reply::text(
        r#"{"summary": "Foxes jump.", "key_points": ["fox"]}"#,
    ));
    let home = tempfile::tempdir().expect("tempdir");
    // The local tier on an OpenAI-compatible server, as LM Studio or llama.cpp serve it.
    std::fs::write(
        home.path().join("config.yaml"),
        format!(
            "backends:\n  lm_studio_url: {}/v1\n  lm_studio_model: tiny\n",
            stand_in.base_url()
        ),
    )
    .expect("write");
    let loom_home = home.path().to_string_lossy().into_owned();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_loom"))
            .args([
                "submit",
                "--embedded",
                "examples/llm",
                "--worker",
                "summarizer",
                "--timeout",
                "20",
                "--context",
                "text=The quick brown fox.",
            ])
            .current_dir(repo_root())
            .env("LOOM_HOME", loom_home)
            .env_remove("OLLAMA_URL")
            .env_remove("LM_STUDIO_URL")
            .env_remove("LOOM_LOCAL_BACKEND")
            .output()
            .expect("run loom")
    })
    .await
    .expect("join");
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let result = stdout_json(&o);
    assert_eq!(result["output"]["summary"], "Foxes jump.");
    assert_eq!(
        stand_in.requests().len(),
        1,
        "the request went to the configured endpoint"
    );
}
