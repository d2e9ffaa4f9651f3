//! A stdio server's child process: spawned in its own process group with an allow-listed
//! environment, dying with its owner, its stderr tail kept, its exit watched, and ended
//! by close stdin → SIGTERM to the group → SIGKILL.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;

use crate::error::McpError;

/// Parent variables a child inherits (the MCP SDKs' POSIX allow-list); everything else in
/// the parent's environment stays out, so secrets of the host process do not leak.
pub const INHERITED_ENV: [&str; 6] = ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];

/// How many stderr lines are kept for error messages.
const STDERR_TAIL_LINES: usize = 20;
/// The longest stderr line kept, in bytes (longer ones are cut).
const STDERR_LINE_MAX: usize = 500;

/// A spawned child. Dropping it without [`StdioChild::shutdown`] ends the process group
/// in the background (SIGTERM, then SIGKILL after the grace period).
#[derive(Debug)]
pub(crate) struct StdioChild {
    server: String,
    pid: Option<u32>,
    exit: watch::Receiver<Option<ExitStatus>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// The pieces of a freshly spawned child.
pub(crate) struct Spawned {
    pub(crate) child: StdioChild,
    pub(crate) stdout: ChildStdout,
    pub(crate) stdin: ChildStdin,
}

/// Starts `command args…` for `server`.
pub(crate) fn spawn(
    server: &str,
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&PathBuf>,
) -> Result<Spawned, McpError> {
    let mut cmd = Command::new(command);
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a terminal's Ctrl-C does not reach it, and close() can signal
        // the server together with anything it started.
        .process_group(0)
        .kill_on_drop(false);
    for key in INHERITED_ENV {
        if let Ok(value) = std::env::var(key) {
            // Exported shell functions are not variables a server needs.
            if !value.starts_with("()") {
                cmd.env(key, value);
            }
        }
    }
    cmd.envs(env);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    die_with_parent(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| McpError::transport(server, format!("cannot start '{command}': {e}")))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(McpError::transport(server, "child has no stdio pipes"));
    };
    let pid = child.id();
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    tokio::spawn(keep_stderr_tail(server.to_owned(), stderr, tail.clone()));
    let (exit_tx, exit_rx) = watch::channel(None);
    let name = server.to_owned();
    // The waiter owns the child: it reaps it (no zombie) and publishes the exit status.
    tokio::spawn(async move {
        match child.wait().await {
            Ok(status) => {
                tracing::debug!(server = %name, %status, "MCP server process exited.");
                let _ = exit_tx.send(Some(status));
            }
            Err(error) => {
                tracing::warn!(server = %name, error = %error, "Cannot wait for the MCP server process.")
            }
        }
    });
    Ok(Spawned {
        child: StdioChild {
            server: server.to_owned(),
            pid,
            exit: exit_rx,
            stderr: tail,
        },
        stdout,
        stdin,
    })
}

/// Makes the kernel SIGKILL the child when the thread that spawned it exits — for a Tokio
/// runtime thread, when the owning process exits or the runtime is dropped — so a process
/// killed without `close()` leaves no server behind under PID 1.
#[allow(
    unsafe_code,
    reason = "pre_exec is the only way to call prctl(PR_SET_PDEATHSIG) in the child"
)]
fn die_with_parent(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec. It calls only prctl(2) and
    // getppid(2), which are async-signal-safe, and it does not allocate (an `Errno` converts
    // to `io::Error` without allocating).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The parent may have died between fork and prctl: then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(nix::errno::Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

async fn keep_stderr_tail(server: String, stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(mut line)) = lines.next_line().await {
        tracing::debug!(server = %server, line = %line, "MCP server stderr.");
        if line.len() > STDERR_LINE_MAX {
            let mut cut = STDERR_LINE_MAX;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

impl StdioChild {
    /// The process id (also the process group id), while known.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The exit status, once the process has exited.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// The last lines the server wrote to stderr.
    pub(crate) fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        tail.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Whether the process has exited, even if it is not reaped yet (a zombie): peeks with
    /// `waitid(WNOWAIT)`, which leaves the reaping to the waiter task.
    pub(crate) fn has_exited(&self) -> bool {
        if self.exit_status().is_some() {
            return true;
        }
        let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) else {
            return false;
        };
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(Pid::from_raw(pid)), flags) {
            Ok(WaitStatus::StillAlive) => false,
            Ok(_) => true,
            // Already reaped by the waiter task, which publishes the status next.
            Err(nix::errno::Errno::ECHILD) => true,
            Err(_) => false,
        }
    }

    /// Waits up to `limit` for the process to exit; its status, if it did.
    pub(crate) async fn wait_exit(&self, limit: Duration) -> Option<ExitStatus> {
        let mut exit = self.exit.clone();
        let waited = tokio::time::timeout(limit, exit.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(status)) => *status,
            _ => self.exit_status(),
        }
    }

    /// The error for an exited process (exit code or signal, and the stderr tail).
    pub(crate) fn exited_error(&self, status: ExitStatus) -> McpError {
        use std::os::unix::process::ExitStatusExt;
        McpError::Exited {
            server: self.server.clone(),
            code: status.code(),
            signal: status.signal(),
            stderr_tail: self.stderr_tail(),
        }
    }

    /// Ends the process after its stdin was closed: waits `grace`, sends SIGTERM to its
    /// group, waits `grace` again, then SIGKILLs the group.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        if self.wait_exit(grace).await.is_some() {
            return;
        }
        self.signal_group(Signal::SIGTERM);
        if self.wait_exit(grace).await.is_some() {
            return;
        }
        tracing::warn!(server = %self.server, "MCP server ignored SIGTERM; killing it.");
        self.signal_group(Signal::SIGKILL);
        let _ = self.wait_exit(grace).await;
    }

    fn signal_group(&self, signal: Signal) {
        // Only while the leader is unreaped can its pid not have been reused.
        if self.exit_status().is_some() {
            return;
        }
        let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) else {
            return;
        };
        if let Err(error) = killpg(Pid::from_raw(pid), signal) {
            tracing::debug!(server = %self.server, %signal, error = %error, "Cannot signal the MCP server's process group.");
        }
    }
}

impl Drop for StdioChild {
    /// Dropped without `shutdown` (a registry dropped without `close`): SIGTERM the group
    /// now, and SIGKILL it after 2 s if a runtime is there to wait.
    fn drop(&mut self) {
        if self.exit_status().is_some() {
            return;
        }
        self.signal_group(Signal::SIGTERM);
        let Some(pid) = self.pid.take() else {
            return;
        };
        let exit = self.exit.clone();
        let server = self.server.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            // Holds no `StdioChild`, so dropping this task unpolled (runtime shutdown)
            // does not start the sequence again.
            handle.spawn(async move {
                let mut exit = exit;
                let waited =
                    tokio::time::timeout(Duration::from_secs(2), exit.wait_for(Option::is_some))
                        .await;
                if waited.is_err()
                    && let Ok(pid) = i32::try_from(pid)
                {
                    tracing::warn!(server = %server, "MCP server ignored SIGTERM; killing it.");
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                }
            });
        }
    }
}
