"""The wasm guest's entry module, built into a component by componentize-py.

Everything at module level runs once, at build time: the interpreter starts and every
module of ``wasm/modules.txt`` is imported, then the whole state is snapshotted. A run is an
instantiation of that snapshot plus the strategy itself.
"""

import ast
import gc
import importlib
import json
import os
import sys
import types

import runner
import wit_world
from guest_modules import MODULES


class _NoDebugger:
    """``pdb.Pdb`` as the guest carries it: doctest subclasses it at import and creates one
    per run, but never starts it unless an example calls ``pdb.set_trace()``. A debugger
    runs arbitrary code and walks frames, and the guest has no terminal for one."""

    def __init__(self, *args, **kwargs):
        pass

    def reset(self):
        pass

    def set_continue(self):
        pass

    def set_trace(self, frame=None):
        raise RuntimeError("there is no debugger in the sandbox")

    def trace_dispatch(self, *args):
        return None


def _no_debugger(*args, **kwargs):
    raise RuntimeError("there is no debugger in the sandbox")


# `doctest` imports `pdb`, whose real module would carry `socket`, `subprocess`, `code` and
# `bdb` into the guest. A strategy may not import `pdb` (wasm/modules.txt) either way.
_pdb = types.ModuleType("pdb", "No debugger: the wasm guest's stand-in for doctest.")
_pdb.Pdb = _NoDebugger
_pdb.set_trace = _pdb.post_mortem = _pdb.pm = _pdb.run = _no_debugger
sys.modules["pdb"] = _pdb
del _pdb

for _name in MODULES:
    importlib.import_module(_name)
del _name

#: What the warm-up runs: the common steps of a strategy (imports, a loop, a class, an
#: f-string, json, print) and nothing that keeps state in a module it imports.
_WARM_UP_SOURCE = """\
import json
import math
from dataclasses import dataclass


@dataclass
class Bar:
    close: float


bars = [Bar(100.0 + math.sin(i)) for i in range(64)]
mean = sum(b.close for b in bars) / len(bars)
signal = "buy" if bars[-1].close > mean else "sell"
report = f"{signal}:{mean:.2f}" + json.dumps({"n": len(bars), "signal": signal})
print(end="")
"""


def _warm_up():
    """Runs one throwaway strategy through the runner before the snapshot is taken.

    A fresh instance of a snapshot taken cold would redo, on every run, what CPython does
    the first time a path runs: specialising the runner's and the standard library's
    bytecode, filling the type attribute cache, building dict key versions. Each of those
    writes to pages of the snapshot, and each first write to a page is a page fault that
    copies it. Done here once, the snapshot holds the result and every run starts warm.

    Nothing of the warm-up stays: its ``__main__`` module, ``sys.argv`` and line cache are
    put back, and the ``atexit`` functions the standard library registered are kept (the
    runner's exit step, which runs and clears them, is skipped here)."""
    import linecache

    filename = "<stratbox-warm-up>"
    saved_main, saved_argv = sys.modules.get("__main__"), sys.argv
    run_atexit = runner._run_atexit
    runner._run_atexit = lambda: None
    try:
        tree = compile(_WARM_UP_SOURCE, filename, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        host = json.loads(json.dumps(runner.inventory(tree)))
        ending, _code, _detail = runner.execute(_WARM_UP_SOURCE, filename, host, None)
        if ending != runner.OK:
            raise RuntimeError(f"the guest's warm-up run ended {ending}")
    finally:
        runner._run_atexit = run_atexit
        if saved_main is None:
            sys.modules.pop("__main__", None)
        else:
            sys.modules["__main__"] = saved_main
        sys.argv = saved_argv
        linecache.cache.pop(filename, None)


_warm_up()

# Everything imported so far lives as long as the instance: move it out of the collector's
# sight, so that a run's collections scan only what the strategy allocates (with the
# larger standard library, scanning the snapshot's objects dominated a trivial run).
gc.collect()
gc.freeze()


class WitWorld(wit_world.WitWorld):
    def run(
        self, source: str, filename: str, inventory: str | None, seed: int | None
    ) -> wit_world.Finished:
        # The working directory is the run's own /tmp, as in the container, so relative
        # paths name scratch files on both backends.
        os.chdir("/tmp")
        host = json.loads(inventory) if inventory is not None else None
        ending, exit_code, detail = runner.execute(source, filename, host, seed)
        return wit_world.Finished(
            getattr(wit_world.Ending, ending.upper()),
            exit_code,
            json.dumps(detail) if detail is not None else None,
        )
