"""Generates the validator's attribute map: what every allowed module exposes.

Run by the interpreter that will run strategies (the wasm guest's CPython, through
``tests/it/generated.rs``; a CPython with numpy and pandas for the native packages), with a
JSON document on stdin::

    {"policy": "<the text of wasm/modules.txt>",
     "native": ["numpy", "pandas"], "denied": ["numpy.ctypeslib", ...]}

Allowed are the policy's importable modules (except ``sys``, whose few allowed attributes
the validator lists itself, so that ``typing.sys`` is refused) and every sub-module of a
``native`` package but the ``denied`` ones. A callable has escape power when it comes from
a module the policy refuses (``!``), from an internal module (``-``) but for the harmless
ones in ``HARMLESS_INTERNAL``, or from the interpreter's own escape modules
(``ESCAPE_MODULES``).

It walks the object graph from every allowed module: through module attributes, class
attributes (every class of the MRO, raw, without running descriptors) and the instance
attributes of the objects it finds, at any depth. Dunder names are not followed (the
validator refuses them, but for a few that hold strings). An object is **bad** when it is

* a module that is not allowed (``re.enum.sys``, ``tempfile._os``),
* a builtin that the validator forbids or checks at each call, under another name
  (``x.eval``, ``x.open``), or ``types.FunctionType``/``CodeType`` (they build functions
  from code objects),
* a callable defined in a refused module (``os.system`` reached as an attribute).

It prints, to stdout, the edges on paths that lead to something bad, one a line::

    python<TAB>3.14.0
    stdlib<TAB>name                      every name of sys.stdlib_module_names
    edge<TAB>node<TAB>attribute<TAB>node   only edges into bad nodes or nodes that reach one
    bad<TAB>node<TAB>what it is
    public<TAB>module<TAB>name          every public function and class of an allowed
                                       module that reaches nothing refused (for the tests)

A node is ``m:name`` for a module and ``o:path`` (the first path found) for anything else.
An attribute that has no edge leads to ordinary functions and data.
"""

import builtins
import json
import sys
import types

ESCAPE_BUILTINS = (
    "eval",
    "exec",
    "compile",
    "globals",
    "locals",
    "vars",
    "dir",
    "breakpoint",
    "help",
    "__import__",
    "__build_class__",
    "open",
    "getattr",
    "setattr",
    "delattr",
    "hasattr",
    "input",
    "exit",
    "quit",
)

ESCAPE_TYPES = {
    id(types.FunctionType): "types.FunctionType: builds functions from code objects",
    id(types.CodeType): "types.CodeType: builds code objects",
    id(types.CellType): "types.CellType: closure cells",
}


#: Internal modules of the policy whose functions are pure computation.
HARMLESS_INTERNAL = {"_strptime", "_pydecimal", "string.templatelib", "ast", "encodings"}

#: C-level modules behind refused ones, not named in the policy.
ESCAPE_MODULES = {
    "sys",
    "posix",
    "nt",
    "_imp",
    "_thread",
    "_signal",
    "_socket",
    "_posixsubprocess",
    "_frozen_importlib",
    "_frozen_importlib_external",
    "_ctypes",
    "_pickle",
    "importlib",
}


def read_policy(text):
    """``(allowed, refused)`` module sets from the text of ``wasm/modules.txt``."""
    allowed, refused = set(), set()
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if entry.startswith("!"):
            refused.add(entry[1:])
        elif entry.startswith("-"):
            name = entry[1:]
            if name not in HARMLESS_INTERNAL and name.split(".")[0] not in HARMLESS_INTERNAL:
                refused.add(name)
        else:
            allowed.add(entry)
    return allowed, refused


def is_dunder(name):
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def raw_attributes(obj):
    """(name, value) of the attributes a chain ``obj.name`` can reach, without calling
    descriptors: the instance's own dict, and the raw dicts of its class's MRO."""
    seen = {}
    own = getattr(obj, "__dict__", None) if not isinstance(obj, type) else None
    if isinstance(obj, types.ModuleType):
        own = obj.__dict__
    if isinstance(own, dict):
        for name, value in list(own.items()):
            if isinstance(name, str):
                seen.setdefault(name, value)
    if isinstance(obj, types.ModuleType):
        return seen
    classes = obj.__mro__ if isinstance(obj, type) else type(obj).__mro__
    for cls in classes:
        for name, value in list(cls.__dict__.items()):
            if isinstance(name, str):
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                seen.setdefault(name, value)
    return seen


def main():
    request = json.load(sys.stdin)
    allowed, refused = read_policy(request["policy"])
    allowed.discard("sys")
    refused |= ESCAPE_MODULES
    # Builtins are judged one by one (ESCAPE_BUILTINS), never by their module.
    refused.discard("builtins")
    native = list(request.get("native", ()))
    denied = list(request.get("denied", ()))

    escape_ids = dict(ESCAPE_TYPES)
    for name in ESCAPE_BUILTINS:
        if hasattr(builtins, name):
            escape_ids[id(getattr(builtins, name))] = "the builtin `%s`" % name

    nodes = {}  # id -> node name
    keep = []  # keeps walked objects alive, so ids stay unique
    bad = {}  # node -> what
    edges = {}  # node -> {attr: node}
    queue = []

    def under(name, packages):
        return any(name == p or name.startswith(p + ".") for p in packages)

    def module_allowed(name):
        if under(name, denied):
            return False
        return name in allowed or under(name, native)

    def classify(value, path):
        """The node of ``value`` (first seen at ``path``); queues it when it must be walked."""
        key = id(value)
        if key in nodes:
            return nodes[key]
        keep.append(value)
        if isinstance(value, types.ModuleType):
            name = getattr(value, "__name__", path)
            node = "m:" + name
            nodes[key] = node
            if not module_allowed(name):
                bad[node] = "the module `%s`, which is not allowed" % name
            else:
                queue.append((value, node))
            return node
        node = "o:" + path
        nodes[key] = node
        if key in escape_ids:
            bad[node] = escape_ids[key]
            return node
        if callable(value):
            module = getattr(value, "__module__", None)
            if isinstance(module, str) and (
                module in refused or module.split(".")[0] in refused
            ):
                name = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
                bad[node] = "`%s.%s`, from a module that is not allowed" % (module, name)
                return node
        if isinstance(value, (str, bytes, int, float, complex, bool, type(None))):
            return node
        queue.append((value, node))
        return node

    roots = []
    for name in sorted(allowed) + sorted(native):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name, fromlist=["_"])
            except ImportError:
                continue
        roots.append(name)
        classify(module, name)

    while queue:
        obj, node = queue.pop(0)
        base = node[2:]
        try:
            attributes = raw_attributes(obj)
        except Exception:
            continue
        for attr, value in attributes.items():
            if is_dunder(attr):
                continue
            target = classify(value, base + "." + attr)
            edges.setdefault(node, {})[attr] = target

    # Keep only edges into nodes that are bad or reach a bad node.
    reverse = {}
    for source, targets in edges.items():
        for target in targets.values():
            reverse.setdefault(target, set()).add(source)
    tainted = set(bad)
    work = list(bad)
    while work:
        node = work.pop()
        for source in reverse.get(node, ()):
            if source not in tainted:
                tainted.add(source)
                work.append(source)

    out = sys.stdout
    out.write("python\t%s\n" % ".".join(map(str, sys.version_info[:3])))
    for name in sorted(sys.stdlib_module_names):
        out.write("stdlib\t%s\n" % name)
    for name in roots:
        out.write("root\tm:%s\n" % name)
    for source in sorted(edges):
        if source not in tainted:
            continue
        for attr, target in sorted(edges[source].items()):
            if target in tainted:
                out.write("edge\t%s\t%s\t%s\n" % (source, attr, target))
    for node in sorted(bad):
        if node in tainted and any(node in t.values() for t in edges.values()):
            out.write("bad\t%s\t%s\n" % (node, bad[node]))
    for name in roots:
        for attr, target in sorted(edges.get("m:" + name, {}).items()):
            if attr.startswith("_") or target in tainted or target.startswith("m:"):
                continue
            value = sys.modules[name].__dict__.get(attr)
            if callable(value):
                out.write("public\t%s\t%s\n" % (name, attr))


if __name__ == "__main__":
    main()
