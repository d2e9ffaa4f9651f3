//! A real `nats-server` child process on a free loopback port.

use std::collections::VecDeque;
use std::env;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::TestkitError;

/// How long [`NatsServer::start`] waits for the server to log "Server is ready".
pub const NATS_SERVER_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The line `nats-server` logs once it accepts clients.
const READY_LINE: &str = "Server is ready";

/// How many of the server's last log lines we keep for error messages.
const LOG_LINES_KEPT: usize = 50;

/// How many fresh ports [`NatsServer::start`] tries when another process grabs the port
/// between our probe and the server's bind.
const START_ATTEMPTS: usize = 3;

/// How long [`NatsServer::restart`] keeps retrying while the old port is still busy.
const RESTART_WINDOW: Duration = Duration::from_secs(5);

/// Pause between two restart attempts on a busy port.
const RESTART_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Where Debian installs the binary, which is not on every user's `PATH`.
const FALLBACK_DIR: &str = "/usr/sbin";

/// The last lines a server logged, shared with the thread that reads its stderr.
type LogTail = Arc<Mutex<VecDeque<String>>>;

/// A `nats-server` child process listening on `127.0.0.1` on a port picked for it.
///
/// The port is chosen once, so [`restart`](Self::restart) brings the server back where
/// clients expect it. Dropping the value kills the process.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    store_dir: Option<TempDir>,
    child: Option<Child>,
    log: LogTail,
}

impl NatsServer {
    /// Starts `nats-server -a 127.0.0.1 -p PORT` on a free port and waits until it is
    /// ready (at most [`NATS_SERVER_READY_TIMEOUT`]).
    ///
    /// Fails with [`TestkitError::NatsServerNotFound`] when the binary is missing.
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_inner(None)
    }

    /// Like [`start`](Self::start), with JetStream enabled and its store in a temporary
    /// directory that is removed on drop.
    pub fn start_with_jetstream() -> Result<Self, TestkitError> {
        let store = tempfile::Builder::new()
            .prefix("loom-nats-js-")
            .tempdir()
            .map_err(|err| TestkitError::io("cannot create a JetStream store directory", err))?;
        Self::start_inner(Some(store))
    }

    fn start_inner(store_dir: Option<TempDir>) -> Result<Self, TestkitError> {
        let binary = find_binary()?;
        let store_path = store_dir.as_ref().map(|dir| dir.path().to_owned());
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            match spawn_ready(&binary, port, store_path.as_deref()) {
                Ok((child, log)) => {
                    return Ok(Self {
                        binary,
                        port,
                        store_dir,
                        child: Some(child),
                        log,
                    });
                }
                // Another process took the port between our probe and the server's bind.
                Err(TestkitError::Exited { .. }) if attempt < START_ATTEMPTS => attempt += 1,
                Err(err) => return Err(err),
            }
        }
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory, if started with
    /// [`start_with_jetstream`](Self::start_with_jetstream).
    pub fn store_dir(&self) -> Option<&Path> {
        self.store_dir.as_ref().map(TempDir::path)
    }

    /// Whether the server process is running (it was not stopped and has not exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The last lines the server logged, oldest first.
    pub fn log_tail(&self) -> Vec<String> {
        lock_log(&self.log).iter().cloned().collect()
    }

    /// Kills the server and waits for it to exit. Stopping a stopped server does nothing.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // `kill` fails only if the process has already exited, which is what we want.
        let _ = child.kill();
        child
            .wait()
            .map_err(|err| TestkitError::io("cannot wait for nats-server to exit", err))?;
        Ok(())
    }

    /// Stops the server and starts it again on the same port (and the same JetStream
    /// store), retrying for a few seconds while the port is still busy.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop()?;
        let store_path = self.store_dir.as_ref().map(|dir| dir.path().to_owned());
        let deadline = Instant::now() + RESTART_WINDOW;
        loop {
            match spawn_ready(&self.binary, self.port, store_path.as_deref()) {
                Ok((child, log)) => {
                    self.child = Some(child);
                    self.log = log;
                    return Ok(());
                }
                Err(TestkitError::Exited { .. }) if Instant::now() < deadline => {
                    thread::sleep(RESTART_RETRY_PAUSE);
                }
                Err(err) => return Err(err),
            }
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // Errors cannot be reported from `drop`; the process is gone either way.
        let _ = self.stop();
    }
}

/// Finds `nats-server` on `PATH`, then in `/usr/sbin`.
fn find_binary() -> Result<PathBuf, TestkitError> {
    let path_dirs = env::var_os("PATH")
        .map(|paths| env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(std::iter::once(PathBuf::from(FALLBACK_DIR)))
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .ok_or(TestkitError::NatsServerNotFound)
}

/// Asks the OS for a free loopback port by binding port 0 and releasing it.
fn free_port() -> Result<u16, TestkitError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|err| TestkitError::io("cannot bind 127.0.0.1:0 to find a free port", err))?;
    let port = listener
        .local_addr()
        .map_err(|err| TestkitError::io("cannot read the probed port", err))?
        .port();
    Ok(port)
}

/// Spawns the server and blocks until it logs [`READY_LINE`], exits, or times out.
fn spawn_ready(
    binary: &Path,
    port: u16,
    store_dir: Option<&Path>,
) -> Result<(Child, LogTail), TestkitError> {
    let mut command = Command::new(binary);
    command
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(dir) = store_dir {
        command.arg("-js").arg("-sd").arg(dir);
    }
    let mut child = command
        .spawn()
        .map_err(|err| TestkitError::io(format!("cannot spawn {}", binary.display()), err))?;
    let Some(stderr) = child.stderr.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(TestkitError::io(
            "cannot read nats-server's log",
            std::io::Error::other("stderr was not captured"),
        ));
    };

    let log: LogTail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_LINES_KEPT)));
    // Capacity 1: the reader signals readiness once and never blocks on it.
    let (ready_tx, ready_rx) = mpsc::sync_channel::<()>(1);
    let thread_log = Arc::clone(&log);
    // The thread keeps draining stderr for the server's whole life, so the server never
    // blocks on a full pipe; it ends at EOF, when the process exits.
    thread::Builder::new()
        .name(format!("nats-server-{port}-log"))
        .spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let ready = line.contains(READY_LINE);
                {
                    let mut tail = lock_log(&thread_log);
                    if tail.len() == LOG_LINES_KEPT {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
                if ready {
                    let _ = ready_tx.try_send(());
                }
            }
        })
        .map_err(|err| TestkitError::io("cannot spawn the nats-server log reader", err))?;

    match ready_rx.recv_timeout(NATS_SERVER_READY_TIMEOUT) {
        Ok(()) => Ok((child, log)),
        Err(RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(TestkitError::NotReady {
                port,
                timeout: NATS_SERVER_READY_TIMEOUT,
                log: render_log(&log),
            })
        }
        // The reader hit EOF without seeing the ready line: the server exited.
        Err(RecvTimeoutError::Disconnected) => {
            let status = child
                .wait()
                .map_err(|err| TestkitError::io("cannot wait for nats-server to exit", err))?;
            Err(TestkitError::Exited {
                port,
                status,
                log: render_log(&log),
            })
        }
    }
}

fn lock_log(log: &LogTail) -> std::sync::MutexGuard<'_, VecDeque<String>> {
    // A panic while holding this lock cannot leave the deque inconsistent.
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn render_log(log: &LogTail) -> String {
    lock_log(log)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// Reads the server's INFO line over a plain TCP connection.
    fn info_line(port: u16) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf)?;
        stream.write_all(b"PING\r\n")?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    #[test]
    fn start_serves_clients_on_the_reported_port() {
        let server = NatsServer::start().expect("nats-server should start");
        assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
        let info = info_line(server.port()).expect("server should accept a TCP client");
        assert_eq!(info, "INFO");
        assert!(
            server
                .log_tail()
                .iter()
                .any(|line| line.contains(READY_LINE)),
            "log tail should contain the ready line"
        );
    }

    #[test]
    fn stop_closes_the_port_and_restart_reopens_the_same_port() {
        let mut server = NatsServer::start().expect("nats-server should start");
        let port = server.port();
        server.stop().expect("stop should succeed");
        assert!(!server.is_running());
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port should be closed after stop"
        );
        server.stop().expect("a second stop is a no-op");
        server.restart().expect("restart should succeed");
        assert!(server.is_running());
        assert_eq!(server.port(), port);
        info_line(port).expect("restarted server should accept a TCP client");
    }

    #[test]
    fn two_servers_get_different_ports() {
        let a = NatsServer::start().expect("first nats-server should start");
        let b = NatsServer::start().expect("second nats-server should start");
        assert_ne!(a.port(), b.port());
    }

    #[test]
    fn drop_kills_the_process() {
        let server = NatsServer::start().expect("nats-server should start");
        let port = server.port();
        drop(server);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port should be closed after drop"
        );
    }

    #[test]
    fn jetstream_server_uses_a_temporary_store_removed_on_drop() {
        let server = NatsServer::start_with_jetstream().expect("nats-server -js should start");
        let store = server
            .store_dir()
            .expect("a JetStream server has a store dir")
            .to_owned();
        assert!(store.is_dir());
        assert!(
            server
                .log_tail()
                .iter()
                .any(|line| line.contains("JetStream")),
            "log should mention JetStream"
        );
        drop(server);
        assert!(!store.exists(), "store dir should be removed on drop");
    }

    #[test]
    fn port_taken_by_another_process_is_reported_as_exited() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a probe listener");
        let port = listener.local_addr().expect("probe address").port();
        let binary = find_binary().expect("nats-server should be installed");
        let err = spawn_ready(&binary, port, None).expect_err("port is taken");
        assert!(
            matches!(err, TestkitError::Exited { port: p, .. } if p == port),
            "unexpected error: {err}"
        );
    }

    #[test]
    fn missing_binary_message_says_how_to_install() {
        let message = TestkitError::NatsServerNotFound.to_string();
        assert!(
            message.contains("apt-get install -y nats-server"),
            "{message}"
        );
    }
}
