//! The wasm backend, through the real guest. Most tests switch the validator off: the
//! guest must hold on its own, whatever layer 1 would have caught.

use std::time::{Duration, Instant};

use stratbox::{BackendKind, Reason, Status};

use crate::common::{assert_ended, native_python, policy, run_on, unvalidated, wasm};

#[tokio::test]
async fn hello_world() {
    let outcome = wasm("print('hello, world')", "").await;
    assert_ended(&outcome, Status::Ok, None);
    assert_eq!(outcome.stdout, "hello, world\n");
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(outcome.backend, Some(BackendKind::Wasm));
    assert!(outcome.usage.fuel > 0, "fuel is metered");
    assert!(outcome.usage.memory_peak_bytes > 0, "memory is tracked");
}

#[tokio::test]
async fn stdlib_heavy_script() {
    let source = r#"
import json, statistics, datetime, decimal, re, fractions, collections, itertools, csv, io
prices = [101.5, 99.25, 100.75, 102.0, 98.5]
d = datetime.date(2024, 2, 28) + datetime.timedelta(days=2)
t = datetime.datetime.strptime("2024-03-01 09:30", "%Y-%m-%d %H:%M")
money = decimal.Decimal("19.99") * 3
m = re.match(r"(?P<sym>[A-Z]+)-(?P<n>\d+)", "AAPL-42")
rows = list(csv.reader(io.StringIO("a,b\n1,2\n")))
print(json.dumps({
    "mean": statistics.fmean(prices),
    "stdev": round(statistics.stdev(prices), 6),
    "date": d.isoformat(),
    "minute": t.minute,
    "money": str(money),
    "sym": m["sym"],
    "half": str(fractions.Fraction(1, 2) + fractions.Fraction(1, 3)),
    "top": collections.Counter("abracadabra").most_common(1)[0][0],
    "pairs": len(list(itertools.combinations(range(5), 2))),
    "csv": rows[1],
}, sort_keys=True))
"#;
    let outcome = wasm(source, "").await;
    assert_ended(&outcome, Status::Ok, None);
    let value: serde_json::Value = serde_json::from_str(outcome.stdout.trim()).expect("JSON");
    assert_eq!(value["date"], "2024-03-01");
    assert_eq!(value["money"], "59.97");
    assert_eq!(value["half"], "5/6");
    // Every figure matches what the machine's own CPython computes.
    assert_eq!(outcome.stdout, native_python(source, b""));
}

#[tokio::test]
async fn input_arrives_on_stdin() {
    let source = "import sys, json\ndoc = json.load(sys.stdin)\nprint(sum(doc['xs']))";
    let outcome = run_on(
        BackendKind::Wasm,
        source,
        br#"{"xs": [1, 2, 39]}"#,
        None,
        &unvalidated(""),
    )
    .await;
    assert_ended(&outcome, Status::Ok, None);
    assert_eq!(outcome.stdout, "42\n");
}

#[tokio::test]
async fn data_dir_is_readable_and_not_writable() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bars.csv"), "close\n1\n2\n").expect("fixture");
    let source = r#"
import os
print(open('/data/bars.csv').read().splitlines()[1:])
print(sorted(os.listdir('/data')))
for attempt in (lambda: open('/data/bars.csv', 'a'), lambda: open('/data/new.txt', 'w'),
                lambda: os.remove('/data/bars.csv'), lambda: os.mkdir('/data/sub')):
    try:
        attempt()
        print('WROTE')
    except OSError as e:
        print('denied', type(e).__name__)
"#;
    let outcome = run_on(
        BackendKind::Wasm,
        source,
        b"",
        Some(dir.path()),
        &unvalidated(""),
    )
    .await;
    assert_ended(&outcome, Status::Ok, None);
    assert!(
        outcome.stdout.starts_with("['1', '2']\n['bars.csv']\n"),
        "{}",
        outcome.stdout
    );
    assert_eq!(
        outcome.stdout.matches("denied").count(),
        4,
        "{}",
        outcome.stdout
    );
    assert!(!outcome.stdout.contains("WROTE"));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["bars.csv"], "nothing was created on the host");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("bars.csv")).expect("fixture"),
        "close\n1\n2\n"
    );
}

#[tokio::test]
async fn busy_loop_runs_out_of_fuel() {
    let outcome = wasm(
        "while True:\n    pass",
        "[limits]\nfuel = 200_000_000\nwall-time = \"60s\"",
    )
    .await;
    assert_ended(&outcome, Status::Killed, Some(Reason::Fuel));
    assert_eq!(outcome.exit_code, None);
    assert!(outcome.usage.fuel >= 200_000_000, "{:?}", outcome.usage);
}

#[tokio::test]
async fn fuel_is_deterministic() {
    let source = "total = 0\nfor i in range(20000):\n    total += i * i\nprint(total)";
    let first = wasm(source, "").await;
    let second = wasm(source, "").await;
    assert_ended(&first, Status::Ok, None);
    assert_eq!(first.usage.fuel, second.usage.fuel);
}

#[tokio::test]
async fn busy_loop_hits_the_deadline_with_epoch_metering() {
    let started = Instant::now();
    let outcome = wasm(
        "while True:\n    pass",
        "[limits]\nmetering = \"epoch\"\nwall-time = \"500ms\"",
    )
    .await;
    assert_ended(&outcome, Status::Killed, Some(Reason::Deadline));
    assert_eq!(outcome.usage.fuel, 0, "epoch metering counts no fuel");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn busy_loop_hits_the_deadline_under_fuel_metering_too() {
    // Fuel enough for minutes: the deadline, checked where the guest yields every
    // million units of fuel, must end it first.
    let outcome = wasm(
        "while True:\n    pass",
        "[limits]\nfuel = 1_000_000_000_000\nwall-time = \"500ms\"",
    )
    .await;
    assert_ended(&outcome, Status::Killed, Some(Reason::Deadline));
    assert!(outcome.usage.fuel > 0, "fuel is still counted");
    assert!(
        outcome.usage.wall_ms >= 490.0 && outcome.usage.wall_ms < 1_500.0,
        "stopped at {} ms for a 500 ms deadline",
        outcome.usage.wall_ms
    );
}

#[tokio::test]
async fn sleeping_guest_stops_at_the_deadline() {
    let started = Instant::now();
    let outcome = wasm(
        "import time\ntime.sleep(10**6)",
        "[limits]\nwall-time = \"700ms\"",
    )
    .await;
    let elapsed = started.elapsed();
    assert_ended(&outcome, Status::Killed, Some(Reason::Deadline));
    assert!(
        outcome.usage.wall_ms >= 690.0 && outcome.usage.wall_ms < 1_500.0,
        "stopped at {} ms for a 700 ms deadline",
        outcome.usage.wall_ms
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn huge_allocation_is_a_memory_kill() {
    let outcome = wasm(
        "b = bytearray(2**31)\nprint('allocated')",
        "[limits]\nmemory = \"128MiB\"",
    )
    .await;
    assert_ended(&outcome, Status::Killed, Some(Reason::Memory));
    assert!(!outcome.stdout.contains("allocated"));
    assert!(
        outcome.usage.memory_peak_bytes <= 128 << 20,
        "{:?}",
        outcome.usage
    );
}

#[tokio::test]
async fn growing_list_is_a_memory_kill() {
    let outcome = wasm(
        "xs = []\nwhile True:\n    xs.append('x' * 100_000)",
        "[limits]\nmemory = \"96MiB\"",
    )
    .await;
    assert_ended(&outcome, Status::Killed, Some(Reason::Memory));
}

#[tokio::test]
async fn printing_loop_is_truncated_at_the_cap() {
    let outcome = wasm(
        "for i in range(100_000):\n    print('line', i)\nprint('done')",
        "[limits]\nstdout = \"4KiB\"",
    )
    .await;
    assert_ended(&outcome, Status::Ok, None);
    assert!(outcome.truncated.stdout);
    assert!(!outcome.truncated.stderr);
    assert_eq!(outcome.stdout.len(), 4096);
    assert!(outcome.stdout.starts_with("line 0\nline 1\n"));
}

/// One write larger than the guest's write permit (64 KiB once) is kept whole, and a
/// write larger than the cap is cut at the cap and says so: nothing is dropped silently.
#[tokio::test]
async fn large_single_writes_are_kept_whole_up_to_the_cap() {
    let source = "import os, sys\nprint('x' * 100_000)\nsys.stdout.flush()\n\
                  print(os.write(1, b'y' * 300_000))\nprint('z' * 200_000, file=sys.stderr)";
    let outcome = wasm(source, "").await;
    assert_ended(&outcome, Status::Ok, None);
    assert!(!outcome.truncated.stdout, "{:?}", outcome.truncated);
    assert!(!outcome.truncated.stderr, "{:?}", outcome.truncated);
    let expected = format!("{}\n{}300000\n", "x".repeat(100_000), "y".repeat(300_000));
    assert_eq!(outcome.stdout.len(), expected.len());
    assert!(
        outcome.stdout == expected,
        "stdout differs from what was printed"
    );
    assert_eq!(outcome.stderr.len(), 200_001);
    let outcome = wasm(
        "import sys\nsys.stdout.write('w' * 3_000_000)",
        "[limits]\nstdout = \"1MiB\"",
    )
    .await;
    assert_ended(&outcome, Status::Ok, None);
    assert!(outcome.truncated.stdout);
    assert_eq!(outcome.stdout.len(), 1 << 20);
}

#[tokio::test]
async fn output_overflow_kills_when_the_policy_says_so() {
    let outcome = wasm(
        "import sys\nfor i in range(100_000):\n    print('x' * 100, file=sys.stderr)\nprint('survived')",
        "[limits]\nstderr = \"1KiB\"\noutput-overflow = \"kill\"",
    )
    .await;
    assert_ended(&outcome, Status::Killed, Some(Reason::Output));
    assert!(outcome.truncated.stderr);
    assert_eq!(outcome.stderr.len(), 1024);
    assert!(!outcome.stdout.contains("survived"));
}

#[tokio::test]
async fn exception_reports_the_strategys_traceback() {
    let source = "def signal(x):\n    return 1 / x\n\nprint('before')\nsignal(0)\n";
    let outcome = wasm(source, "").await;
    assert_ended(&outcome, Status::Error, None);
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.stdout, "before\n");
    let stderr = &outcome.stderr;
    assert!(
        stderr.contains("Traceback (most recent call last)"),
        "{stderr}"
    );
    assert!(stderr.contains("File \"strategy.py\", line 5"), "{stderr}");
    assert!(
        stderr.contains("File \"strategy.py\", line 2, in signal"),
        "{stderr}"
    );
    assert!(
        stderr.contains("return 1 / x"),
        "source lines are shown: {stderr}"
    );
    assert!(stderr.contains("ZeroDivisionError"), "{stderr}");
    assert!(
        !stderr.contains("runner.py"),
        "runner frames are hidden: {stderr}"
    );
}

#[tokio::test]
async fn syntax_error_names_the_line() {
    let outcome = wasm("x = 1\nprint('ok'\ny = 2\n", "").await;
    assert_ended(&outcome, Status::Error, None);
    assert!(outcome.stderr.contains("SyntaxError"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("line 2"), "{}", outcome.stderr);
}

#[tokio::test]
async fn sys_exit_codes_pass_through() {
    let outcome = wasm("import sys\nprint('bye')\nsys.exit(3)", "").await;
    assert_ended(&outcome, Status::Error, None);
    assert_eq!(outcome.exit_code, Some(3));
    assert_eq!(outcome.stdout, "bye\n");
    let outcome = wasm("import sys\nsys.exit(0)", "").await;
    assert_ended(&outcome, Status::Ok, None);
    // WASI preview 2 carries only success or failure through `exit`: os._exit(7) is 1.
    let outcome = wasm("import os\nos._exit(7)", "").await;
    assert_ended(&outcome, Status::Error, None);
    assert_eq!(outcome.exit_code, Some(1));
}

#[tokio::test]
async fn deep_recursion_is_an_error_not_a_crash() {
    let outcome = wasm("def f(n):\n    return f(n + 1)\nf(0)", "").await;
    assert_ended(&outcome, Status::Error, None);
    assert!(
        outcome.stderr.contains("RecursionError"),
        "{}",
        outcome.stderr
    );
}

#[tokio::test]
async fn host_files_are_not_there() {
    let source = r#"
import os
for path in ('/etc/passwd', '/etc/hostname', '/proc/self/environ', '../../etc/passwd', '/'):
    try:
        print(path, 'READ', open(path).read()[:40])
    except OSError as e:
        print(path, 'denied', type(e).__name__)
for path in ('/etc', '/home', '/data', '/proc', '..'):
    try:
        print(path, 'LISTED', os.listdir(path))
    except OSError as e:
        print(path, 'denied', type(e).__name__)
print('root', sorted(os.listdir('/')))
"#;
    let outcome = wasm(source, "").await;
    assert_ended(&outcome, Status::Ok, None);
    assert!(!outcome.stdout.contains("READ"), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("LISTED"), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("root:"), "{}", outcome.stdout);
    assert_eq!(
        outcome.stdout.matches("denied").count(),
        10,
        "{}",
        outcome.stdout
    );
    // Without a data directory the root holds the run's /tmp and nothing else.
    assert!(
        outcome.stdout.ends_with("root ['tmp']\n"),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn environment_is_empty() {
    // SAFETY-free check: the host's environment has PATH and HOME; the guest sees none.
    let outcome = wasm(
        "import os\nprint(dict(os.environ))\nprint(os.getenv('PATH'), os.getenv('HOME'))",
        "",
    )
    .await;
    assert_ended(&outcome, Status::Ok, None);
    assert_eq!(outcome.stdout, "{}\nNone None\n");
}

#[tokio::test]
async fn sockets_and_name_lookup_fail() {
    let source = r#"
import socket
for family, addr in ((socket.AF_INET, ('127.0.0.1', 22)), (socket.AF_INET, ('1.1.1.1', 53)),
                     (socket.AF_INET6, ('::1', 80))):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect(addr)
        print('CONNECTED', addr)
    except OSError as e:
        print('denied', type(e).__name__)
try:
    print('RESOLVED', socket.getaddrinfo('localhost', 80))
except OSError as e:
    print('denied', type(e).__name__)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b'x', ('127.0.0.1', 53))
    print('SENT')
except OSError as e:
    print('denied', type(e).__name__)
"#;
    let outcome = wasm(source, "").await;
    // `socket` is not in the guest at all: the import itself fails, which is the
    // strongest form of "no network". Either way nothing may connect or resolve.
    assert!(!outcome.stdout.contains("CONNECTED"), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("RESOLVED"), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("SENT"), "{}", outcome.stdout);
    if outcome.status == Status::Error {
        assert!(outcome.stderr.contains("socket"), "{}", outcome.stderr);
    } else {
        assert_eq!(
            outcome.stdout.matches("denied").count(),
            5,
            "{}",
            outcome.stdout
        );
    }
}

#[tokio::test]
async fn modules_the_guest_lacks_cannot_be_imported() {
    for module in [
        "numpy",
        "subprocess",
        "ctypes",
        "socket",
        "urllib.request",
        "sqlite3",
    ] {
        let outcome = wasm(&format!("import {module}\nprint('IMPORTED')"), "").await;
        assert_ended(&outcome, Status::Error, None);
        assert!(!outcome.stdout.contains("IMPORTED"), "{module}");
        assert!(
            outcome.stderr.contains("ModuleNotFoundError")
                || outcome.stderr.contains("ImportError"),
            "{module}: {}",
            outcome.stderr
        );
    }
}

#[tokio::test]
async fn no_processes() {
    let source = r#"
import os
for name in ('fork', 'system', 'execv', 'execve', 'spawnv', 'kill', 'posix_spawn'):
    print(name, hasattr(os, name))
try:
    os.popen('id').read()
    print('SPAWNED')
except Exception as e:
    print('popen denied', type(e).__name__)
"#;
    let outcome = wasm(source, "").await;
    assert_ended(&outcome, Status::Ok, None);
    for name in [
        "fork",
        "system",
        "execv",
        "execve",
        "spawnv",
        "kill",
        "posix_spawn",
    ] {
        assert!(
            outcome.stdout.contains(&format!("{name} False")),
            "{name}: {}",
            outcome.stdout
        );
    }
    assert!(
        outcome.stdout.contains("popen denied"),
        "{}",
        outcome.stdout
    );
}

#[tokio::test]
async fn runs_share_no_state() {
    let first = wasm(
        "import json, sys\nCOUNTER = 41\njson.CACHED = 'leak'\nsys.modules['leak'] = 1\nprint('set')",
        "",
    )
    .await;
    assert_ended(&first, Status::Ok, None);
    let second = wasm(
        "import json, sys\nprint('COUNTER' in globals(), hasattr(json, 'CACHED'), 'leak' in sys.modules)",
        "",
    )
    .await;
    assert_ended(&second, Status::Ok, None);
    assert_eq!(second.stdout, "False False False\n");
}

#[tokio::test]
async fn concurrent_runs_are_isolated() {
    let runs = (0..6).map(|i| {
        let source = format!("import time\nX = {i}\ntime.sleep(0.05)\nprint(X)");
        async move { wasm(&source, "").await }
    });
    let outcomes = futures_util::future::join_all(runs).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_ended(outcome, Status::Ok, None);
        assert_eq!(outcome.stdout, format!("{i}\n"));
    }
}

#[tokio::test]
async fn the_example_strategy_runs() {
    let root = crate::common::root();
    let source = std::fs::read_to_string(root.join("examples/strategies/sma_crossover.py"))
        .expect("example");
    let input = std::fs::read(root.join("examples/data/prices.json")).expect("prices");
    let outcome = run_on(BackendKind::Wasm, &source, &input, None, &policy("")).await;
    assert_ended(&outcome, Status::Ok, None);
    let last = outcome.stdout.lines().last().expect("a summary line");
    let summary: serde_json::Value = serde_json::from_str(last).expect("JSON summary");
    assert_eq!(summary["bars"], 500);
    assert!(summary["trades"].as_u64().expect("trades") > 0);
    // The sandboxed run computes exactly what native CPython computes.
    let native = std::process::Command::new("python3")
        .arg(root.join("examples/strategies/sma_crossover.py"))
        .stdin(std::fs::File::open(root.join("examples/data/prices.json")).expect("prices"))
        .output()
        .expect("python3 runs");
    assert_eq!(outcome.stdout, String::from_utf8_lossy(&native.stdout));
}

#[tokio::test]
async fn a_failed_set_up_is_retried_on_the_next_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let guest = dir.path().join("guest.wasm");
    let sandbox = stratbox::Sandbox::builder().guest_path(&guest).build();
    let policy = stratbox::Policy::load("default").expect("profile");
    let request = stratbox::Request::new("print('hi')", "hi.py");
    let missing = sandbox.run(&request, &policy).await;
    assert_eq!(missing.status, Status::Unavailable, "{missing:?}");
    assert_eq!(missing.cause, Some(stratbox::Cause::GuestMissing));
    // The guest appears (a build finished): the same sandbox now runs.
    let built = stratbox::backend::wasm::default_guest_path();
    std::fs::copy(&built, &guest).expect("guest copied");
    let ran = sandbox.run(&request, &policy).await;
    assert_eq!(
        (ran.status, ran.stdout.as_str()),
        (Status::Ok, "hi\n"),
        "{ran:?}"
    );
    assert_eq!(ran.cause, None);
    assert_eq!(ran.schema_version, stratbox::outcome::SCHEMA_VERSION);
}

/// `doctest.testmod()` runs the file's examples in the guest, with the validator on; the
/// guest's `pdb` is a stand-in whose debugger cannot start (validator off, so that `pdb` can
/// be imported at all).
#[tokio::test]
async fn doctest_runs_without_a_debugger() {
    let source = "\"\"\"\n>>> 1 + 1\n2\n>>> sorted({3, 1})\n[1, 3]\n\"\"\"\nimport doctest\nprint(doctest.testmod())\n";
    let outcome = run_on(
        BackendKind::Wasm,
        source,
        b"",
        None,
        &stratbox::Policy::default_profile(),
    )
    .await;
    assert_ended(&outcome, Status::Ok, None);
    assert_eq!(outcome.stdout, "TestResults(failed=0, attempted=2)\n");
    let outcome = wasm("import pdb\npdb.set_trace()\n", "").await;
    assert_ended(&outcome, Status::Error, None);
    assert!(
        outcome.stderr.contains("no debugger"),
        "stderr: {}",
        outcome.stderr
    );
    let outcome = wasm("import pdb\npdb.Pdb().set_trace()\n", "").await;
    assert_ended(&outcome, Status::Error, None);
}
