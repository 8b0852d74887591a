"""The wasm guest's entry module, built into a component by componentize-py.

Everything at module level runs once, at build time: the interpreter starts and every
module of ``wasm/modules.txt`` is imported, then the whole state is snapshotted. A run is an
instantiation of that snapshot plus the strategy itself.
"""

import gc
import importlib
import json
import os

import runner
import wit_world
from guest_modules import MODULES

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
