//! A real `stratbox serve` for the bench and the load test, and the few HTTP/1.1 requests
//! they send it: one connection per request (`Connection: close`), as a plain client such
//! as Python's `urllib` does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// An HTTP response: the status, the headers (names in lower case), the body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (a chunked body is not decoded: the server sends lengths for these
    /// endpoints).
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|err| {
            format!(
                "the {} response is not JSON ({err}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends one request on a new connection and reads the whole response, within `timeout`
/// (connecting included). `Err` says what failed: connecting, sending, the deadline, a
/// response that is not HTTP.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Reply, String> {
    match tokio::time::timeout(timeout, exchange(addr, method, path, body)).await {
        Ok(reply) => reply,
        Err(_) => Err(format!(
            "no response to {method} {path} within {} s",
            timeout.as_secs_f64()
        )),
    }
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Reply, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|err| format!("cannot connect to {addr}: {err}"))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    stream
        .write_all(&message)
        .await
        .map_err(|err| format!("cannot send {method} {path}: {err}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|err| format!("cannot read the response to {method} {path}: {err}"))?;
    parse(&raw).ok_or_else(|| {
        format!(
            "the response to {method} {path} is not HTTP: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        )
    })
}

/// Splits a whole `Connection: close` response into status, headers and body.
fn parse(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

/// How long a server may take from its start to listening (its warm pool is started
/// before it listens).
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a server may take to exit after SIGTERM.
pub const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// A `stratbox serve` child process on a free loopback port. Dropping it sends SIGTERM
/// (the server then removes its containers and exits on its own); [`ServeProcess::stop`]
/// also waits for the exit.
#[derive(Debug)]
pub struct ServeProcess {
    child: tokio::process::Child,
    addr: SocketAddr,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl ServeProcess {
    /// Starts `exe serve --listen 127.0.0.1:0 --ready-file F -q ARGS` and waits until it
    /// listens. Its stderr goes to a file, quoted when it fails.
    pub async fn start(exe: &Path, args: &[&str]) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("stratbox-serve-")
            .tempdir()
            .map_err(|err| format!("cannot make a temporary directory: {err}"))?;
        let ready = dir.path().join("ready");
        let stderr = dir.path().join("stderr");
        let log = std::fs::File::create(&stderr)
            .map_err(|err| format!("cannot create {}: {err}", stderr.display()))?;
        let mut child = tokio::process::Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "-q", "--ready-file"])
            .arg(&ready)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|err| format!("cannot run {} serve: {err}", exe.display()))?;
        let started = Instant::now();
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&ready)
                && let Some(line) = text.strip_suffix('\n')
            {
                break line
                    .parse::<SocketAddr>()
                    .map_err(|err| format!("the server wrote {line:?} as its address: {err}"))?;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "stratbox serve exited with {status} before listening: {}",
                    tail(&stderr)
                ));
            }
            if started.elapsed() > SERVER_START_TIMEOUT {
                terminate(&child);
                return Err(format!(
                    "stratbox serve did not listen within {} s: {}",
                    SERVER_START_TIMEOUT.as_secs(),
                    tail(&stderr)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Ok(Self {
            child,
            addr,
            stderr,
            _dir: dir,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id (for reading its resident memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The last lines of its stderr.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }

    /// `GET /metrics`: the value of the sample named exactly `name` (labels included, as
    /// in `stratbox_container_pool{state="ready"}`), or `None` when absent.
    pub async fn metric(&self, name: &str) -> Result<Option<f64>, String> {
        let reply = request(self.addr, "GET", "/metrics", b"", Duration::from_secs(30)).await?;
        if reply.status != 200 {
            return Err(format!("/metrics answered {}", reply.status));
        }
        let text = String::from_utf8_lossy(&reply.body);
        Ok(text.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(' ')?;
            value.trim().parse().ok()
        }))
    }

    /// Sends SIGTERM and waits for the exit: its exit code (`None` when a signal ended
    /// it), or why it did not exit in [`SERVER_STOP_TIMEOUT`] (it is then killed).
    pub async fn stop(mut self) -> Result<Option<i32>, String> {
        terminate(&self.child);
        match tokio::time::timeout(SERVER_STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => Ok(status.code()),
            Ok(Err(err)) => Err(format!("cannot wait for stratbox serve: {err}")),
            Err(_) => {
                let _ = self.child.start_kill();
                Err(format!(
                    "stratbox serve did not exit within {} s of SIGTERM: {}",
                    SERVER_STOP_TIMEOUT.as_secs(),
                    tail(&self.stderr)
                ))
            }
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            terminate(&self.child);
        }
    }
}

/// Sends SIGTERM to `child` if it still runs.
fn terminate(child: &tokio::process::Child) {
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// The last few lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(8);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_split_into_status_headers_and_body() {
        let reply = parse(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\ncontent-length: 2\r\n\r\n{}",
        )
        .expect("a response");
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(reply.body, b"{}");
        assert!(parse(b"garbage").is_none());
        assert!(parse(b"HTTP/1.1 abc\r\n\r\n").is_none());
    }
}
