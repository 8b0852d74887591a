//! `stratbox serve` over real HTTP on an ephemeral port: every endpoint, the refusals of
//! host files and looser profiles, 429 under overload, the token rule, SIGTERM; and the
//! Python client's tests and example against a real server.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::root;

/// A running `stratbox serve`, stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `stratbox serve --listen 127.0.0.1:0` with `args` and waits until it listens.
    fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ready = dir.path().join("ready");
        let mut child = Command::new(env!("CARGO_BIN_EXE_stratbox"))
            .args(["serve", "--listen", "127.0.0.1:0", "--ready-file"])
            .arg(&ready)
            .args(args)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("stratbox serve starts");
        let started = Instant::now();
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&ready)
                && text.ends_with('\n')
            {
                break text.trim().to_owned();
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                let _ = child
                    .stderr
                    .take()
                    .map(|mut e| e.read_to_string(&mut stderr));
                panic!("stratbox serve exited with {status}: {stderr}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        http(&self.addr, method, path, headers, body)
    }

    fn post(&self, path: &str, body: &str) -> Reply {
        self.request("POST", path, &[], body.as_bytes())
    }

    /// Waits until `/metrics` shows `line`.
    fn wait_for_metric(&self, line: &str) {
        let started = Instant::now();
        while !self
            .request("GET", "/metrics", &[], b"")
            .text()
            .contains(line)
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never saw {line}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
    }
}

/// An HTTP response: status, lower-case headers, body (chunked bodies decoded).
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on its own connection.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connects to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("sends the head");
    // A server that refuses early may close before reading the whole body.
    let _ = stream.write_all(body);
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("a status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("a header line");
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).expect("a chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("a hex chunk size");
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).expect("a chunk");
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body).expect("the body");
    }
    Reply {
        status,
        headers,
        body,
    }
}

#[test]
fn every_endpoint_answers() {
    let server = Server::start(&[]);
    let health = server.request("GET", "/v1/health", &[], b"");
    assert_eq!(
        (health.status, health.json()),
        (200, serde_json::json!({"status": "ok"}))
    );

    let run = server.post(
        "/v1/run",
        r#"{"id": "r1", "source": "import json, sys\nprint(json.load(sys.stdin)['x'] + 1)", "input": {"x": 1}}"#,
    );
    assert_eq!(run.status, 200, "{}", run.text());
    let outcome = run.json();
    assert_eq!(
        (
            &outcome["id"],
            &outcome["status"],
            &outcome["stdout"],
            &outcome["backend"]
        ),
        (&"r1".into(), &"ok".into(), &"2\n".into(), &"wasm".into())
    );

    // A strategy that fails or is refused is still a 200: the outcome says how it ended.
    let refused = server.post("/v1/run", r#"{"source": "import os"}"#);
    assert_eq!(
        (refused.status, &refused.json()["status"]),
        (200, &"rejected".into())
    );

    let check = server.post(
        "/v1/check",
        r#"{"id": "c", "source": "import math\nprint(math.pi)"}"#,
    );
    let verdict = check.json();
    assert_eq!(
        (check.status, &verdict["status"]),
        (200, &"ok".into()),
        "{verdict:#}"
    );
    assert_eq!(verdict["route"]["backend"], "wasm");
    let check = server.post("/v1/check", r#"{"source": "import subprocess"}"#);
    assert_eq!(check.json()["status"], "rejected");
    assert_eq!(check.json()["violations"][0]["rule"], "forbidden-import");

    let bad = server.post(
        "/v1/run",
        r#"{"id": "bad", "source": "print(1)", "sorce": 2}"#,
    );
    assert_eq!(bad.status, 400);
    assert_eq!(
        (&bad.json()["status"], &bad.json()["id"]),
        (&"invalid".into(), &"bad".into())
    );
    assert!(
        bad.json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown field")
    );

    let lines = "{\"id\": \"a\", \"source\": \"print('a')\"}\n\
                 not json\n\
                 {\"id\": \"b\", \"source\": \"raise ValueError\"}\n";
    let batch = server.post("/v1/batch", lines);
    assert_eq!(batch.status, 200);
    assert_eq!(batch.header("content-type"), Some("application/jsonl"));
    let mut statuses: Vec<(String, String)> = batch
        .text()
        .lines()
        .map(|line| {
            let outcome: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            (
                outcome["id"].as_str().unwrap_or_default().to_owned(),
                outcome["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [("2", "invalid"), ("a", "ok"), ("b", "error")]
            .map(|(id, status)| (id.to_owned(), status.to_owned()))
    );

    let metrics = server.request("GET", "/metrics", &[], b"").text();
    // Two runs ended `ok` (r1 and a); a check runs nothing and is not counted.
    for expected in [
        r#"stratbox_runs_total{status="ok",reason="",backend="wasm"} 2"#,
        r#"stratbox_runs_total{status="invalid",reason="",backend=""} 2"#,
        "stratbox_run_wall_seconds_bucket",
        "stratbox_queue_depth 0",
        "stratbox_runs_in_flight 0",
    ] {
        assert!(metrics.contains(expected), "missing {expected}:\n{metrics}");
    }
}

/// A files root holding `ok.py`, a symbolic link out of it, and a secret beside it.
#[test]
fn ready_wasm_instances_serve_requests_and_carry_nothing_between_them() {
    let server = Server::start(&["--wasm-ready", "2"]);
    let leaves = serde_json::json!({
        "source": "import json, sys\nCOUNTER = 41\njson.CACHED = 'x'\n\
                   open('/tmp/leak.txt', 'w').write('x')\nprint(json.load(sys.stdin)['n'])",
        "input": {"n": 7},
    })
    .to_string();
    let looks = serde_json::json!({
        "source": "import json\n\
                   try:\n    print(COUNTER)\nexcept NameError:\n    print('no global')\n\
                   try:\n    print(json.CACHED)\nexcept AttributeError:\n    print('no attribute')\n\
                   try:\n    open('/tmp/leak.txt')\nexcept FileNotFoundError:\n    print('no file')",
    })
    .to_string();
    for round in 0..4 {
        let left = server.post("/v1/run", &leaves);
        assert_eq!(left.status, 200, "{}", left.text());
        assert_eq!(
            (&left.json()["status"], &left.json()["stdout"]),
            (&"ok".into(), &"7\n".into()),
            "round {round}: {}",
            left.text()
        );
        let seen = server.post("/v1/run", &looks);
        assert_eq!(seen.status, 200, "{}", seen.text());
        assert_eq!(
            (&seen.json()["status"], &seen.json()["stdout"]),
            (&"ok".into(), &"no global\nno attribute\nno file\n".into()),
            "round {round}: {}",
            seen.text()
        );
    }
}

fn files_root() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("root");
    std::fs::write(root.join("ok.py"), "print('inside')").expect("strategy");
    std::fs::write(dir.path().join("secret.py"), "print('secret')").expect("secret");
    std::os::unix::fs::symlink(dir.path().join("secret.py"), root.join("link.py"))
        .expect("symlink");
    std::os::unix::fs::symlink("/etc", root.join("etc")).expect("symlink");
    (dir, root)
}

#[test]
fn host_files_are_refused_without_and_outside_the_files_root() {
    let (_dir, root) = files_root();
    let closed = Server::start(&[]);
    for body in [
        r#"{"path": "/etc/passwd"}"#,
        r#"{"source": "print(1)", "input_path": "/etc/passwd"}"#,
    ] {
        let reply = closed.post("/v1/run", body);
        assert_eq!(reply.status, 403, "{}", reply.text());
        let message = reply.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains("names a host file, and this server reads none"),
            "{message}"
        );
    }

    let open = Server::start(&["--files-root", &root.to_string_lossy()]);
    let inside = open.post("/v1/run", r#"{"path": "ok.py"}"#);
    assert_eq!(
        (inside.status, &inside.json()["stdout"]),
        (200, &"inside\n".into())
    );
    for path in ["/etc/passwd", "../secret.py", "link.py", "etc/passwd"] {
        let reply = open.post("/v1/run", &format!(r#"{{"path": "{path}"}}"#));
        assert_eq!(reply.status, 403, "{path}: {}", reply.text());
        let outcome = reply.json();
        assert_eq!(outcome["status"], "invalid");
        assert!(
            outcome["message"]
                .as_str()
                .unwrap_or_default()
                .contains("is outside the files root"),
            "{path}: {outcome:#}"
        );
        assert!(
            !reply.text().contains("root:"),
            "nothing of the file is read"
        );
    }
    let reply = open.post(
        "/v1/check",
        r#"{"source": "print(1)", "input_path": "link.py"}"#,
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
}

#[test]
fn the_servers_profile_is_the_ceiling_and_bounds_the_body() {
    let server = Server::start(&["--profile", "strict"]);
    let looser = server.post("/v1/run", r#"{"source": "print(1)", "profile": "default"}"#);
    assert_eq!(looser.status, 403, "{}", looser.text());
    assert!(looser.text().contains("allows more"), "{}", looser.text());
    let path = server.post(
        "/v1/run",
        r#"{"source": "print(1)", "profile": "/tmp/mine.toml"}"#,
    );
    assert_eq!(path.status, 403, "{}", path.text());
    let same = server.post("/v1/run", r#"{"source": "print(1)", "profile": "strict"}"#);
    assert_eq!(
        (same.status, &same.json()["policy"]),
        (200, &"strict".into())
    );
    // strict: 256 KiB of source and 8 MiB of input, plus 64 KiB of room.
    let mut body = br#"{"source": "print(1)", "input": ""#.to_vec();
    body.resize(body.len() + (9 << 20), b'x');
    body.extend_from_slice(b"\"}");
    let reply = server.request("POST", "/v1/run", &[], &body);
    assert_eq!(reply.status, 413, "{}", reply.text());
}

/// The keys of a profile's `[limits]` table, each set looser than `strict`'s.
const LOOSER_THAN_STRICT: &[(&str, &str)] = &[
    ("wall-time", r#""3s""#),
    ("fuel", "4000000001"),
    ("cpu-time", r#""3s""#),
    ("memory", r#""256MiB""#),
    ("stdout", r#""128KiB""#),
    ("stderr", "65537"),
    ("source", r#""512KiB""#),
    ("input", r#""16MiB""#),
    ("tmp-size", r#""128MiB""#),
    ("output-overflow", r#""truncate""#),
    ("metering", r#""epoch""#),
];

#[test]
fn request_limits_may_tighten_the_servers_profile_never_loosen_it() {
    let server = Server::start(&["--profile", "strict"]);
    for (key, value) in LOOSER_THAN_STRICT {
        for endpoint in ["/v1/run", "/v1/check"] {
            let body = format!(
                r#"{{"id": "{key}", "source": "print(1)", "limits": {{"{key}": {value}}}}}"#
            );
            let reply = server.post(endpoint, &body);
            assert_eq!(reply.status, 403, "{endpoint} {key}: {}", reply.text());
            let outcome = reply.json();
            assert_eq!(
                (&outcome["status"], &outcome["id"]),
                (&"invalid".into(), &(*key).into())
            );
            let message = outcome["message"].as_str().unwrap_or_default();
            assert!(
                message.starts_with(&format!("`limits.{key}` = "))
                    && message.contains("looser than the server's profile `strict`"),
                "{key}: {message}"
            );
        }
        // A profile strict allows (itself) does not lift the ceiling either.
        let body = format!(
            r#"{{"source": "print(1)", "profile": "strict", "limits": {{"{key}": {value}}}}}"#
        );
        assert_eq!(
            server.post("/v1/run", &body).status,
            403,
            "{key} with profile strict"
        );
    }

    // Equal to the ceiling is allowed.
    let equal = server.post(
        "/v1/run",
        r#"{"source": "print(1)", "limits": {"wall-time": "2s", "memory": "128MiB", "output-overflow": "kill"}}"#,
    );
    assert_eq!(
        (equal.status, &equal.json()["status"]),
        (200, &"ok".into()),
        "{}",
        equal.text()
    );

    // Tighter limits are the ones the run gets: this loop ends `ok` under strict's fuel
    // and is stopped by half the fuel it used (fuel is deterministic); the print is cut at
    // a smaller stdout cap.
    let looping = "total = 0\nfor i in range(100000):\n    total += i\nprint(total)";
    let plain = server.post(
        "/v1/run",
        &serde_json::json!({"source": looping}).to_string(),
    );
    let outcome = plain.json();
    assert_eq!(outcome["status"], "ok", "{outcome:#}");
    let used = outcome["usage"]["fuel"].as_u64().expect("fuel used");
    let fuel = server.post(
        "/v1/run",
        &serde_json::json!({"source": looping, "limits": {"fuel": used / 2}}).to_string(),
    );
    let outcome = fuel.json();
    assert_eq!(
        (fuel.status, &outcome["status"], &outcome["reason"]),
        (200, &"killed".into(), &"fuel".into()),
        "{outcome:#}"
    );
    let stdout = server.post(
        "/v1/run",
        r#"{"source": "print('x' * 100)", "limits": {"stdout": "16B"}}"#,
    );
    let outcome = stdout.json();
    assert_eq!(
        (&outcome["status"], &outcome["reason"], &outcome["stdout"]),
        (&"killed".into(), &"output".into(), &"x".repeat(16).into()),
        "{outcome:#}"
    );

    // Values no profile could hold, and unknown keys, are bad requests.
    for (limits, needle) in [
        (r#"{"memory": "1MiB"}"#, "limits.memory is 1MiB, below"),
        (
            r#"{"wall-time": "0s"}"#,
            "limits.wall-time must be greater than zero",
        ),
        (r#"{"walltime": "1s"}"#, "unknown field `walltime`"),
        (r#"{"memory": "lots"}"#, "`lots` is not a valid size"),
    ] {
        let reply = server.post(
            "/v1/run",
            &format!(r#"{{"source": "print(1)", "limits": {limits}}}"#),
        );
        assert_eq!(reply.status, 400, "{limits}: {}", reply.text());
        let message = reply.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains(needle), "{limits}: {message}");
    }
}

#[test]
fn overload_gets_429_with_retry_after() {
    let server = Server::start(&["--max-in-flight", "1", "--max-queue", "0"]);
    let addr = server.addr.clone();
    let slow = std::thread::spawn(move || {
        http(
            &addr,
            "POST",
            "/v1/run",
            &[],
            br#"{"id": "slow", "source": "import time\ntime.sleep(3)\nprint('slept')"}"#,
        )
    });
    // Wait until the slow run holds the only slot.
    server.wait_for_metric("stratbox_runs_in_flight 1");
    let refused = server.post("/v1/run", r#"{"source": "print(1)"}"#);
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    let slow = slow.join().expect("the slow client");
    assert_eq!(
        (slow.status, &slow.json()["stdout"]),
        (200, &"slept\n".into())
    );
    // Once the slot is free, requests are taken again.
    let after = server.post("/v1/run", r#"{"source": "print(1)"}"#);
    assert_eq!(after.status, 200);
    let metrics = server.request("GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("stratbox_refused_busy_total 1"),
        "{metrics}"
    );
}

#[test]
fn a_token_is_required_off_loopback_and_checked_when_given() {
    let out = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .expect("stratbox runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("not a loopback address, needs a bearer token"),
        "{out:?}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").expect("token");
    let server = Server::start(&["--token-file", &token.to_string_lossy()]);
    let body = br#"{"source": "print(1)"}"#;
    let none = server.request("POST", "/v1/run", &[], body);
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let wrong = server.request(
        "POST",
        "/v1/run",
        &[("Authorization", "Bearer s3cret-tokem")],
        body,
    );
    assert_eq!(wrong.status, 401);
    let metrics = server.request("GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 401);
    let right = server.request(
        "POST",
        "/v1/run",
        &[("Authorization", "Bearer s3cret-token")],
        body,
    );
    assert_eq!(
        (right.status, &right.json()["stdout"]),
        (200, &"1\n".into())
    );
    // Health stays open, for load balancers.
    assert_eq!(server.request("GET", "/v1/health", &[], b"").status, 200);
}

#[test]
fn sigterm_finishes_in_flight_runs_then_exits_zero() {
    let mut server = Server::start(&["--grace", "20s"]);
    let addr = server.addr.clone();
    let run = std::thread::spawn(move || {
        http(
            &addr,
            "POST",
            "/v1/run",
            &[],
            br#"{"source": "import time\ntime.sleep(1.5)\nprint('done')"}"#,
        )
    });
    server.wait_for_metric("stratbox_runs_in_flight 1");
    assert_eq!(server.terminate(), Some(0));
    let reply = run.join().expect("the client");
    assert_eq!(
        (reply.status, &reply.json()["stdout"]),
        (200, &"done\n".into())
    );
}

/// The containers labelled with `policy`, running or not.
#[cfg(feature = "test-docker")]
fn containers_of(policy: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=org.stratbox.policy={policy}"))
        .output()
        .expect("docker runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[cfg(feature = "test-docker")]
#[test]
fn sigterm_past_the_grace_period_leaves_no_container() {
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(crate::common::ensure_image());
    // A profile of its own, so that its containers carry a label no other test uses.
    let dir = tempfile::tempdir().expect("temp dir");
    let name = format!("serve-sigterm-{}", std::process::id());
    let profile = dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &profile,
        "[limits]\nwall-time = \"60s\"\ncpu-time = \"60s\"\n\
         [imports.native]\nnumpy = \"the test's container run\"\n",
    )
    .expect("profile");
    let mut server = Server::start(&["--grace", "1s", "--profile", &profile.to_string_lossy()]);
    let addr = server.addr.clone();
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&addr).expect("connects");
        let body = r#"{"source": "import numpy, time\ntime.sleep(50)"}"#;
        let _ = write!(
            stream,
            "POST /v1/run HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
    });
    let started = Instant::now();
    while containers_of(&name).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no container started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(server.terminate(), Some(0));
    assert_eq!(
        containers_of(&name),
        Vec::<String>::new(),
        "a container was left behind"
    );
    client.join().expect("the client");
}

/// The Python client's unit tests and its example, against a real server.
#[test]
fn python_client_tests_and_example_pass() {
    let (_dir, root_dir) = files_root();
    let server = Server::start(&["--files-root", &root_dir.to_string_lossy()]);
    let client = root().join("clients/python");
    let url = format!("http://{}", server.addr);
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "tests", "-v"])
        .current_dir(&client)
        .env("STRATBOX_URL", &url)
        .env("STRATBOX_FILES_ROOT", &root_dir)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("OK"), "{stderr}");
    let example = Command::new("python3")
        .arg(client.join("examples/check_dir.py"))
        .arg(root().join("examples/strategies"))
        .env("STRATBOX_URL", &url)
        .env("PYTHONPATH", &client)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&example.stdout);
    assert!(
        example.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&example.stderr)
    );
    assert!(stdout.contains("sma_crossover.py: ok (wasm)"), "{stdout}");
}

/// The load test tool (`cargo bench --bench serve_load`), scaled down: more clients than
/// the server takes, so that some get `429`; every request is answered, every outcome is
/// `ok`, and after SIGTERM the server exits 0 with no container left, warm or run.
#[cfg(feature = "test-docker")]
#[test]
fn the_load_test_tool_runs_scaled_down() {
    use stratbox::bench::load::{self, LoadConfig};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(crate::common::ensure_image());
    let config = LoadConfig {
        clients: 40,
        duration: Duration::from_secs(3),
        max_in_flight: 8,
        max_queue: 8,
        pool: 1,
        container_every: 10,
        ..LoadConfig::new(env!("CARGO_BIN_EXE_stratbox"))
    };
    let report = runtime
        .block_on(load::run(&config))
        .unwrap_or_else(|err| panic!("the load test could not run: {err}"));
    let text = report.render();
    assert!(report.answers.sent >= 40, "{text}");
    assert!(report.every_request_answered(), "{text}");
    assert!(report.every_outcome_ok(), "{text}");
    assert_eq!(report.exit, Ok(0), "{text}");
    assert_eq!(report.containers_left, Vec::<String>::new(), "{text}");
    // Memory was sampled (its flatness over 3 s is the full test's to judge).
    assert!(!report.rss.is_empty(), "{text}");
    assert!(
        text.contains("after SIGTERM: exit code 0, 0 containers left"),
        "{text}"
    );
}

/// `stratbox bench --backend serve` posts every workload to a real server: pure Python
/// on wasm and numpy/pandas in a warm container (`serve`), every workload in a warm
/// container (`serve-container`); the server's containers are gone when it ends.
#[cfg(feature = "test-docker")]
#[test]
fn bench_measures_the_serve_modes() {
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(crate::common::ensure_image());
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(["bench", "--runs", "1", "--backend", "serve", "--json"])
        .arg(&json_path)
        .current_dir(root())
        .output()
        .expect("stratbox bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    for mode in [
        "native",
        "native-isolated",
        "native-nearest",
        "serve",
        "serve-container",
    ] {
        assert!(table.contains(&format!("\n  {mode} ")), "{mode}:\n{table}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("the JSON file")).expect("JSON");
    let summary = report["summary"].as_array().expect("summary");
    for mode in ["serve", "serve-container"] {
        for workload in ["trivial", "stdlib", "compute", "numeric"] {
            assert!(
                summary.iter().any(|c| c["workload"] == workload
                    && c["mode"] == mode
                    && c["availability"]["state"] == "available"
                    && c["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0)),
                "{workload}/{mode} measured: {summary:?}"
            );
        }
    }
    // The server ran the bench's policy, written as the profile `bench`.
    assert_eq!(containers_of("bench"), Vec::<String>::new());
}
