"""The wasm guest's entry module, built into a component by componentize-py.

Everything at module level runs once, at build time: the interpreter starts and every
module of ``wasm/modules.txt`` is imported, then the whole state is snapshotted. A run is an
instantiation of that snapshot plus the strategy itself.
"""

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
