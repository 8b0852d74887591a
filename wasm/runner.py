"""The stratbox runner: executes one strategy as ``__main__`` and says how it ended.

The same file runs on both backends, so a strategy sees the same protocol everywhere:

* wasm: ``guest_app.py`` imports this module while the guest is pre-initialised and calls
  :func:`execute` for each run; the host reads the ending from the return value.
* container: ``python3 -I /opt/stratbox/runner.py`` makes the process non-dumpable and adds a
  seccomp filter of its own (:func:`seal`), checks that the sandbox is in force
  (:func:`preflight`), reads a frame from stdin (a JSON header line, the source, then the
  input document), runs the strategy and writes the ending as the last line of stderr,
  tagged with the nonce the host sent in the header. A container of the host's warm pool is
  started with ``--warm`` (see :func:`warm_up`): it imports numpy and pandas and says it is
  ready before it reads the frame.

Before running, the runner parses the strategy with CPython's own ``ast`` and, when the host
sent the inventory its validator saw (``src/validate/inventory.rs``), refuses to run a tree
that names anything the host's parser did not see (:func:`mismatch`): the tree that is
checked is the tree that runs, whatever the two parsers think of the source.

The strategy gets a fresh ``__main__`` module, ``sys.argv == [filename]``, stdin holding the
input document, and tracebacks that show its own file name and line numbers.
"""

import ast
import atexit
import builtins
import json
import linecache
import sys
import traceback
import types

OK = "ok"
EXCEPTION = "exception"
EXIT = "exit"
MEMORY = "memory"
MISMATCH = "mismatch"

#: The inventory's four sets, in the order a mismatch is looked for.
INVENTORY_KINDS = ("imports", "names", "attributes", "calls")


def _dotted(node):
    """``"a.b.c"`` for a name or a chain of attributes on a name, else ``None``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def inventory_items(tree):
    """Every ``(kind, value, node)`` of CPython's tree, by the definition of
    ``src/validate/inventory.rs``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield "imports", alias.name, node
        elif isinstance(node, ast.ImportFrom):
            yield "imports", "." * (node.level or 0) + (node.module or ""), node
        elif isinstance(node, ast.Name):
            yield "names", node.id, node
        elif isinstance(node, ast.Attribute):
            yield "attributes", node.attr, node
        elif isinstance(node, ast.Call):
            callee = _dotted(node.func)
            if callee is not None:
                yield "calls", callee, node


def inventory(tree):
    """The four sets of CPython's tree, as sorted lists (the host's JSON form)."""
    found = {kind: set() for kind in INVENTORY_KINDS}
    for kind, value, _node in inventory_items(tree):
        found[kind].add(value)
    return {kind: sorted(values) for kind, values in found.items()}


def _lines(source):
    """The source's lines as CPython numbers them (``\r\n``, ``\r`` and ``\n`` end a line,
    nothing else)."""
    return source.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _column(source_lines, node):
    """1-based column in characters (CPython's ``col_offset`` counts UTF-8 bytes)."""
    line = getattr(node, "lineno", 1)
    offset = getattr(node, "col_offset", 0)
    if 0 < line <= len(source_lines):
        return len(source_lines[line - 1].encode("utf-8")[:offset].decode("utf-8", "replace")) + 1
    return offset + 1


def mismatch(tree, source, host):
    """The first item of CPython's tree that the host's inventory lacks, as the detail the
    host turns into a ``parser-mismatch`` violation; ``None`` when the host saw it all."""
    seen = {kind: set(host.get(kind, ())) for kind in INVENTORY_KINDS}
    missing = [
        (getattr(node, "lineno", 1), getattr(node, "col_offset", 0), kind, value, node)
        for kind, value, node in inventory_items(tree)
        if value not in seen[kind]
    ]
    if not missing:
        return None
    line, _offset, kind, value, node = min(missing, key=lambda item: item[:4])
    return {
        "line": line,
        "col": _column(_lines(source), node),
        "kind": kind,
        "value": value,
    }


class _Exit:
    """``exit()`` and ``quit()`` as ``sys.exit()``: ``site`` installs them on an ordinary
    interpreter, but the wasm guest may start without ``site``, and strategies call them."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Use {self.name}() to exit"

    def __call__(self, code=None):
        raise SystemExit(code)


for _name in ("exit", "quit"):
    if not hasattr(builtins, _name):
        setattr(builtins, _name, _Exit(_name))


_vars = vars
_type = type
_issubclass = issubclass


def _strategy_vars(*args):
    """``vars(obj)`` as a strategy sees it: the instance dict of an object, which holds what
    reading its attributes reaches anyway. The namespace of a module holds ``__builtins__``
    and its private imports, and the raw dict of a class hands out the interpreter's
    descriptors without naming them (``vars(type)``), so both are refused, as is ``vars()``
    (``locals()``). The validator refuses what it can see; classes flow anywhere as values
    (``type(x)``), so this check, by the object's real type, holds for the rest."""
    if len(args) != 1:
        raise TypeError("vars() takes exactly one argument in a strategy")
    kind = _type(args[0])
    if _issubclass(kind, _type):
        raise TypeError("vars() of a class is not allowed in a strategy")
    if _issubclass(kind, types.ModuleType):
        raise TypeError("vars() of a module is not allowed in a strategy")
    return _vars(args[0])


def _strategy_builtins():
    """The strategy's builtins: the interpreter's, with :func:`_strategy_vars` as ``vars``.
    A copy, so that library code keeps the real ``vars`` and the strategy cannot reach it."""
    names = dict(builtins.__dict__)
    names["vars"] = _strategy_vars
    return names


def _exit_code(exc):
    """The process exit code Python would give for ``SystemExit(exc.code)``."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code
    # sys.exit("message") prints the message and exits 1.
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


#: OverflowError messages that mean "a size larger than the address space", not a numeric
#: overflow. On the 32-bit wasm guest any request of 2 GiB or more ends this way rather
#: than as a MemoryError; both backends report it as the memory limit.
SIZE_OVERFLOW_MESSAGES = (
    "index-sized integer",  # bytearray(2**31), [0] * 2**40 on a 32-bit build
    "repeated string is too long",  # "x" * 2**31
    "repeated bytes are too long",  # b"x" * 2**31
)


def _is_size_overflow(exc):
    return isinstance(exc, OverflowError) and any(
        message in str(exc) for message in SIZE_OVERFLOW_MESSAGES
    )


def _print_exception(exc):
    """Prints a traceback without the runner's own frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb, file=sys.stderr)


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def seed_random(seed, host_inventory=None):
    """Seeds the ``random`` module for a deterministic run, as the strategy's own
    ``random.seed(seed)`` would; does nothing without a seed.

    When the strategy imports numpy or pandas, numpy's global generator
    (``numpy.random.rand`` and friends) is seeded too, with the seed modulo 2**32.
    ``numpy.random.default_rng()`` without a seed still draws from the system."""
    if seed is None:
        return
    import random

    random.seed(seed)
    imports = (host_inventory or {}).get("imports", ())
    if any(name.split(".")[0] in ("numpy", "pandas") for name in imports):
        try:
            import numpy
        except ImportError:
            return
        numpy.random.seed(seed % 2**32)


def execute(source, filename, host_inventory=None, seed=None):
    """Runs ``source`` as ``__main__``. Returns ``(ending, exit_code, detail)``; ``detail``
    is the mismatch (see :func:`mismatch`) when the ending is ``mismatch``, else ``None``.

    ``host_inventory`` is the inventory the host's validator computed (a dict of four
    lists), or ``None`` when the validator is switched off: then nothing is compared.
    ``seed`` is the seed of a deterministic run (see :func:`seed_random`), or ``None``."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    main = types.ModuleType("__main__")
    main.__dict__.update({"__file__": filename, "__builtins__": _strategy_builtins()})
    sys.modules["__main__"] = main
    sys.argv = [filename]
    try:
        tree = compile(source, filename, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        if host_inventory is not None:
            detail = mismatch(tree, source, host_inventory)
            if detail is not None:
                return MISMATCH, 1, detail
        code = compile(tree, filename, "exec", dont_inherit=True)
        seed_random(seed, host_inventory)
        exec(code, main.__dict__)
        ending, exit_code = OK, 0
    except SystemExit as exc:
        exit_code = _exit_code(exc)
        ending = OK if exit_code == 0 else EXIT
    except (MemoryError, OverflowError) as exc:
        if not isinstance(exc, MemoryError) and not _is_size_overflow(exc):
            _print_exception(exc)
            _flush()
            return EXCEPTION, 1, None
        # Printing may itself fail for want of memory; the ending is what matters.
        try:
            _print_exception(exc)
        except BaseException:
            pass
        ending, exit_code = MEMORY, 1
    except BaseException as exc:
        try:
            _print_exception(exc)
        except MemoryError:
            ending, exit_code = MEMORY, 1
        else:
            ending, exit_code = EXCEPTION, 1
    _run_atexit()
    _flush()
    return ending, exit_code, None


def _run_atexit():
    """Runs the strategy's ``atexit`` functions now, as CPython does at exit: the wasm
    guest never finalises its interpreter, and the container's runner reports the ending
    before the process exits, so both backends run them here, inside the same limits."""
    try:
        atexit._run_exitfuncs()
    except BaseException:
        # CPython prints and ignores exceptions of exit functions itself.
        pass


# --- container mode -------------------------------------------------------------------

#: Lines of /proc/self/status that must read as given before a strategy may start (the
#: process must also be non-dumpable: see :func:`seal` and :func:`preflight`).
REQUIRED_STATUS = {
    "Seccomp": "2",  # a seccomp filter is active (mode 2: filter)
    "NoNewPrivs": "1",  # no-new-privileges is set
    "CapEff": "0000000000000000",  # no effective capabilities
}


#: prctl(2) options (linux/prctl.h).
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


def _prctl():
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


#: The runner's own seccomp filter, stacked on the engine's (stacked filters can only take
#: permissions away): calls no strategy needs that an engine's default profile may still
#: allow. Docker's default allows the io_uring calls before Docker 25.0 (they bypass
#: syscall filtering for the I/O they queue and have had many kernel bugs), and ptrace on
#: every kernel from 4.8 (with it a strategy could attach to PID 1, the container's tini).
#: Per machine: the audit architecture and each call's number.
NARROW_SYSCALLS = {
    "x86_64": (0xC000003E, {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "userfaultfd": 323,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    }),
    "aarch64": (0xC00000B7, {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "userfaultfd": 282,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    }),
}

#: prctl(2) and seccomp(2) constants (linux/prctl.h, linux/seccomp.h, linux/filter.h).
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO_EPERM = 0x00050001
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06
X32_SYSCALL_BIT = 0x40000000

#: What /proc/self/status said before :func:`seal` added the runner's filter (the engine's
#: confinement alone), and whether that filter is in force.
_BEFORE_SEAL = None
_NARROWED = False


def _status():
    with open("/proc/self/status") as status_file:
        return dict(line.split(":", 1) for line in status_file.read().splitlines() if ":" in line)


def narrow_program(arch, numbers):
    """The classic BPF program of the runner's filter: EPERM for the calls in ``numbers``,
    for the x32 ABI and for any architecture but ``arch`` (i386 calls from a 64-bit
    process); everything else goes on to the engine's filter."""
    deny = (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO_EPERM)
    program = [(BPF_LD_W_ABS, 0, 0, 4), (BPF_JEQ_K, 1, 0, arch), deny, (BPF_LD_W_ABS, 0, 0, 0)]
    checks = [(BPF_JGE_K, X32_SYSCALL_BIT)] + [(BPF_JEQ_K, n) for n in sorted(numbers.values())]
    last = len(program) + len(checks) + 1  # the final `deny`
    for code, value in checks:
        program.append((code, last - len(program) - 1, 0, value))
    return program + [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), deny]


def narrow():
    """Installs the runner's own seccomp filter (:data:`NARROW_SYSCALLS`)."""
    import ctypes
    import platform

    # platform.machine() calls uname(2), which a pinned profile may deny; the interpreter's
    # own build triple names the same architecture without a system call.
    multiarch = getattr(sys.implementation, "_multiarch", "")
    machine = multiarch.split("-")[0] if multiarch else platform.machine()
    arch, numbers = NARROW_SYSCALLS[machine]
    program = narrow_program(arch, numbers)

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                    ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    instructions = (SockFilter * len(program))(*[SockFilter(*i) for i in program])
    fprog = SockFprog(len(program), instructions)
    if _prctl()(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def seal():
    """Makes the process non-dumpable and adds the runner's seccomp filter before the
    strategy starts.

    The strategy shares this process. A non-dumpable process's ``/proc/self/mem`` and
    ``/proc/self/environ`` belong to root, so the strategy's user cannot open them: it
    cannot rewrite or read the runner's memory (the nonce, this code) through them, and
    no process of the same user can attach to it. Forked children inherit the flag, and
    every process of the run inherits the filter (:func:`narrow`).
    """
    global _BEFORE_SEAL, _NARROWED
    try:
        _BEFORE_SEAL = _status()
    except OSError:
        pass  # preflight reads it again and reports
    _prctl()(PR_SET_DUMPABLE, 0, 0, 0, 0)
    narrow()
    _NARROWED = True


def preflight():
    """Returns a list of problems with the container's confinement (empty when sound)."""
    problems = []
    try:
        dumpable = _prctl()(PR_GET_DUMPABLE, 0, 0, 0, 0)
    except Exception as err:  # no ctypes, no prctl: reported, never fatal
        dumpable = "unknown: %s" % err
    if dumpable != 0:
        problems.append("PR_GET_DUMPABLE is %s, expected 0 (not dumpable)" % dumpable)
    try:
        import os

        os.close(os.open("/proc/self/mem", os.O_RDWR))
        problems.append("/proc/self/mem can be opened for writing")
    except PermissionError:
        pass
    except OSError as err:
        problems.append("unexpected error opening /proc/self/mem: %s" % err)
    if not _NARROWED:
        problems.append("the runner's own seccomp filter is not installed")
    try:
        # The engine's confinement, without the filter the runner adds itself.
        status = _BEFORE_SEAL if _BEFORE_SEAL is not None else _status()
    except OSError as err:
        return ["cannot read /proc/self/status: %s" % err]
    for key, wanted in REQUIRED_STATUS.items():
        found = status.get(key, "").strip()
        if found != wanted:
            problems.append("%s is %r, expected %r" % (key, found, wanted))
    uids = status.get("Uid", "").split()
    if not uids or "0" in uids:
        problems.append("running as uid %r, expected a non-root user" % " ".join(uids))
    return problems


def _report(nonce, ending, exit_code, detail=None):
    _flush()
    record = {"ending": ending, "exit_code": exit_code}
    if detail:
        record["detail"] = detail
    line = "\n@stratbox-result %s %s\n" % (nonce, json.dumps(record))
    try:
        import os

        os.write(2, line.encode())
    except OSError:
        pass


#: What a warm container writes on stderr once it waits for its strategy (see
#: :func:`warm_up`). No strategy has run in the process yet, so none can forge it.
READY_LINE = b"@stratbox-ready\n"


def warm_up(cpu_seconds, modules):
    """Pool mode: everything a run of a strategy needs, done before the strategy arrives.

    Imports ``modules`` (the policy's native packages: numpy, pandas), moves what they
    allocated out of the collector's sight, and then restarts the CPU budget: the
    container's RLIMIT_CPU was raised to leave room for the imports, and is lowered here to
    what the process has used so far, rounded up to the rlimit's whole seconds, plus
    ``cpu_seconds``; the hard limit one second later, as for a cold run. Lowering a limit
    needs no privilege; raising it again would (CAP_SYS_RESOURCE, dropped), so the strategy
    cannot undo it.
    """
    import gc
    import importlib
    import math
    import resource

    for module in modules:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))


def _warm_args(argv):
    """``--warm CPU_SECONDS [MODULE ...]`` as ``(cpu_seconds, modules)``; ``None`` without
    ``--warm`` (a cold container)."""
    if not argv or argv[0] != "--warm":
        return None
    return int(argv[1]), list(argv[2:])


def container_main(argv=()):
    """Entry point inside the container image."""
    import os

    warm = _warm_args(list(argv))
    try:
        seal()
    except Exception:
        pass  # preflight reports the process as dumpable
    problems = preflight()
    if warm is not None:
        cpu_seconds, modules = warm
        # A failed import ends the process here, before the ready line: the host then
        # discards the container and the strategy runs in a cold one.
        warm_up(cpu_seconds, modules if not problems else ())
        _flush()
        os.write(2, READY_LINE)
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline())
    nonce = header["nonce"]
    source = stdin.read(header["source_len"]).decode("utf-8")
    # The rest of stdin is the input document, read by the strategy through sys.stdin.
    if problems:
        _report(nonce, "preflight", 125, "; ".join(problems))
        return 125
    ending, exit_code, detail = execute(
        source,
        header.get("filename", "strategy.py"),
        header.get("inventory"),
        header.get("seed"),
    )
    _report(nonce, ending, exit_code, json.dumps(detail) if detail else None)
    return exit_code


if __name__ == "__main__":
    sys.exit(container_main(sys.argv[1:]) & 0xFF)
