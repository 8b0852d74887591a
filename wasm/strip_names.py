"""Copies a WebAssembly component without its name sections.

    python3 wasm/strip_names.py IN.wasm OUT.wasm

The ``name`` custom section of each core module and the ``component-name`` section of each
component hold debug names only: which function index is ``_PyEval_EvalFrameDefault``.
wasmtime carries them into the compiled guest and deserialises the function names' table
on every load, so a whole ``stratbox run`` pays for them at each start (about 0.8 ms and
140 page faults of a trivial run; docs/BENCHMARKS.md). Nothing else reads them: a trap's
message names the function by its index instead.

Every other section is copied byte for byte, nested modules and components included, so
the code, data and types of the guest are unchanged.
"""

import sys

#: Custom sections that are dropped: names for debuggers and profilers, no semantics.
NAME_SECTIONS = frozenset({"name", "component-name"})

CUSTOM = 0
#: Section ids whose payload is itself a binary to strip, in a component.
CORE_MODULE = 1
COMPONENT = 4

MAGIC = b"\0asm"


def _leb(data, at):
    """An unsigned LEB128 at ``at``: ``(value, position after it)``."""
    value = shift = 0
    while True:
        if at >= len(data):
            raise ValueError("truncated LEB128")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _uleb(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def strip(binary, dropped):
    """``binary`` (a core module or a component) without its name sections; adds the bytes
    dropped, by section name, to ``dropped``."""
    if binary[:4] != MAGIC or len(binary) < 8:
        raise ValueError("not a WebAssembly binary")
    # Bytes 4..8 are the version and layer: 1 0 0 0 for a module, 0x0d 0 1 0 for a component.
    component = binary[6:8] == b"\1\0"
    out = bytearray(binary[:8])
    at = 8
    while at < len(binary):
        section = binary[at]
        size, start = _leb(binary, at + 1)
        end = start + size
        if end > len(binary):
            raise ValueError(f"section {section} at byte {at} runs past the end")
        payload = binary[start:end]
        at = end
        if section == CUSTOM:
            name_len, name_at = _leb(payload, 0)
            name = payload[name_at : name_at + name_len].decode("utf-8", "replace")
            if name in NAME_SECTIONS:
                dropped[name] = dropped.get(name, 0) + size
                continue
        elif component and section in (CORE_MODULE, COMPONENT):
            payload = strip(payload, dropped)
        out.append(section)
        out += _uleb(len(payload))
        out += payload
    return bytes(out)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with open(argv[1], "rb") as source:
        binary = source.read()
    dropped = {}
    stripped = strip(binary, dropped)
    with open(argv[2], "wb") as target:
        target.write(stripped)
    summary = ", ".join(f"{name} {size:,} B" for name, size in sorted(dropped.items()))
    print(f"stratbox: guest names dropped: {summary or 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
