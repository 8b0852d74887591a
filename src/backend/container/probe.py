"""stratbox's isolation probes, run inside one container started with the policy's hardening.

Not a strategy: stratbox runs this program itself (``python3 -I -u -c``) and it does not go
through the validator. It first seals itself exactly as the runner does before a strategy
starts (the runner's own ``seal``), then tries each thing a strategy must not be able to do
and prints one JSON object per probe on stdout:

    {"name": "...", "held": true|false, "seen": "what happened"}

``sys.argv[1]`` is a JSON object of what the policy promises (``tmp_bytes``,
``memory_bytes``, ``max_pids``, ``max_file_bytes``). Every probe catches its own errors: a
probe that cannot tell is reported as not held, never skipped.
"""

import ctypes
import errno
import json
import os
import platform
import socket
import stat
import sys

EXPECT = json.loads(sys.argv[1])
RUNNER_DIR = "/opt/stratbox"

LIBC = ctypes.CDLL(None, use_errno=True)

# Syscall numbers the C library has no wrapper for, per machine (asm/unistd*.h).
SYSCALLS = {
    "x86_64": {"keyctl": 250, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
               "kexec_load": 246},
    "aarch64": {"keyctl": 219, "bpf": 280, "userfaultfd": 282, "io_uring_setup": 425,
                "kexec_load": 104},
}.get(platform.machine(), {})

PR_SET_DUMPABLE = 4
CLONE_NEWUSER = 0x10000000
KEY_SPEC_SESSION_KEYRING = -3
BPF_MAP_CREATE = 0
BPF_MAP_TYPE_ARRAY = 2
UFFD_USER_MODE_ONLY = 1
PTRACE_SEIZE = 0x4206


def report(name, held, seen):
    print(json.dumps({"name": name, "held": bool(held), "seen": seen}), flush=True)


def probe(name):
    def wrap(func):
        try:
            held, seen = func()
        except Exception as err:  # a probe that cannot tell has not shown the layer holds
            held, seen = False, "the probe failed: %s: %s" % (type(err).__name__, err)
        report(name, held, seen)
        return func

    return wrap


def status():
    with open("/proc/self/status") as f:
        return dict(
            (k, v.strip()) for k, v in (l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        )


def seal():
    """What the runner does before a strategy starts, by the runner's own code."""
    sys.path.insert(0, RUNNER_DIR)
    try:
        import runner
    except ImportError as err:
        LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        return "the runner is not in the image (%s); made non-dumpable here" % err
    finally:
        sys.path.remove(RUNNER_DIR)
    try:
        runner.seal()
    except Exception as err:  # the runner goes on too, and its preflight says what is wrong
        LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        sealed = "the runner's seal failed: %s; " % err
    else:
        sealed = ""
    problems = runner.preflight()
    return sealed + "; ".join(problems) if sealed or problems else None


def denied(result):
    """(held, seen) for a raw syscall result: held iff it failed with EPERM or ENOSYS."""
    if result >= 0:
        return False, "succeeded (returned %d)" % result
    code = ctypes.get_errno()
    name = errno.errorcode.get(code, str(code))
    if code in (errno.EPERM, errno.ENOSYS):
        return True, "failed with %s" % name
    return False, "reached the kernel and failed with %s (not refused outright)" % name


def in_child(call):
    """(held, seen) of ``denied(call())`` run in a forked child, so that a call that
    succeeds (a new namespace, a mount) changes nothing for the probes after it."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            answer = denied(call())
        except Exception as err:
            answer = (False, "the probe failed: %s: %s" % (type(err).__name__, err))
        os.write(write, json.dumps(answer).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    answer = os.read(read, 4096).decode()
    os.close(read)
    return tuple(json.loads(answer)) if answer else (False, "the probe's child gave no answer")


def raw(name, *args):
    number = SYSCALLS.get(name)
    if number is None:
        raise OSError("no syscall number for %s on %s" % (name, platform.machine()))
    return LIBC.syscall(ctypes.c_long(number), *args)


# The engine's confinement alone, before the runner's seal adds a filter of its own.
ENGINE_STATUS = status()
preflight_problems = seal()


@probe("runner-preflight")
def _():
    if preflight_problems:
        return False, preflight_problems
    return True, "the runner's own preflight passes (seccomp, no-new-privs, no caps, non-root, non-dumpable)"


@probe("seccomp")
def _():
    mode = ENGINE_STATUS.get("Seccomp")
    return mode == "2", "Seccomp: %s from the engine (2 is filter mode; %s filter(s)), %s with the runner's" % (
        mode,
        ENGINE_STATUS.get("Seccomp_filters", "?"),
        status().get("Seccomp_filters", "?"),
    )


@probe("syscall-unshare")
def _():
    return in_child(lambda: LIBC.unshare(CLONE_NEWUSER))


@probe("syscall-setns")
def _():
    return in_child(lambda: LIBC.setns(os.open("/proc/self/ns/uts", os.O_RDONLY), 0))


@probe("syscall-mount")
def _():
    return in_child(lambda: LIBC.mount(b"none", b"/tmp", b"tmpfs", ctypes.c_ulong(0), None))


@probe("syscall-keyctl")
def _():
    # KEYCTL_GET_KEYRING_ID of the session keyring, creating it: valid for any user.
    return in_child(lambda: raw("keyctl", 0, KEY_SPEC_SESSION_KEYRING, 1))


@probe("syscall-bpf")
def _():
    attr = (ctypes.c_uint32 * 32)(BPF_MAP_TYPE_ARRAY, 4, 4, 1)
    return in_child(lambda: raw("bpf", BPF_MAP_CREATE, ctypes.byref(attr), ctypes.sizeof(attr)))


@probe("syscall-userfaultfd")
def _():
    # User-mode-only faults: what an unprivileged process may ask for.
    return in_child(lambda: raw("userfaultfd", os.O_CLOEXEC | UFFD_USER_MODE_ONLY))


@probe("syscall-io_uring_setup")
def _():
    params = (ctypes.c_uint8 * 120)()
    return in_child(lambda: raw("io_uring_setup", 1, ctypes.byref(params)))


@probe("syscall-kexec_load")
def _():
    return in_child(lambda: raw("kexec_load", 0, 0, None, 0))


@probe("syscall-ptrace")
def _():
    # Attach to another process: PID 1 (tini, same user). PTRACE_SEIZE does not stop it,
    # and the child's exit detaches it again.
    held, seen = in_child(lambda: LIBC.ptrace(ctypes.c_long(PTRACE_SEIZE), 1, None, None))
    return held, "PTRACE_SEIZE of PID 1 " + seen


@probe("capabilities")
def _():
    s = status()
    sets = {k: s.get(k) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    held = all(v == "0000000000000000" for v in sets.values())
    return held, ", ".join("%s %s" % kv for kv in sets.items())


@probe("no-new-privileges")
def _():
    value = status().get("NoNewPrivs")
    return value == "1", "NoNewPrivs: %s" % value


@probe("non-root")
def _():
    ids = (os.getuid(), os.geteuid(), os.getgid(), os.getegid())
    groups = os.getgroups()
    held = 0 not in ids and 0 not in groups
    return held, "uid %d euid %d gid %d egid %d groups %s" % (ids + (groups,))


@probe("read-only-root")
def _():
    seen = []
    for path in ("/probe", "/etc/probe", "/usr/probe", RUNNER_DIR + "/probe"):
        try:
            with open(path, "w"):
                pass
            seen.append("%s written" % path)
        except OSError as err:
            seen.append("%s %s" % (path, errno.errorcode.get(err.errno, err.errno)))
    return not any("written" in s for s in seen), ", ".join(seen)


def mount_options(target):
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == target:
                return fields[0], fields[2], fields[3].split(",")
    return None


@probe("tmp-noexec-capped")
def _():
    found = mount_options("/tmp")
    if found is None:
        return False, "/tmp is not a mount point"
    source, fstype, options = found
    size = [o for o in options if o.startswith("size=")]
    want = "size=%dk" % (EXPECT["tmp_bytes"] // 1024)
    flags_ok = all(f in options for f in ("noexec", "nosuid", "nodev"))
    script = "/tmp/probe-exec"
    with open(script, "w") as f:
        f.write("#!/usr/bin/python3\n")
    os.chmod(script, 0o755)
    try:
        child = os.fork()
        if child == 0:
            try:
                os.execv(script, [script])
            except OSError as err:
                os._exit(err.errno)
            os._exit(0)
        _, code = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(code)
    finally:
        os.remove(script)
    held = fstype == "tmpfs" and flags_ok and size == [want] and code == errno.EACCES
    return held, "%s %s %s; exec of a file there: %s" % (
        fstype,
        ",".join(o for o in options if o in ("noexec", "nosuid", "nodev") or o.startswith("size=")),
        "(policy: %s)" % want,
        errno.errorcode.get(code, code),
    )


@probe("network")
def _():
    with open("/proc/net/dev") as f:
        interfaces = sorted(l.split(":")[0].strip() for l in f.read().splitlines()[2:])
    with open("/proc/net/route") as f:
        routes = f.read().splitlines()[1:]
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("192.0.2.1", 80))  # TEST-NET-1: outside this machine
        connect = "connected"
    except OSError as err:
        connect = errno.errorcode.get(err.errno, str(err))
    finally:
        s.close()
    held = interfaces == ["lo"] and not routes and connect != "connected"
    return held, "interfaces %s, %d route(s), connect to 192.0.2.1:80: %s" % (
        interfaces,
        len(routes),
        connect,
    )


def cgroup_value(v2, v1):
    """A cgroup file's value and the cgroup version it was found under."""
    for version, path in ((2, v2), (1, v1)):
        try:
            with open("/sys/fs/cgroup/" + path) as f:
                return f.read().strip(), version
        except OSError:
            continue
    return None, None


@probe("pids-limit")
def _():
    value, _ = cgroup_value("pids.max", "pids/pids.max")
    return value == str(EXPECT["max_pids"]), "pids.max %s (policy: %d)" % (
        value,
        EXPECT["max_pids"],
    )


@probe("memory-limit")
def _():
    want = EXPECT["memory_bytes"]
    value, version = cgroup_value("memory.max", "memory/memory.limit_in_bytes")
    if version == 2:
        swap, _ = cgroup_value("memory.swap.max", "-")
        swap_ok = swap == "0"  # v2 limits swap apart: none
    else:
        swap, _ = cgroup_value("-", "memory/memory.memsw.limit_in_bytes")
        swap_ok = swap == str(want)  # v1 limits memory plus swap: no more than memory
    return value == str(want) and swap_ok, "cgroup v%s: memory %s, memory+swap %s (policy: %d, no swap)" % (
        version,
        value,
        swap if version == 1 else "%s + %s" % (value, swap),
        want,
    )


@probe("file-size-limit")
def _():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    want = EXPECT["max_file_bytes"]
    path = "/tmp/probe-fsize"
    # A write one byte past the limit, at that offset: the file stays sparse, no space is used.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, b"x", want)
        written = "written"
    except OSError as err:
        written = errno.errorcode.get(err.errno, str(err))
    finally:
        os.close(fd)
    os.remove(path)
    held = soft == hard == want and written == "EFBIG"
    return held, "RLIMIT_FSIZE %s/%s (policy: %d), a write past it: %s" % (soft, hard, want, written)


@probe("no-programs")
def _():
    executable = []
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
        for name in files:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode) and mode & 0o111 and path.startswith("/usr/"):
                executable.append(path)

    def allowed(path):
        base = os.path.basename(path)
        return (
            path == "/usr/bin/tini"
            or (path.startswith("/usr/bin/python3.") and path[17:].isdigit())
            or (path.startswith("/usr/lib") and base.startswith("ld-linux"))
        )

    extra = sorted(p for p in executable if not allowed(p))
    shells = []
    for prog in ("/bin/sh", "/bin/bash", "/usr/bin/env", "/usr/bin/perl"):
        try:
            os.stat(prog)
            shells.append(prog)
        except OSError:
            pass
    held = not extra and not shells
    seen = "%d executable file(s), only python3, tini and the program interpreter" % len(executable)
    if not held:
        seen = "other programs: %s" % ", ".join(extra + shells)
    return held, seen


@probe("proc-self-mem")
def _():
    seen = []
    for path, flags in (
        ("/proc/self/mem", os.O_RDWR),
        ("/proc/self/mem", os.O_RDONLY),
        ("/proc/self/environ", os.O_RDONLY),
    ):
        try:
            os.close(os.open(path, flags))
            seen.append("%s opened" % path)
        except OSError as err:
            seen.append("%s %s" % (path, errno.errorcode.get(err.errno, err.errno)))
    return not any(s.endswith("opened") for s in seen), ", ".join(seen)
