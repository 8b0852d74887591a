//! The wasm guest's file system: its own in-memory `/tmp` beside a read-only `/data`, and
//! nothing else (validator off: the guest holds on its own).

use stratbox::{BackendKind, Reason, Status};

use crate::common::{assert_ended, run_on, unvalidated, wasm};

#[tokio::test]
async fn tempfile_pathlib_and_open_work_in_tmp() {
    let source = r#"
import csv, os, pathlib, tempfile, time
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "bars.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["day", "close"])
        writer.writerows([[1, 101.5], [2, 99.25]])
    with open(path, newline="") as f:
        print("csv", list(csv.reader(f)))
    st = os.stat(path)
    print("stat", st.st_size, abs(st.st_mtime - time.time()) < 3600)
    print("inside", os.listdir(d), d.startswith("/tmp/"))
print("after", os.listdir("/tmp"))
p = pathlib.Path("/tmp/x.csv")
p.write_text("a,b\n1,2\n")
print("pathlib", p.read_text().splitlines(), p.stat().st_size, p.exists())
with open("/tmp/log", "w") as f:
    f.write("one\n")
with open("/tmp/log", "a") as f:
    f.write("two\n")
with open("/tmp/log", "r+") as f:
    f.seek(4)
    f.write("TWO")
    f.seek(0)
    print("rw", f.read().split())
    f.truncate(3)
print("truncated", open("/tmp/log").read())
with open("relative.txt", "w") as f:
    f.write("cwd is /tmp")
print("cwd", os.getcwd(), open("/tmp/relative.txt").read())
os.rename("/tmp/x.csv", "/tmp/y.csv")
os.makedirs("/tmp/a/b/c")
os.replace("/tmp/y.csv", "/tmp/a/b/c/z.csv")
print("tree", sorted(os.listdir("/tmp")), os.listdir("/tmp/a/b/c"))
print("scandir", sorted((e.name, e.is_dir(), e.is_file()) for e in os.scandir("/tmp")))
os.unlink("/tmp/a/b/c/z.csv")
os.removedirs("/tmp/a/b/c")
with tempfile.TemporaryFile() as t:
    t.write(b"unnamed")
    t.seek(0)
    print("tempfile", t.read())
print("left", sorted(os.listdir("/tmp")))
"#;
    let outcome = wasm(source, "").await;
    assert_ended(&outcome, Status::Ok, None);
    let expected = "\
csv [['day', 'close'], ['1', '101.5'], ['2', '99.25']]
stat 29 True
inside ['bars.csv'] True
after []
pathlib ['a,b', '1,2'] 8 True
rw ['one', 'TWO']
truncated one
cwd /tmp cwd is /tmp
tree ['a', 'log', 'relative.txt'] ['z.csv']
scandir [('a', True, False), ('log', False, True), ('relative.txt', False, True)]
tempfile b'unnamed'
left ['log', 'relative.txt']
";
    assert_eq!(outcome.stdout, expected, "{}", outcome.stderr);
}

#[tokio::test]
async fn error_codes_are_the_posix_ones() {
    let source = r#"
import errno, os
def code(action):
    try:
        action()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
os.mkdir("/tmp/d")
open("/tmp/d/f", "w").close()
print("missing", code(lambda: open("/tmp/nope")))
print("exists", code(lambda: os.mkdir("/tmp/d")))
print("exclusive", code(lambda: os.open("/tmp/d/f", os.O_CREAT | os.O_EXCL | os.O_WRONLY)))
print("not-a-dir", code(lambda: open("/tmp/d/f/x", "w")))
print("is-a-dir", code(lambda: open("/tmp/d", "w")))
print("unlink-dir", code(lambda: os.unlink("/tmp/d")))
print("not-empty", code(lambda: os.rmdir("/tmp/d")))
print("rmdir-file", code(lambda: os.rmdir("/tmp/d/f")))
print("into-itself", code(lambda: os.rename("/tmp/d", "/tmp/d/e")))
print("escape", code(lambda: open("/tmp/../escape", "w")))
print("root", code(lambda: open("/outside", "w")))
print("mkdir-root", code(lambda: os.mkdir("/newdir")))
print("rmdir-tmp", code(lambda: os.rmdir("/tmp")))
print("etc", code(lambda: open("/etc/passwd")))
print("long", code(lambda: open("/tmp/" + "n" * 256, "w")))
"#;
    let outcome = wasm(source, "").await;
    assert_ended(&outcome, Status::Ok, None);
    let expected = "\
missing ENOENT
exists EEXIST
exclusive EEXIST
not-a-dir ENOTDIR
is-a-dir EISDIR
unlink-dir EISDIR
not-empty ENOTEMPTY
rmdir-file ENOTDIR
into-itself EINVAL
escape EPERM
root EROFS
mkdir-root EROFS
rmdir-tmp EROFS
etc ENOENT
long ENAMETOOLONG
";
    assert_eq!(outcome.stdout, expected, "{}", outcome.stderr);
}

#[tokio::test]
async fn nothing_survives_into_the_next_run() {
    let marker = format!("stratbox-scratch-{}", std::process::id());
    let first = wasm(
        &format!("import os\nos.mkdir('/tmp/d')\nopen('/tmp/d/left.csv', 'w').write('x' * 1000)\nopen('/tmp/{marker}', 'w').close()\nprint(len(os.listdir('/tmp')))"),
        "",
    )
    .await;
    assert_ended(&first, Status::Ok, None);
    assert_eq!(first.stdout, "2\n");
    // No host file backs the guest's /tmp.
    assert!(!std::env::temp_dir().join(&marker).exists());
    assert!(!std::path::Path::new("/tmp").join(&marker).exists());
    let second = wasm(
        "import os\nprint(os.listdir('/tmp'), os.path.exists('/tmp/d/left.csv'))",
        "",
    )
    .await;
    assert_ended(&second, Status::Ok, None);
    assert_eq!(second.stdout, "[] False\n");
}

#[tokio::test]
async fn writing_past_tmp_size_fails_and_may_be_caught() {
    let source = r#"
import os
with open("/tmp/small", "wb") as f:
    f.write(b"x" * (256 << 10))
print("small ok")
try:
    with open("/tmp/big", "wb") as f:
        for _ in range(16):
            f.write(b"y" * (64 << 10))
    print("big ok")
except OSError as e:
    print("big refused", type(e).__name__)
size = os.path.getsize("/tmp/big")
print("capped", size < (1 << 20))
os.remove("/tmp/big")
with open("/tmp/again", "wb") as f:
    f.write(b"z" * (512 << 10))
print("room again")
made = 0
try:
    while True:
        os.mkdir(f"/tmp/d{made}")
        made += 1
except OSError as e:
    print("entries refused", type(e).__name__, 0 < made < 2048)
"#;
    let outcome = wasm(source, "[limits]\ntmp-size = \"1MiB\"").await;
    assert_ended(&outcome, Status::Ok, None);
    assert_eq!(
        outcome.stdout,
        "small ok\nbig refused OSError\ncapped True\nroom again\nentries refused OSError True\n",
        "{}",
        outcome.stderr
    );
}

#[tokio::test]
async fn an_uncaught_full_tmp_is_an_error_that_says_so() {
    let outcome = wasm(
        "with open('/tmp/big', 'wb') as f:\n    while True:\n        f.write(b'y' * 65536)",
        "[limits]\ntmp-size = \"1MiB\"",
    )
    .await;
    assert_ended(&outcome, Status::Error, None);
    assert_eq!(outcome.exit_code, Some(1));
    assert!(outcome.stderr.contains("OSError"), "{}", outcome.stderr);
    let message = outcome.message.as_deref().unwrap_or_default();
    assert!(message.contains("tmp-size of 1MiB"), "{message}");
}

#[tokio::test]
async fn tmp_counts_against_the_memory_limit() {
    // /tmp may hold 256 MiB, but the run may use 128 MiB in all: the memory limit stops
    // it, as the cgroup limit stops a container whose tmpfs fills its memory.
    let outcome = wasm(
        "with open('/tmp/big', 'wb') as f:\n    while True:\n        f.write(b'y' * 65536)",
        "[limits]\ntmp-size = \"256MiB\"\nmemory = \"128MiB\"",
    )
    .await;
    assert_ended(&outcome, Status::Killed, Some(Reason::Memory));
}

#[tokio::test]
async fn root_holds_only_data_and_tmp_and_data_stays_read_only() {
    let dir = tempfile::tempdir().expect("data dir");
    std::fs::write(dir.path().join("bars.csv"), "close\n1\n2\n").expect("fixture");
    let source = r#"
import errno, os, shutil
def code(action):
    try:
        action()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
print("root", sorted(os.listdir("/")))
print("data", os.listdir("/data"), open("/data/bars.csv").read().split())
shutil.copy("/data/bars.csv", "/tmp/bars.csv")
with open("/tmp/bars.csv", "a") as f:
    f.write("3\n")
print("copy", open("/tmp/bars.csv").read().split())
print("write-data", code(lambda: open("/data/new.txt", "w")))
print("append-data", code(lambda: open("/data/bars.csv", "a")))
print("remove-data", code(lambda: os.remove("/data/bars.csv")))
print("mkdir-data", code(lambda: os.mkdir("/data/sub")))
print("move-out", code(lambda: os.rename("/tmp/bars.csv", "/data/bars2.csv")))
print("root-file", code(lambda: open("/x", "w")))
print("via-root", os.listdir("//data"))
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
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines[0], "root ['data', 'tmp']", "{}", outcome.stdout);
    assert_eq!(lines[1], "data ['bars.csv'] ['close', '1', '2']");
    assert_eq!(lines[2], "copy ['close', '1', '2', '3']");
    for line in &lines[3..8] {
        assert!(!line.ends_with(" ok"), "a write reached /data: {line}");
    }
    assert_eq!(lines[8], "root-file EROFS");
    assert_eq!(lines[9], "via-root ['bars.csv']");
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
