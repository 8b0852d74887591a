"""The stratbox runner: executes one strategy as ``__main__`` and says how it ended.

The same file runs on both backends, so a strategy sees the same protocol everywhere:

* wasm: ``guest_app.py`` imports this module while the guest is pre-initialised and calls
  :func:`execute` for each run; the host reads the ending from the return value.
* container: ``python3 -I /opt/stratbox/runner.py`` reads a frame from stdin (a JSON header
  line, the source, then the input document), makes the process non-dumpable
  (:func:`seal`), checks that the sandbox is in force (:func:`preflight`), runs the
  strategy and writes the ending as the last line of stderr, tagged with the nonce the host
  sent in the header.

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


def execute(source, filename, host_inventory=None):
    """Runs ``source`` as ``__main__``. Returns ``(ending, exit_code, detail)``; ``detail``
    is the mismatch (see :func:`mismatch`) when the ending is ``mismatch``, else ``None``.

    ``host_inventory`` is the inventory the host's validator computed (a dict of four
    lists), or ``None`` when the validator is switched off: then nothing is compared."""
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


def seal():
    """Makes the process non-dumpable before the strategy starts.

    The strategy shares this process. A non-dumpable process's ``/proc/self/mem`` and
    ``/proc/self/environ`` belong to root, so the strategy's user cannot open them: it
    cannot rewrite or read the runner's memory (the nonce, this code) through them, and
    no process of the same user can attach to it. Forked children inherit the flag.
    """
    _prctl()(PR_SET_DUMPABLE, 0, 0, 0, 0)


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
    try:
        with open("/proc/self/status") as status_file:
            status = dict(
                line.split(":", 1) for line in status_file.read().splitlines() if ":" in line
            )
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


def container_main():
    """Entry point inside the container image."""
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline())
    nonce = header["nonce"]
    source = stdin.read(header["source_len"]).decode("utf-8")
    # The rest of stdin is the input document, read by the strategy through sys.stdin.
    try:
        seal()
    except Exception:
        pass  # preflight reports the process as dumpable
    problems = preflight()
    if problems:
        _report(nonce, "preflight", 125, "; ".join(problems))
        return 125
    ending, exit_code, detail = execute(
        source, header.get("filename", "strategy.py"), header.get("inventory")
    )
    _report(nonce, ending, exit_code, json.dumps(detail) if detail else None)
    return exit_code


if __name__ == "__main__":
    sys.exit(container_main() & 0xFF)
