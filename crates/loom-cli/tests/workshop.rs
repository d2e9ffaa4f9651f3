//! Drives `loom workshop` (the built binary) with its Loom home in a temp folder.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loom_bus::{Bus, NatsBus, NatsOptions};
use loom_testkit::NatsServer;
use serde_json::{Value, json};

const ECHO: &str = "name: echo\nworker_kind: processor\nprocessing_backend: echo\n";

/// A project folder with `configs/` and a Loom home.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = Project { dir };
        p.write("configs/workers/echo.yaml", ECHO);
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_loom"));
        c.arg("workshop")
            .args(args)
            .current_dir(self.path())
            .env("LOOM_HOME", self.path().join("home"))
            .env_remove("OLLAMA_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("LM_STUDIO_URL");
        c
    }

    /// Runs `loom workshop args…`, returning its exit code and stdout as JSON (null
    /// when stdout is empty).
    fn run(&self, args: &[&str]) -> (i32, Value, String) {
        let Output {
            status,
            stdout,
            stderr,
        } = self.command(args).output().expect("loom runs");
        let stdout = String::from_utf8_lossy(&stdout);
        let json = if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {stdout}"))
        };
        (
            status.code().unwrap_or(-1),
            json,
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    }
}

#[test]
fn workshop_lists_updates_gets_and_tests_workers_with_documented_exit_codes() {
    let p = Project::new();
    let (code, out, _) = p.run(&["list"]);
    assert_eq!(code, 0);
    assert_eq!(out[0]["name"], "echo");

    p.write("new.yaml", &format!("{ECHO}description: Echoes.\n"));
    let (code, out, _) = p.run(&["update", "echo", "new.yaml", "--description", "v2"]);
    assert_eq!((code, &out["success"]), (0, &json!(true)));
    let (code, out, _) = p.run(&["get", "echo"]);
    assert_eq!(code, 0);
    assert_eq!(out["version_history"][0]["description"], "v2");
    assert!(
        p.path().join("home/workshop.db").is_file(),
        "history lives in LOOM_HOME"
    );

    // Invalid config: exit 1, nothing written.
    p.write("bad.yaml", "name: echo\nworker_kind: robot\n");
    let before = std::fs::read_to_string(p.path().join("configs/workers/echo.yaml")).expect("read");
    let (code, out, _) = p.run(&["update", "echo", "bad.yaml"]);
    assert_eq!((code, &out["success"]), (1, &json!(false)));
    assert_eq!(
        std::fs::read_to_string(p.path().join("configs/workers/echo.yaml")).expect("read"),
        before
    );
    // Traversal: exit 2 with a clear message, nothing written.
    let (code, _, err) = p.run(&["update", "../evil", "new.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid worker name '../evil'"), "{err}");
    assert!(!p.path().join("evil.yaml").exists());

    let (code, out, _) = p.run(&["test", "echo", "--payload", r#"{"x": 1}"#]);
    assert_eq!(code, 0);
    assert_eq!(out["output"], json!({"x": 1}));
    let (code, _, err) = p.run(&["test", "echo", "--payload", "[1]"]);
    assert_eq!(code, 2);
    assert!(err.contains("--payload must be a JSON object"), "{err}");
    let (code, _, err) = p.run(&["get", "ghost"]);
    assert_eq!(code, 2);
    assert!(err.contains("Worker 'ghost' not found"), "{err}");
}

#[test]
fn workshop_evals_set_a_baseline_and_compare_with_regressions_exiting_1() {
    let p = Project::new();
    p.write(
        "suite.yaml",
        "- {name: same, input: {text: a b}, expected_output: {text: a b}}\n\
         - {name: count, input: {text: a b}, expected_output: {word_count: 2}}\n",
    );
    let (code, first, err) = p.run(&["eval", "echo", "--suite", "suite.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(first["avg_score"], 0.5);
    let first_id = first["run_id"].as_str().expect("run id").to_owned();
    let (code, _, err) = p.run(&["compare", "echo", &first_id]);
    assert_eq!(code, 2);
    assert!(err.contains("No baseline set for worker 'echo'"), "{err}");
    let (code, _, _) = p.run(&["baseline", "echo", &first_id, "--description", "golden"]);
    assert_eq!(code, 0);

    p.write(
        "stats.yaml",
        "name: echo\nworker_kind: processor\nprocessing_backend: text_stats\n",
    );
    assert_eq!(p.run(&["update", "echo", "stats.yaml"]).0, 0);
    let (_, second, _) = p.run(&["eval", "echo", "--suite", "suite.yaml"]);
    let second_id = second["run_id"].as_str().expect("run id").to_owned();
    let (code, cmp, _) = p.run(&["compare", "echo", &second_id]);
    assert_eq!(code, 1, "a regression says no");
    assert_eq!(cmp["summary"]["regressions"], 1);
    assert_eq!(cmp["summary"]["improvements"], 1);
    let (code, runs, _) = p.run(&["runs", "echo"]);
    assert_eq!(code, 0);
    assert_eq!(runs.as_array().map(Vec::len), Some(2));
    let (code, _, err) = p.run(&[
        "eval",
        "echo",
        "--suite",
        "suite.yaml",
        "--scoring",
        "fuzzy",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown scoring 'fuzzy'"), "{err}");
}

/// Kills the watcher when the test ends, however it ends.
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn workshop_watches_lists_and_replays_dead_letters_over_nats() {
    let server = NatsServer::start().expect("nats-server");
    let p = Project::new();
    let _watcher = Watcher(
        p.command(&["dead-letters", "watch", "--nats-url", &server.url()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("watch starts"),
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bus: Arc<dyn Bus> = runtime
        .block_on(NatsBus::connect(NatsOptions::new(&server.url())))
        .map(|b| Arc::new(b) as Arc<dyn Bus>)
        .expect("connect");
    let envelope = json!({"reason": "unknown_tier: x", "original_task": {"task_id": "t-7", "worker_type": "echo", "payload": {}}, "task_id": "t-7", "worker_type": "echo"});
    // The watcher subscribes after it starts: publish until it has stored one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let entry = loop {
        assert!(Instant::now() < deadline, "the watcher stored nothing");
        runtime
            .block_on(bus.publish(
                "loom.tasks.dead_letter",
                envelope.to_string().into_bytes().into(),
            ))
            .expect("publish");
        std::thread::sleep(Duration::from_millis(200));
        let (code, out, _) = p.run(&["dead-letters", "list"]);
        if code == 0 && out["total"].as_u64().unwrap_or(0) > 0 {
            break out["entries"][0].clone();
        }
    };
    assert_eq!(entry["task_id"], "t-7");
    let id = entry["id"].as_str().expect("id");
    let (code, replayed, err) = p.run(&["dead-letters", "replay", id, "--nats-url", &server.url()]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(replayed["task_id"], "t-7");
    let (code, _, err) = p.run(&[
        "dead-letters",
        "replay",
        "../x",
        "--nats-url",
        &server.url(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid entry_id"), "{err}");
}
