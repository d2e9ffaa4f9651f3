//! Child processes for session tools (git, the hook): async, with a timeout, killed when
//! the timeout passes or the caller stops waiting, never blocking the runtime (gateway
//! spec §13.20).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::SessionError;

/// How much of a hook's output a result keeps (its end, where errors usually are).
pub const OUTPUT_TAIL_CHARS: usize = 2000;

/// A finished process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Finished {
    /// Exit code 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `program args…` in `dir`, stdin closed, output captured; a timeout or a failure
/// to start is an error, a non-zero exit is not.
pub(crate) async fn run(
    program: &str,
    args: &[&str],
    dir: &Path,
    timeout: Duration,
) -> Result<Finished, SessionError> {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if program == "git" {
        // Never wait for a password prompt or an editor.
        command
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_EDITOR", "true")
            .env("LC_ALL", "C");
    }
    let what = || {
        let mut s = program.to_owned();
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    };
    let child = command.spawn().map_err(|e| SessionError::Spawn {
        command: what(),
        message: e.to_string(),
    })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Finished {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Ok(Err(e)) => Err(SessionError::Spawn {
            command: what(),
            message: e.to_string(),
        }),
        // Dropping the future kills the child (kill_on_drop).
        Err(_) => Err(SessionError::TimedOut {
            command: what(),
            seconds: timeout.as_secs_f64(),
        }),
    }
}

/// The last [`OUTPUT_TAIL_CHARS`] characters of `text`, trimmed.
pub(crate) fn tail(text: &str) -> String {
    let text = text.trim();
    let n = text.chars().count();
    if n <= OUTPUT_TAIL_CHARS {
        return text.to_owned();
    }
    text.chars().skip(n - OUTPUT_TAIL_CHARS).collect()
}
