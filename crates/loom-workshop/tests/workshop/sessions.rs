//! Session tools on real git repositories: a bare remote and clones in temp folders.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use loom_testkit::{LlmStandIn, NatsServer};
use loom_workshop::sessions::{SessionError, SessionOptions, Sessions};
use serde_json::Value;

use crate::common::{within, write};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A bare remote with one commit on `main`, and two clones of it: `framework` (the
/// session's) and `other` (someone else's).
struct Repos {
    root: tempfile::TempDir,
}

impl Repos {
    fn new() -> Repos {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        git(r, &["init", "--bare", "-b", "main", "remote.git"]);
        for clone in ["framework", "other"] {
            git(r, &["clone", "-q", "remote.git", clone]);
            let c = r.join(clone);
            git(&c, &["config", "user.email", "t@example.invalid"]);
            git(&c, &["config", "user.name", "Test"]);
            git(&c, &["checkout", "-q", "-B", "main"]);
        }
        let f = r.join("framework");
        write(&f, "README.md", "framework\n");
        git(&f, &["add", "-A"]);
        git(&f, &["commit", "-q", "-m", "initial"]);
        git(&f, &["push", "-q", "-u", "origin", "main"]);
        git(&r.join("other"), &["pull", "-q", "origin", "main"]);
        git(
            &r.join("other"),
            &["branch", "-q", "--set-upstream-to=origin/main"],
        );
        Repos { root }
    }

    fn framework(&self) -> PathBuf {
        self.root.path().join("framework")
    }

    fn other(&self) -> PathBuf {
        self.root.path().join("other")
    }

    fn options(&self) -> SessionOptions {
        SessionOptions::new(self.framework(), self.root.path().join("home/sessions"))
    }

    /// Commits a file in `clone` and pushes it.
    fn push_from(&self, clone: &Path, file: &str) {
        write(clone, file, "x\n");
        git(clone, &["add", "-A"]);
        git(clone, &["commit", "-q", "-m", file]);
        git(clone, &["push", "-q"]);
    }

    fn commit_locally(&self, file: &str) {
        let f = self.framework();
        write(&f, file, "local\n");
        git(&f, &["add", "-A"]);
        git(&f, &["commit", "-q", "-m", file]);
    }
}

fn str_of<'a>(v: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

#[tokio::test]
async fn start_status_and_end_commit_and_push_through_a_bare_remote() {
    let repos = Repos::new();
    let sessions = Sessions::new(repos.options());
    let started = within("start", sessions.start(Some("s1")))
        .await
        .expect("started");
    assert_eq!(str_of(&started, "status"), "active");
    assert_eq!(str_of(&started, "session_id"), "s1");
    let steps = started["steps"].as_array().expect("steps");
    assert_eq!(steps[0]["step"], "pull");
    assert_eq!(steps[0]["ok"], true);
    assert!(repos.root.path().join("home/sessions/s1.json").is_file());

    let status = within("status", sessions.status()).await.expect("status");
    assert_eq!(status["sessions"][0]["session_id"], "s1");
    assert_eq!(status["framework"]["git_clean"], true);
    assert_eq!(status["services"]["nats"]["message"], "not configured");

    write(&repos.framework(), "notes/today.md", "findings\n");
    let status = within("status", sessions.status()).await.expect("status");
    assert_eq!(status["framework"]["dirty_files"], 1);

    let ended = within("end", sessions.end(None, Some("found things")))
        .await
        .expect("ended");
    assert_eq!(str_of(&ended, "status"), "ended");
    assert_eq!(ended["committed"], true);
    assert_eq!(ended["pushed"], true, "{ended:?}");
    let log = git(
        &repos.root.path().join("remote.git"),
        &["log", "-1", "--format=%s", "main"],
    );
    assert!(
        log.starts_with("Session s1: found things \u{2014} "),
        "{log}"
    );
    assert!(!repos.root.path().join("home/sessions/s1.json").exists());

    let none = within("end", sessions.end(None, None))
        .await
        .expect("nothing to end");
    assert_eq!(str_of(&none, "status"), "no_active_sessions");
}

#[tokio::test]
async fn sync_check_follows_the_upstream_through_behind_ahead_diverged_and_current() {
    let repos = Repos::new();
    let sessions = Sessions::new(repos.options());
    let check = within("check", sessions.sync_check()).await.expect("check");
    assert_eq!(
        (str_of(&check, "status"), str_of(&check, "upstream")),
        ("current", "origin/main")
    );

    repos.push_from(&repos.other(), "a.txt");
    repos.push_from(&repos.other(), "b.txt");
    let check = within("check", sessions.sync_check()).await.expect("check");
    assert_eq!(str_of(&check, "status"), "behind");
    assert_eq!(
        (check["behind"].as_u64(), check["ahead"].as_u64()),
        (Some(2), Some(0))
    );

    let synced = within("sync", sessions.sync()).await.expect("synced");
    assert_eq!(str_of(&synced, "status"), "synced");
    assert_eq!(
        str_of(&synced, "commit"),
        git(&repos.framework(), &["rev-parse", "--short", "HEAD"])
    );
    assert!(repos.framework().join("b.txt").is_file());

    repos.commit_locally("mine.txt");
    let check = within("check", sessions.sync_check()).await.expect("check");
    assert_eq!(
        (str_of(&check, "status"), check["ahead"].as_u64()),
        ("ahead", Some(1))
    );

    repos.push_from(&repos.other(), "theirs.txt");
    let check = within("check", sessions.sync_check()).await.expect("check");
    assert_eq!(str_of(&check, "status"), "diverged");

    // Diverged: a fast-forward pull fails, for sync and for start.
    let err = within("sync", sessions.sync())
        .await
        .expect_err("cannot fast-forward");
    assert!(err.to_string().starts_with("Pull failed:"), "{err}");
    let err = within("start", sessions.start(Some("s2")))
        .await
        .expect_err("pull fails");
    assert!(
        err.to_string().to_lowercase().contains("pull failed"),
        "{err}"
    );
    let details = err.details().expect("details");
    assert_eq!(details["session_id"], "s2");
    assert!(!repos.root.path().join("home/sessions/s2.json").exists());
}

#[tokio::test]
async fn a_configured_upstream_is_used_when_the_branch_has_none() {
    let repos = Repos::new();
    let f = repos.framework();
    git(&f, &["checkout", "-q", "-b", "work"]);
    let plain = Sessions::new(repos.options());
    assert!(matches!(
        within("check", plain.sync_check()).await,
        Err(SessionError::NoUpstream)
    ));
    let mut options = repos.options();
    options.upstream = Some("origin/main".to_owned());
    let sessions = Sessions::new(options);
    repos.push_from(&repos.other(), "c.txt");
    let check = within("check", sessions.sync_check()).await.expect("check");
    assert_eq!(
        (str_of(&check, "status"), str_of(&check, "upstream")),
        ("behind", "origin/main")
    );
    within("sync", sessions.sync()).await.expect("synced");
    assert!(f.join("c.txt").is_file());
}

#[tokio::test]
async fn outside_a_git_repo_status_works_and_git_actions_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = SessionOptions::new(dir.path().join("plain"), dir.path().join("sessions"));
    std::fs::create_dir_all(dir.path().join("plain")).expect("mkdir");
    let sessions = Sessions::new(options);
    let status = within("status", sessions.status()).await.expect("status");
    assert_eq!(status["framework"]["git_clean"], Value::Null);
    assert_eq!(status["framework"]["dirty_files"], 0);
    assert!(matches!(
        within("check", sessions.sync_check()).await,
        Err(SessionError::NotARepo)
    ));
    assert_eq!(
        within("sync", sessions.sync())
            .await
            .expect_err("no repo")
            .to_string(),
        "Framework is not a git repo"
    );
    let started = within("start", sessions.start(None))
        .await
        .expect("started");
    assert!(str_of(&started, "session_id").starts_with("session-"));
    assert_eq!(started["steps"][0]["reason"], "not a git repo");
}

#[tokio::test]
async fn session_ids_are_validated_and_unknown_ones_are_not_ended() {
    let repos = Repos::new();
    let sessions = Sessions::new(repos.options());
    for bad in ["../x", "..", "a/b", ".hidden"] {
        assert!(matches!(
            within("start", sessions.start(Some(bad))).await,
            Err(SessionError::InvalidId(_))
        ));
        assert!(matches!(
            within("end", sessions.end(Some(bad), None)).await,
            Err(SessionError::InvalidId(_))
        ));
    }
    write(&repos.framework(), "dirty.txt", "x\n");
    assert!(matches!(
        within("end", sessions.end(Some("nope"), None)).await,
        Err(SessionError::NotActive(_))
    ));
    // Nothing was committed for the unknown session.
    assert_eq!(
        git(&repos.framework(), &["rev-list", "--count", "HEAD"]),
        "1"
    );
}

#[tokio::test]
async fn nats_and_ollama_checks_reach_real_services() {
    let repos = Repos::new();
    let server = NatsServer::start().expect("nats-server");
    let llm = within("stand-in", LlmStandIn::start())
        .await
        .expect("stand-in");
    let mut options = repos.options();
    options.nats_url = Some(server.url());
    options.ollama_url = Some(llm.base_url());
    options.workspace_dir = Some(repos.root.path().join("missing"));
    let sessions = Sessions::new(options);
    let started = within("start", sessions.start(Some("svc")))
        .await
        .expect("started");
    let steps = started["steps"].as_array().expect("steps");
    let nats = steps
        .iter()
        .find(|s| s["step"] == "nats")
        .expect("nats step");
    assert_eq!(nats["ok"], true);
    assert!(
        nats["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("NATS reachable")
    );
    let status = within("status", sessions.status()).await.expect("status");
    assert_eq!(status["services"]["ollama"]["ok"], true);
    assert!(
        status["services"]["ollama"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(loom_testkit::llm::TAGS_MODEL)
    );
    assert_eq!(status["services"]["workspace"]["ok"], false);

    // NATS down: start refuses, with the steps that ran.
    let port = server
        .url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    drop(server);
    let mut options = repos.options();
    options.nats_url = Some(format!("nats://127.0.0.1:{port}"));
    options.ollama_url = Some("http://127.0.0.1:9".to_owned());
    let sessions = Sessions::new(options);
    let err = within("start", sessions.start(Some("down")))
        .await
        .expect_err("nats down");
    assert_eq!(err.to_string(), "NATS is required but unreachable");
    let steps = err
        .details()
        .and_then(|d| d["steps"].as_array())
        .expect("steps");
    let ollama = steps
        .iter()
        .find(|s| s["step"] == "ollama")
        .expect("ollama step");
    assert_eq!(
        ollama["ok"], false,
        "Ollama being down is tolerated but reported"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_hook_runs_after_pulls_times_out_and_never_blocks_the_runtime() {
    let repos = Repos::new();
    let mut options = repos.options();
    options.hook = Some(vec![
        "sh".into(),
        "-c".into(),
        "echo imported > hook.out; echo done".into(),
    ]);
    let sessions = Sessions::new(options);
    let synced = within("sync", sessions.sync()).await.expect("synced");
    assert_eq!(synced["hook_ok"], true);
    assert_eq!(synced["hook"]["output"], "done");
    assert!(repos.framework().join("hook.out").is_file());

    let mut options = repos.options();
    options.hook = Some(vec!["sh".into(), "-c".into(), "sleep 5".into()]);
    options.hook_timeout = Duration::from_millis(600);
    let sessions = Sessions::new(options);
    // On a single-threaded runtime a ticker keeps running while the hook is awaited.
    let ticks = async {
        let mut n = 0u32;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(400) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            n += 1;
        }
        n
    };
    let (synced, ticks) = tokio::join!(within("sync", sessions.sync()), ticks);
    let synced = synced.expect("sync succeeds; the hook failing is reported");
    assert!(ticks >= 10, "the runtime was blocked ({ticks} ticks)");
    assert_eq!(synced["hook_ok"], false);
    assert!(
        synced["hook"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{synced:?}"
    );
}

#[tokio::test]
async fn using_a_session_refreshes_its_last_active() {
    let repos = Repos::new();
    let dir = repos.root.path().join("home/sessions");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    // Started by another process 25 minutes ago: still active, soon stale.
    let marker =
        serde_json::json!({"session_id": "old-one", "last_active": now - 1500.0, "user": "ann"});
    std::fs::write(dir.join("old-one.json"), marker.to_string()).expect("write");
    let sessions = Sessions::new(repos.options());
    assert!(sessions.touch_due(), "nothing refreshed yet");
    within("status", sessions.status()).await.expect("status");
    assert!(!sessions.touch_due(), "refreshed at most once a minute");
    let text = std::fs::read_to_string(dir.join("old-one.json")).expect("read");
    let marker: Value = serde_json::from_str(&text).expect("json");
    assert!(
        marker["last_active"].as_f64().unwrap_or(0.0) > now - 5.0,
        "{marker}"
    );
    assert_eq!(marker["user"], "ann", "other keys are kept");
    let ended = within("end", sessions.end(None, None))
        .await
        .expect("ended");
    assert_eq!(
        ended["session_id"], "old-one",
        "the most recent active session"
    );
}
