//! The validator's tables: every name it forbids or allows, each with its reason.
//!
//! Forbidding is the default for anything that reaches outside the language; allowing is
//! the exception, and every exception says why it is harmless. Lookups go through the
//! small helpers at the bottom so that the tables stay plain data.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::hash::FxBuild;

/// Builtins that reach outside the language or hand out the interpreter's internals.
/// Calling them or merely naming them (`f = eval`, `map(eval, xs)`, `@exec`) is
/// `forbidden-call`. `__import__` is absent: it is reported as `forbidden-import`.
pub const FORBIDDEN_BUILTINS: &[(&str, &str)] = &[
    ("eval", "runs a string as code the validator never saw"),
    ("exec", "runs a string as code the validator never saw"),
    ("compile", "builds code objects from strings"),
    (
        "__build_class__",
        "the class-statement machinery; calling it directly smuggles calls",
    ),
    (
        "breakpoint",
        "starts the debugger, which can run arbitrary code",
    ),
    (
        "help",
        "starts pydoc, which imports modules and may spawn a pager",
    ),
    (
        "globals",
        "hands out the module namespace, including `__builtins__`",
    ),
    ("locals", "hands out namespaces that reach `__builtins__`"),
    (
        "dir",
        "enumerates internal attribute names for reflective walks",
    ),
    ("copyright", "site helper that reads files"),
    ("credits", "site helper that reads files"),
    ("license", "site helper that reads files"),
    ("execfile", "Python 2 file execution"),
    ("reload", "Python 2 module reloading"),
    ("raw_input", "Python 2 console input"),
    ("file", "Python 2 file constructor"),
];

/// Builtins that are checked at each call rather than forbidden outright; naming them
/// without calling them is `forbidden-call`, because their arguments can then not be seen.
pub const CHECKED_BUILTINS: &[(&str, &str)] = &[
    (
        "open",
        "any path and mode (the backends confine files), but no `opener=`",
    ),
    (
        "getattr",
        "the attribute name must be a string literal that is not a dunder",
    ),
    (
        "setattr",
        "the attribute name must be a string literal that is not a dunder",
    ),
    (
        "delattr",
        "the attribute name must be a string literal that is not a dunder",
    ),
    (
        "hasattr",
        "the attribute name must be a string literal that is not a dunder",
    ),
    (
        "vars",
        "one argument that is not a class or a module (the namespace of a module holds \
         `__builtins__`, a class's raw dict hands out the interpreter's descriptors): those \
         the validator can see are refused at the call, and the runner's `vars` refuses \
         the rest at run time; `vars()` without an argument is `locals()`",
    ),
];

/// Modules of which only the listed attributes may be used, each with its reason; any other
/// attribute (read, imported with `from`, or bound) is a `module-attribute` violation.
pub const MODULE_ATTRIBUTE_ALLOWLISTS: &[(&str, &[(&str, &str)])] = &[
    (
        "doctest",
        &[(
            "testmod",
            "runs the examples of this file's docstrings, which the validator checks as code \
             when the file imports doctest (the other entry points run text from strings or \
             files the validator never sees)",
        )],
    ),
    (
        "sys",
        &[
            ("stdin", "the input document: json.load(sys.stdin)"),
            (
                "stdout",
                "the strategy's output, captured and capped by the sandbox",
            ),
            ("stderr", "diagnostics, captured and capped by the sandbox"),
            (
                "exit",
                "ends the strategy with an exit code, reported in the outcome",
            ),
            ("argv", "[filename]: nothing from the host"),
            ("maxsize", "a numeric constant"),
            ("float_info", "numeric constants of floats"),
            ("int_info", "numeric constants of ints"),
            ("float_repr_style", "a constant string"),
            ("byteorder", "a constant string"),
            ("version", "the interpreter's version string"),
            ("version_info", "the interpreter's version tuple"),
            ("hexversion", "the interpreter's version number"),
            (
                "getrecursionlimit",
                "reads a number; setting it is not allowed",
            ),
        ],
    ),
];

/// `Some(allowed)` when `module` has an attribute allowlist, `None` when it has none.
pub fn module_attribute_allowed(module: &str, name: &str) -> Option<bool> {
    MODULE_ATTRIBUTE_ALLOWLISTS
        .iter()
        .find(|(m, _)| *m == module)
        .map(|(_, allowed)| allowed.iter().any(|(a, _)| *a == name))
}

/// Builtin classes, which `vars` refuses by name (their raw dicts hold the interpreter's
/// descriptors); the runner refuses every other class at run time.
pub const BUILTIN_CLASSES: &[&str] = &[
    "BaseException",
    "Exception",
    "bool",
    "bytearray",
    "bytes",
    "classmethod",
    "complex",
    "dict",
    "enumerate",
    "filter",
    "float",
    "frozenset",
    "int",
    "list",
    "map",
    "memoryview",
    "object",
    "property",
    "range",
    "reversed",
    "set",
    "slice",
    "staticmethod",
    "str",
    "super",
    "tuple",
    "type",
    "zip",
];

/// Builtins a reviewer might expect to see forbidden but that are allowed, with the reason.
pub const ALLOWED_BUILTINS: &[(&str, &str)] = &[
    (
        "input",
        "reads one line of stdin, which holds the input document on both backends (the \
         same stream as `sys.stdin`)",
    ),
    (
        "print",
        "writes to stdout, which the sandbox captures and caps",
    ),
    (
        "type",
        "one argument only returns the type; three arguments are refused at the call",
    ),
    ("super", "method resolution on the strategy's own classes"),
    ("classmethod", "a descriptor for the strategy's own classes"),
    (
        "staticmethod",
        "a descriptor for the strategy's own classes",
    ),
    ("property", "a descriptor for the strategy's own classes"),
    (
        "isinstance",
        "type tests; reveals nothing that `type()` does not",
    ),
    (
        "issubclass",
        "type tests; reveals nothing that `type()` does not",
    ),
    ("id", "an integer; no reference to anything"),
    (
        "exit",
        "raises SystemExit like sys.exit(); the runner provides it where `site` did not",
    ),
    (
        "quit",
        "raises SystemExit like sys.exit(); the runner provides it where `site` did not",
    ),
    (
        "format",
        "applies a format spec, which cannot walk attributes",
    ),
    (
        "memoryview",
        "a bounds-checked view of the bytes of a bytes-like object the strategy already \
         holds; it reads and writes nothing else, and reaches no object, name or module",
    ),
];

/// Dunder names a strategy may read as bare names.
pub const ALLOWED_DUNDER_NAMES: &[(&str, &str)] = &[
    (
        "__name__",
        "the module name, for `if __name__ == \"__main__\":`",
    ),
    ("__debug__", "a constant bool that cannot be rebound"),
    ("__doc__", "the module's docstring, a str or None"),
];

/// Dunder attributes a strategy may read on any object: each is a plain string.
pub const ALLOWED_DUNDER_ATTRS: &[(&str, &str)] = &[
    ("__name__", "a str, e.g. `type(x).__name__` in log lines"),
    ("__qualname__", "a str naming a class or function"),
    (
        "__module__",
        "a str naming the module a class or function was defined in",
    ),
    (
        "__version__",
        "a package's version string (`np.__version__`); on the strategy's own objects, its own data; stores to a module's are refused",
    ),
    (
        "__doc__",
        "a str or None; stores to it are refused, so it holds no smuggled object",
    ),
    (
        "__notes__",
        "an exception's list of note strings (PEP 678, `add_note`)",
    ),
    (
        "__cause__",
        "the exception a `raise ... from` chained, which `except ... as e` could catch anyway; its own dunders stay refused",
    ),
    (
        "__context__",
        "the exception being handled when this one was raised; as `__cause__`",
    ),
    (
        "__required_keys__",
        "a TypedDict's frozenset of required key names",
    ),
    (
        "__optional_keys__",
        "a TypedDict's frozenset of optional key names",
    ),
    (
        "__value__",
        "the value of a `type X = ...` alias: a type the strategy itself wrote",
    ),
    (
        "__wrapped__",
        "the function a decorator wrapped (`functools.wraps`): a function the code could call anyway; its `__globals__`, `__code__` and other dunders stay refused",
    ),
];

/// Dunder methods a class may reach on `super()` (or `super(Cls, self)`): delegating to
/// the base class is ordinary Python and yields only the base's own method.
pub const SUPER_DUNDERS: &[(&str, &str)] = &[
    ("__init__", "base-class initialisation"),
    ("__new__", "base-class construction"),
    ("__init_subclass__", "cooperative subclass hooks"),
    ("__post_init__", "dataclass post-initialisation chains"),
    (
        "__setattr__",
        "frozen-style classes set fields through the base",
    ),
    ("__delattr__", "the counterpart of __setattr__"),
    ("__repr__", "delegating representation"),
    ("__str__", "delegating representation"),
    ("__format__", "delegating formatting"),
    ("__eq__", "delegating comparison"),
    ("__ne__", "delegating comparison"),
    ("__lt__", "delegating comparison"),
    ("__le__", "delegating comparison"),
    ("__gt__", "delegating comparison"),
    ("__ge__", "delegating comparison"),
    ("__hash__", "delegating hashing"),
    ("__bool__", "delegating truth"),
    ("__len__", "container delegation"),
    ("__iter__", "container delegation"),
    ("__contains__", "container delegation"),
    ("__getitem__", "container delegation"),
    ("__setitem__", "container delegation"),
    ("__delitem__", "container delegation"),
    ("__missing__", "dict subclasses"),
    ("__enter__", "context-manager delegation"),
    ("__exit__", "context-manager delegation"),
    ("__call__", "callable delegation"),
    ("__add__", "arithmetic delegation"),
    ("__sub__", "arithmetic delegation"),
    ("__mul__", "arithmetic delegation"),
    ("__truediv__", "arithmetic delegation"),
];

/// Dunder names a strategy may bind (assign, annotate, import as).
pub const ALLOWED_DUNDER_STORES: &[(&str, &str)] = &[
    ("__all__", "the module's export list; data only"),
    (
        "__slots__",
        "attribute layout of the strategy's own classes",
    ),
    (
        "__match_args__",
        "positional patterns; the value must be a tuple of plain literal names",
    ),
    ("__hash__", "`__hash__ = None` marks a class unhashable"),
    ("__version__", "a version string"),
];

/// Module metadata a strategy may bind at module level to literal data (a string, a
/// number, or a tuple or list of them) and read back as a name.
pub const MODULE_METADATA: &[(&str, &str)] = &[
    ("__all__", "the export list"),
    ("__author__", "who wrote the file"),
    ("__contact__", "whom to ask"),
    ("__copyright__", "the copyright line"),
    ("__credits__", "who contributed"),
    ("__date__", "when it was written"),
    ("__deprecated__", "a deprecation note"),
    ("__description__", "what the file does"),
    ("__docformat__", "the docstring markup"),
    ("__email__", "the author's address"),
    ("__license__", "the licence's name"),
    ("__maintainer__", "who maintains it"),
    ("__status__", "a development status"),
    ("__title__", "the project's name"),
    ("__url__", "where it lives"),
    ("__version__", "its version"),
    ("__version_info__", "its version as a tuple"),
];

/// Attribute names that are not dunders but lead to frames, code objects or raw memory.
/// Reading, writing or binding them is `dunder-access`.
pub const BLOCKED_ATTRS: &[(&str, &str)] = &[
    (
        "gi_frame",
        "generator frame: f_back/f_globals walk out of the sandboxed code",
    ),
    ("gi_code", "generator code object"),
    ("gi_yieldfrom", "the generator a generator delegates to"),
    ("cr_frame", "coroutine frame"),
    ("cr_code", "coroutine code object"),
    ("cr_await", "the awaitable a coroutine waits on"),
    ("cr_origin", "coroutine creation frames"),
    ("ag_frame", "async-generator frame"),
    ("ag_code", "async-generator code object"),
    ("ag_await", "the awaitable an async generator waits on"),
    ("f_back", "the calling frame"),
    ("f_globals", "a frame's globals, including `__builtins__`"),
    ("f_locals", "a frame's locals"),
    ("f_builtins", "a frame's builtins"),
    ("f_code", "a frame's code object"),
    ("f_trace", "a frame's trace function"),
    ("f_trace_lines", "frame tracing"),
    ("f_trace_opcodes", "frame tracing"),
    ("f_lasti", "frame internals"),
    ("f_lineno", "writing it jumps inside a frame"),
    ("tb_frame", "a traceback's frame"),
    ("tb_next", "walks a traceback"),
    ("co_code", "raw bytecode"),
    ("co_consts", "code-object constants"),
    ("co_names", "code-object names"),
    ("co_varnames", "code-object internals"),
    ("co_freevars", "code-object internals"),
    ("co_cellvars", "code-object internals"),
    ("co_filename", "code-object internals"),
    ("co_name", "code-object internals"),
    ("co_qualname", "code-object internals"),
    ("co_flags", "code-object internals"),
    ("co_lnotab", "code-object internals"),
    ("co_linetable", "code-object internals"),
    ("co_exceptiontable", "code-object internals"),
    ("co_firstlineno", "code-object internals"),
    ("co_argcount", "code-object internals"),
    ("co_kwonlyargcount", "code-object internals"),
    ("co_posonlyargcount", "code-object internals"),
    ("co_nlocals", "code-object internals"),
    ("co_stacksize", "code-object internals"),
    ("co_positions", "code-object internals"),
    ("co_lines", "code-object internals"),
    ("func_globals", "Python 2 spelling of __globals__"),
    ("func_code", "Python 2 spelling of __code__"),
    ("func_closure", "Python 2 spelling of __closure__"),
    ("func_defaults", "Python 2 spelling of __defaults__"),
    ("func_dict", "Python 2 spelling of __dict__"),
    ("im_func", "Python 2 bound-method internals"),
    ("im_self", "Python 2 bound-method internals"),
    ("im_class", "Python 2 bound-method internals"),
    ("cell_contents", "closure cells"),
    (
        "mro",
        "`type.mro()` lists base classes up to `object` for subclass walks",
    ),
    ("_getframe", "sys._getframe returns frames"),
    ("_current_frames", "frames of every thread"),
    ("ctypes", "numpy's `ndarray.ctypes` exposes raw pointers"),
];

/// Module attributes that are reached by qualified name and need a decision of their own.
pub const MODULE_SINKS: &[(&str, Sink, &str)] = &[
    (
        "string.Formatter",
        Sink::Formatter,
        "its get_field walks attributes by name",
    ),
    (
        "typing.get_type_hints",
        Sink::Evaluates,
        "evaluates string annotations as code",
    ),
    (
        "typing.ForwardRef",
        Sink::Evaluates,
        "holds a string that typing evaluates as code",
    ),
    (
        "operator.attrgetter",
        Sink::AttrGetter,
        "reads attributes named by strings",
    ),
    (
        "operator.methodcaller",
        Sink::MethodCaller,
        "calls methods named by strings",
    ),
    ("io.open", Sink::Open, "the builtin open under another name"),
    ("io.FileIO", Sink::FileAccess, "opens files by path"),
    ("io.open_code", Sink::FileAccess, "opens files by path"),
    (
        "dataclasses.make_dataclass",
        Sink::FieldNames,
        "field names become __match_args__",
    ),
    (
        "collections.namedtuple",
        Sink::FieldNames,
        "field names become __match_args__",
    ),
    (
        "typing.NamedTuple",
        Sink::FieldNames,
        "field names become __match_args__",
    ),
];

/// What a sink needs checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// A formatter that reaches attributes through its format string.
    Formatter,
    /// Evaluates code from a string.
    Evaluates,
    /// Gets attributes by name (`operator.attrgetter`).
    AttrGetter,
    /// Calls methods by name (`operator.methodcaller`).
    MethodCaller,
    /// Opens files.
    Open,
    /// Reads or writes files by path.
    FileAccess,
    /// Turns strings into field names (`namedtuple`).
    FieldNames,
}

/// Sub-modules and attributes of native packages that no policy may allow even though the
/// package is allowed (the native list is package-prefix).
pub const NATIVE_DENIED: &[(&str, &str)] = &[
    (
        "numpy.ctypeslib",
        "loads shared libraries and hands out raw pointers",
    ),
    ("numpy.f2py", "compiles and loads native code"),
    ("numpy.distutils", "runs compilers"),
    ("numpy.testing", "spawns processes"),
    ("pandas.read_pickle", "unpickling runs arbitrary code"),
    ("pandas.io.pickle", "unpickling runs arbitrary code"),
];

/// String values that look like dunder names but are ordinary data.
pub const ALLOWED_DUNDER_STRINGS: &[(&str, &str)] =
    &[("__main__", "compared with __name__ in the main guard")];

/// Public sub-modules of standard-library packages, so that `from json import tool` is
/// known to import `json.tool`.
pub const STDLIB_SUBMODULES: &[&str] = &[
    "asyncio.base_events",
    "asyncio.base_futures",
    "asyncio.base_subprocess",
    "asyncio.base_tasks",
    "asyncio.constants",
    "asyncio.coroutines",
    "asyncio.events",
    "asyncio.exceptions",
    "asyncio.format_helpers",
    "asyncio.futures",
    "asyncio.locks",
    "asyncio.log",
    "asyncio.mixins",
    "asyncio.proactor_events",
    "asyncio.protocols",
    "asyncio.queues",
    "asyncio.runners",
    "asyncio.selector_events",
    "asyncio.sslproto",
    "asyncio.staggered",
    "asyncio.streams",
    "asyncio.subprocess",
    "asyncio.taskgroups",
    "asyncio.tasks",
    "asyncio.threads",
    "asyncio.timeouts",
    "asyncio.transports",
    "asyncio.trsock",
    "asyncio.unix_events",
    "asyncio.windows_events",
    "asyncio.windows_utils",
    "collections.abc",
    "concurrent.futures",
    "ctypes.macholib",
    "ctypes.util",
    "ctypes.wintypes",
    "curses.ascii",
    "curses.has_key",
    "curses.panel",
    "curses.textpad",
    "dbm.dumb",
    "dbm.gnu",
    "dbm.ndbm",
    "email.base64mime",
    "email.charset",
    "email.contentmanager",
    "email.encoders",
    "email.errors",
    "email.feedparser",
    "email.generator",
    "email.header",
    "email.headerregistry",
    "email.iterators",
    "email.message",
    "email.mime",
    "email.parser",
    "email.policy",
    "email.quoprimime",
    "email.utils",
    "html.entities",
    "html.parser",
    "http.client",
    "http.cookiejar",
    "http.cookies",
    "http.server",
    "importlib.abc",
    "importlib.machinery",
    "importlib.metadata",
    "importlib.readers",
    "importlib.resources",
    "importlib.simple",
    "importlib.util",
    "json.decoder",
    "json.encoder",
    "json.scanner",
    "json.tool",
    "logging.config",
    "logging.handlers",
    "multiprocessing.connection",
    "multiprocessing.context",
    "multiprocessing.dummy",
    "multiprocessing.forkserver",
    "multiprocessing.heap",
    "multiprocessing.managers",
    "multiprocessing.pool",
    "multiprocessing.popen_fork",
    "multiprocessing.popen_forkserver",
    "multiprocessing.popen_spawn_posix",
    "multiprocessing.popen_spawn_win32",
    "multiprocessing.process",
    "multiprocessing.queues",
    "multiprocessing.reduction",
    "multiprocessing.resource_sharer",
    "multiprocessing.resource_tracker",
    "multiprocessing.shared_memory",
    "multiprocessing.sharedctypes",
    "multiprocessing.spawn",
    "multiprocessing.synchronize",
    "multiprocessing.util",
    "sqlite3.dbapi2",
    "sqlite3.dump",
    "unittest.async_case",
    "unittest.case",
    "unittest.loader",
    "unittest.main",
    "unittest.mock",
    "unittest.result",
    "unittest.runner",
    "unittest.signals",
    "unittest.suite",
    "unittest.util",
    "urllib.error",
    "urllib.parse",
    "urllib.request",
    "urllib.response",
    "urllib.robotparser",
    "wsgiref.handlers",
    "wsgiref.headers",
    "wsgiref.simple_server",
    "wsgiref.types",
    "wsgiref.util",
    "wsgiref.validate",
    "xml.dom",
    "xml.etree",
    "xml.parsers",
    "xml.sax",
    "xmlrpc.client",
    "xmlrpc.server",
];

fn in_table(table: &[(&str, &str)], name: &str) -> bool {
    table.iter().any(|(n, _)| *n == name)
}

/// The names of a table, hashed once: for the tables that every name or attribute of a
/// strategy is looked up in, one hash instead of a scan.
fn index(table: &'static [(&'static str, &'static str)]) -> HashSet<&'static str, FxBuild> {
    table.iter().map(|(name, _)| *name).collect()
}

static BLOCKED: LazyLock<HashSet<&str, FxBuild>> = LazyLock::new(|| index(BLOCKED_ATTRS));
static FORBIDDEN: LazyLock<HashSet<&str, FxBuild>> = LazyLock::new(|| index(FORBIDDEN_BUILTINS));
static SUBMODULES: LazyLock<HashSet<&str, FxBuild>> =
    LazyLock::new(|| STDLIB_SUBMODULES.iter().copied().collect());

/// Whether the builtin may never be called.
pub fn is_forbidden_builtin(name: &str) -> bool {
    FORBIDDEN.contains(name)
}

/// Whether calls of the builtin are checked argument by argument.
pub fn is_checked_builtin(name: &str) -> bool {
    in_table(CHECKED_BUILTINS, name)
}

/// Whether `name` is a builtin class (see [`BUILTIN_CLASSES`]).
pub fn is_builtin_class(name: &str) -> bool {
    BUILTIN_CLASSES.binary_search(&name).is_ok()
}

/// Whether the dunder may be used as a name.
pub fn is_allowed_dunder_name(name: &str) -> bool {
    in_table(ALLOWED_DUNDER_NAMES, name)
}

/// Whether the dunder may be read as an attribute.
pub fn is_allowed_dunder_attr(name: &str) -> bool {
    in_table(ALLOWED_DUNDER_ATTRS, name)
}

/// Whether the dunder may be reached through `super()`.
pub fn is_super_dunder(name: &str) -> bool {
    in_table(SUPER_DUNDERS, name)
}

/// Whether the dunder may be assigned.
pub fn is_allowed_dunder_store(name: &str) -> bool {
    in_table(ALLOWED_DUNDER_STORES, name)
}

/// Whether `name` is module metadata a strategy may bind at module level.
pub fn is_module_metadata(name: &str) -> bool {
    in_table(MODULE_METADATA, name)
}

/// Whether the attribute is blocked on every object.
pub fn is_blocked_attr(name: &str) -> bool {
    BLOCKED.contains(name)
}

/// Whether a string holding this dunder is allowed.
pub fn is_allowed_dunder_string(name: &str) -> bool {
    in_table(ALLOWED_DUNDER_STRINGS, name)
}

/// Why a native-extension module is denied, if it is.
pub fn native_denied(module: &str) -> Option<&'static str> {
    NATIVE_DENIED
        .iter()
        .find(|(n, _)| module == *n || module.strip_prefix(n).is_some_and(|r| r.starts_with('.')))
        .map(|(_, why)| *why)
}

/// What the qualified name needs checked, if it is a sink.
pub fn sink(qualified: &str) -> Option<Sink> {
    MODULE_SINKS
        .iter()
        .find(|(n, _, _)| *n == qualified)
        .map(|(_, s, _)| *s)
}

/// Whether the dotted name is a standard-library submodule.
pub fn is_stdlib_submodule(name: &str) -> bool {
    SUBMODULES.contains(name)
}

/// `__x__` with at least one character between the underscores.
pub fn is_dunder(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_tables_are_sorted() {
        assert!(STDLIB_SUBMODULES.windows(2).all(|w| w[0] < w[1]));
        assert!(BUILTIN_CLASSES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn every_allowance_has_a_reason() {
        for table in [
            ALLOWED_BUILTINS,
            ALLOWED_DUNDER_NAMES,
            ALLOWED_DUNDER_ATTRS,
            SUPER_DUNDERS,
            ALLOWED_DUNDER_STORES,
            ALLOWED_DUNDER_STRINGS,
            MODULE_METADATA,
        ] {
            for (name, why) in table {
                assert!(!why.is_empty(), "{name} has no reason");
            }
        }
    }
}
