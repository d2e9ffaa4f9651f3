//! Running one child process: no shell, an allow-listed environment, captured output,
//! a kill deadline, and cancellation that kills the child and everything it started.

use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Most stdout bytes kept; a child writing more is killed and the task fails.
pub(crate) const MAX_STDOUT_BYTES: usize = 16 * 1024 * 1024;

/// How much of the end of stderr error messages carry.
pub(crate) const STDERR_TAIL_BYTES: usize = 2048;

/// How long to wait for a killed child to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// One command to run.
#[derive(Debug)]
pub(crate) struct Invocation<'a> {
    pub(crate) program: &'a str,
    pub(crate) args: Vec<String>,
    /// The child's whole environment (it inherits nothing else).
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<&'a Path>,
    /// Bytes for stdin; `None` gives the child an empty stdin (`/dev/null`).
    pub(crate) stdin: Option<Vec<u8>>,
    pub(crate) timeout: Duration,
}

/// A child that exited with status 0.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) stdout: Vec<u8>,
}

/// Why a run failed.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started.
    Spawn(io::Error),
    /// Reading the child's output failed.
    Io(io::Error),
    /// The child exited unsuccessfully.
    Exit {
        status: ExitStatus,
        stderr_tail: String,
    },
    /// The deadline passed; the child was killed.
    TimedOut { stderr_tail: String },
    /// The cancel token fired; the child was killed.
    Cancelled,
    /// Stdout exceeded [`MAX_STDOUT_BYTES`]; the child was killed.
    StdoutTooLarge,
}

enum IoFail {
    TooLarge,
    Io(io::Error),
}

/// Runs `inv` to completion, or kills it (with its process group) on timeout or cancel.
pub(crate) async fn run(
    inv: Invocation<'_>,
    cancel: &CancellationToken,
) -> Result<Finished, RunError> {
    let mut cmd = Command::new(inv.program);
    cmd.args(&inv.args)
        .env_clear()
        .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if inv.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(cwd) = inv.cwd {
        cmd.current_dir(cwd);
    }
    // Its own process group, so a kill reaches whatever the child started too.
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let deadline = Instant::now() + inv.timeout;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut tail = Vec::new();

    enum Stop {
        Io(Result<Vec<u8>, IoFail>),
        TimedOut,
        Cancelled,
    }
    let stop = {
        let io = async {
            let write = async {
                if let (Some(mut w), Some(data)) = (stdin, inv.stdin.as_deref()) {
                    // A child that exits without reading all of stdin is not an error here;
                    // its exit status tells.
                    let _ = w.write_all(data).await;
                    let _ = w.shutdown().await;
                }
                Ok::<(), IoFail>(())
            };
            let (out, (), ()) = tokio::try_join!(
                read_capped(stdout, MAX_STDOUT_BYTES),
                read_tail(stderr, &mut tail),
                write
            )?;
            Ok(out)
        };
        tokio::select! {
            r = io => Stop::Io(r),
            () = tokio::time::sleep_until(deadline) => Stop::TimedOut,
            () = cancel.cancelled() => Stop::Cancelled,
        }
    };
    let stdout = match stop {
        Stop::Io(Ok(stdout)) => stdout,
        Stop::Io(Err(fail)) => {
            kill(&mut child).await;
            return Err(match fail {
                IoFail::TooLarge => RunError::StdoutTooLarge,
                IoFail::Io(e) => RunError::Io(e),
            });
        }
        Stop::TimedOut => {
            kill(&mut child).await;
            return Err(RunError::TimedOut {
                stderr_tail: render_tail(&tail),
            });
        }
        Stop::Cancelled => {
            kill(&mut child).await;
            return Err(RunError::Cancelled);
        }
    };
    // Output is closed; the child is about to exit.
    let status = tokio::select! {
        status = child.wait() => status.map_err(RunError::Io)?,
        () = tokio::time::sleep_until(deadline) => {
            kill(&mut child).await;
            return Err(RunError::TimedOut { stderr_tail: render_tail(&tail) });
        }
        () = cancel.cancelled() => {
            kill(&mut child).await;
            return Err(RunError::Cancelled);
        }
    };
    if status.success() {
        Ok(Finished { stdout })
    } else {
        Err(RunError::Exit {
            status,
            stderr_tail: render_tail(&tail),
        })
    }
}

/// Kills the child's process group, then the child, and reaps it.
async fn kill(child: &mut Child) {
    #[cfg(unix)]
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        // The child has not been reaped (`id()` is `None` once it has), so its id still
        // names its own process group and cannot have been reused.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.start_kill();
    let _ = tokio::time::timeout(REAP_WAIT, child.wait()).await;
}

async fn read_capped(
    reader: Option<impl AsyncRead + Unpin>,
    cap: usize,
) -> Result<Vec<u8>, IoFail> {
    let mut out = Vec::new();
    let Some(reader) = reader else {
        return Ok(out);
    };
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .await
        .map_err(IoFail::Io)?;
    if out.len() > cap {
        return Err(IoFail::TooLarge);
    }
    Ok(out)
}

/// Reads everything, keeping about the last [`STDERR_TAIL_BYTES`] in `tail`.
async fn read_tail(
    reader: Option<impl AsyncRead + Unpin>,
    tail: &mut Vec<u8>,
) -> Result<(), IoFail> {
    let Some(mut reader) = reader else {
        return Ok(());
    };
    let mut buf = [0u8; 4096];
    loop {
        let n = reader.read(&mut buf).await.map_err(IoFail::Io)?;
        if n == 0 {
            return Ok(());
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 2 * STDERR_TAIL_BYTES {
            let cut = tail.len() - STDERR_TAIL_BYTES - 1;
            tail.drain(..cut);
        }
    }
}

/// The last [`STDERR_TAIL_BYTES`] of stderr as text, `…`-prefixed when cut.
pub(crate) fn render_tail(tail: &[u8]) -> String {
    let cut = tail.len() > STDERR_TAIL_BYTES;
    let bytes = &tail[tail.len().saturating_sub(STDERR_TAIL_BYTES)..];
    let text = String::from_utf8_lossy(bytes);
    // A cut may split a character; drop the replacement characters it leaves.
    let text = if cut {
        text.trim_start_matches('\u{fffd}')
    } else {
        &text
    };
    let text = text.trim();
    if cut {
        format!("…{text}")
    } else {
        text.to_owned()
    }
}
