"""What the Nuitka plugin generates and reads without Nuitka: pure, testable on any Python.

The C given to Nuitka (libpython's table of builtins, the refused modules, PID 1's header), the
Python of the multi-call binary's dispatcher and its finders, what the standard library's
sources import (module level or inside functions) and hold (a package's submodules), and what
any module embedded as bytecode may import (`source_imports`).
toolchain/nuitka_plugin.py puts them together; nothing here imports Nuitka.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from toolchain.nuitka_pin import INITTAB_MARK, REFUSED_MARK


def inittab_c(config_c: str, drop: frozenset[str], add: tuple[tuple[str, str], ...] = ()) -> str:
    """libpython's config.c (its table of builtin modules) without the modules in `drop` and
    with the extension modules `add`, (module name, init function) pairs.

    Linked before libpython3.11.a, this table replaces the archive's config.o, so the dropped
    modules' objects are never pulled in (unicodedata alone is 1.1 MB of the binary), and of
    the extension archives only the added modules' objects are."""
    out = []
    for line in config_c.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith('{"') and stripped.split('"')[1] in drop:
            continue
        if stripped.startswith("struct _inittab _PyImport_Inittab[]"):
            out += [f"extern PyObject* {symbol}(void);\n" for _, symbol in add]
        if stripped == "{0, 0}":
            out += [f'    {{"{name}", {symbol}}},\n' for name, symbol in add]
        out.append(line)
    # The table's names, readable in the binary (`strings /init | grep pinit-`), for people and
    # tests alike: what a program can import as builtins, and what it is told is not in.
    entries = [ln.strip().split('"')[1:] for ln in out if ln.strip().startswith('{"')]
    names = [name for name, symbol, *_ in entries if "pinit_refused_" not in symbol]
    refused = [name for name, symbol, *_ in entries if "pinit_refused_" in symbol]
    out.append(
        f'const char pinit_inittab_names[] = "{INITTAB_MARK} {" ".join(names)}\\0'
        f'{REFUSED_MARK} {" ".join(refused)}";\n'
    )
    text = "".join(out)
    if "_PyImport_Inittab[]" not in text or (add and f"{add[0][1]}}}" not in text):
        sys.exit(
            "pinit nuitka plugin: config.c has no _PyImport_Inittab ending in {0, 0}; "
            "wrong sysroot?"
        )
    return text


def refused_symbol(name: str) -> str:
    return "pinit_refused_" + name.replace(".", "__")


def refused_c(reasons: dict[str, str]) -> str:
    """Builtin modules whose import fails with a ModuleNotFoundError (an ImportError) that
    names the reason."""
    out = ["#include <Python.h>\n"]
    for name, reason in reasons.items():
        message = f"{name} is not in pinit's static binary: {reason}".replace("\\", "\\\\").replace(
            '"', '\\"'
        )
        out.append(
            f"PyObject *{refused_symbol(name)}(void) {{\n"
            f'    PyErr_SetString(PyExc_ModuleNotFoundError, "{message}");\n'
            "    return NULL;\n}\n"
        )
    return "".join(out)


def _absolute(base: str, level: int, package: str) -> str:
    """The absolute name of `from <level dots><base> import …` in `package` ("" when a
    relative import has no package to be relative to)."""
    if not level:
        return base
    if not package:
        return ""
    parent = package.rsplit(".", level - 1)[0] if level > 1 else package
    return f"{parent}.{base}" if base else parent


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _imports(filename: str, package: str) -> tuple[set[str], set[int]]:
    """What a Python source imports at module level (names, with their parents), and the lines
    of its imports inside function bodies."""
    import ast

    with open(filename, "rb") as f:
        tree = ast.parse(f.read())
    lazy_lines: set[int] = set()
    in_functions: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    in_functions.add(id(inner))
                    lazy_lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    eager: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in in_functions:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module or "", node.level, package)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            eager.update(_with_parents(name))
    return eager, lazy_lines


# What the target's branches test: its sys.platform, os.name and sys.version_info (as `sys`,
# `_sys`, `os`, `_os`); the target's Python is the build's (TARGET_PYTHON, 3.11.2).
TARGET_VALUES: dict[tuple[str, str], object] = {
    ("sys", "platform"): "linux",
    ("os", "name"): "posix",
    ("sys", "version_info"): tuple(sys.version_info),
}


def _target_value(node: object) -> object:
    """The target's value of `sys.platform`, `os.name`, `sys.version_info` (or an item or a
    slice of it with constant bounds); None for anything else."""
    import ast

    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return TARGET_VALUES.get((node.value.id.lstrip("_"), node.attr))
    if isinstance(node, ast.Subscript):
        value = _target_value(node.value)
        if isinstance(value, tuple):
            index = node.slice
            if isinstance(index, ast.Slice):
                lower = 0 if index.lower is None else _literal(index.lower)
                upper = len(value) if index.upper is None else _literal(index.upper)
                if isinstance(lower, int) and isinstance(upper, int) and index.step is None:
                    return value[lower:upper]
            else:
                item = _literal(index)
                if isinstance(item, int):
                    return value[item]
    return None


def _literal(node: object) -> object:
    import ast

    try:
        return ast.literal_eval(node)  # type: ignore[arg-type]
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None


def _branch(test: object, known: dict[str, bool] | None = None) -> bool | None:
    """Whether an `if` test holds on the target: True, False, or None when the source does not
    say (`sys.platform == "win32"`, `os.name != "nt"`, `sys.platform.startswith("linux")`,
    `sys.version_info >= (3, 8)`, `sys.version_info[0] == 2`,
    `TYPE_CHECKING`, `__name__ == "__main__"` in a module imported, a name in `known`, and
    `not`, `and`, `or` of those)."""
    import ast

    if isinstance(test, ast.Name) and known and test.id in known:
        return known[test.id]

    if (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and _literal(test.comparators[0]) == "__main__"
        and isinstance(test.ops[0], (ast.Eq, ast.NotEq))
    ):
        return isinstance(test.ops[0], ast.NotEq)  # an imported module is never __main__
    if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    ):
        return False  # true only for a type checker, never when the program runs
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _branch(test.operand, known)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        values = [_branch(v, known) for v in test.values]
        decisive = isinstance(test.op, ast.Or)  # the value that ends an `or` (an `and`: False)
        if decisive in values:
            return decisive
        return (not decisive) if all(v is not None for v in values) else None
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        value, other = _target_value(test.left), _literal(test.comparators[0])
        op = test.ops[0]
        if value is None or other is None:
            return None
        if isinstance(op, (ast.Eq, ast.NotEq)):
            return (value == other) == isinstance(op, ast.Eq)
        if isinstance(op, (ast.In, ast.NotIn)) and isinstance(other, (tuple, list, set, str)):
            return (value in other) == isinstance(op, ast.In)
        order = {ast.Lt: "__lt__", ast.LtE: "__le__", ast.Gt: "__gt__", ast.GtE: "__ge__"}
        if type(op) in order and type(value) is type(other):  # version_info >= (3, 8)
            result = getattr(value, order[type(op)])(other)
            return result if isinstance(result, bool) else None
        return None
    if (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Attribute)
        and test.func.attr == "startswith"
        and len(test.args) == 1
        and not test.keywords
    ):
        value, prefix = _target_value(test.func.value), _literal(test.args[0])
        if isinstance(value, str) and isinstance(prefix, (str, tuple)):
            return value.startswith(prefix)
    return None


def _module_constants(tree: object) -> dict[str, bool]:
    """The module's names bound once, at module level, to what `_branch` knows: `MYPY = False`,
    `_mswindows = (sys.platform == "win32")`."""
    import ast

    stores: dict[str, int] = {}
    for node in ast.walk(tree):  # type: ignore[arg-type]
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            stores[node.id] = stores.get(node.id, 0) + 1
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                stores[name] = stores.get(name, 0) + 2  # rebound elsewhere: not a constant
    known: dict[str, bool] = {}
    for node in tree.body:  # type: ignore[attr-defined]
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and stores.get(node.targets[0].id) == 1
        ):
            value = node.value
            holds = value.value if isinstance(value, ast.Constant) else _branch(value, known)
            if isinstance(holds, bool):
                known[node.targets[0].id] = holds
    return known


def _as_written(_qualname: str, _name: str, _body: list[Any]) -> None:
    return None


def source_imports(
    source: str,
    package: str,
    change_function: Callable[[str, str, list[Any]], object] = _as_written,
) -> list[tuple[str, int, str]]:
    """Every module a Python source may import, in source order, as (absolute name, line,
    Nuitka's reason): every import statement (at module level, in functions, in `try`),
    `__import__` and `importlib.import_module` of a constant name, each with its parent
    packages ("import path parent") and a `from` import's names as possible submodules
    ("import fromlist"). A branch for another platform, for `TYPE_CHECKING` or for running the
    module as a script is skipped. `package`: the package relative imports start from (the
    module's own, if it is one). `change_function(qualname, name, body)` may replace a
    function's body first, as Nuitka's plugins do for compiled code (anti-bloat's
    `change_function`: pickle's `_test`, which imports doctest)."""
    import ast

    found: list[tuple[str, int, str]] = []

    def add(name: str, line: int, reason: str = "import") -> None:
        if not name or name.startswith(".") or "" in name.split("."):
            return
        *parents, _ = _with_parents(name)
        found.extend((parent, line, "import path parent") for parent in parents)
        found.append((name, line, reason))

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []  # compiling it to bytecode says where
    known = _module_constants(tree)
    # Not recursive (an expression may nest deeper than the stack); each node with the
    # qualified-name prefix of the functions in it.
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        children: list[ast.AST] = list(ast.iter_child_nodes(node))
        inner = prefix
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            change_function(prefix + node.name, node.name, node.body)
            children = list(ast.iter_child_nodes(node))
            inner = f"{prefix}{node.name}.<locals>."
        elif isinstance(node, ast.ClassDef):
            inner = f"{prefix}{node.name}."
        elif isinstance(node, ast.If):
            holds = _branch(node.test, known)
            children = [
                *(node.body if holds is not False else ()),
                *(node.orelse if holds is not True else ()),
            ]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module or "", node.level, package)
            add(base, node.lineno)
            for alias in node.names:
                if base and alias.name != "*":
                    found.append((f"{base}.{alias.name}", node.lineno, "import fromlist"))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (
                    isinstance(node.func, ast.Name)
                    and node.func.id in ("__import__", "import_module")
                )
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            add(node.args[0].value, node.lineno)
        stack.extend((child, inner) for child in reversed(children))
    return found


_STDLIB_IMPORTS: dict[str, tuple[set[str], set[int]] | None] = {}


def stdlib_imports(module_name: str) -> tuple[set[str], set[int]] | None:
    """_imports() of a Python module of the standard library (None for any other), cached.
    The standard library is the one of the Python running Nuitka: Debian's 3.11.2, the target's."""
    if module_name not in _STDLIB_IMPORTS:
        import sysconfig

        base = os.path.join(sysconfig.get_paths()["stdlib"], *module_name.split("."))
        found = None
        for filename, package in (
            (os.path.join(base, "__init__.py"), module_name),
            (base + ".py", module_name.rpartition(".")[0]),
        ):
            if os.path.isfile(filename):
                found = _imports(filename, package)
                break
        _STDLIB_IMPORTS[module_name] = found
    return _STDLIB_IMPORTS[module_name]


def early_header() -> str:
    """init/early.py's C header: the early-start record's format and the early file systems."""
    from init import early  # pure Python; the repository is on the build's PYTHONPATH

    return early.c_header()


# The standard library's pure-Python copies of C modules every binary that imports them links,
# by the module that falls back to them: a program importing one by name still gets it.
C_FALLBACKS = {"_pydecimal": ("decimal",)}

# Builtin modules that import another builtin from C (a capsule), which no import graph shows.
BUILTIN_REQUIRES = {"_elementtree": ("pyexpat",), "_ssl": ("_socket",)}

# A package's C extension is a builtin named like "gpiod._ext", but CPython's BuiltinImporter
# only finds top-level builtins; this finder, last on sys.meta_path, finds the others.
BUILTIN_SUBMODULES = """\
import _imp
class _PinitBuiltinSubmodules:
    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if "." in fullname and _imp.is_builtin(fullname):
            bootstrap = sys.modules["_frozen_importlib"]
            return bootstrap.ModuleSpec(fullname, bootstrap.BuiltinImporter, origin="built-in")
        return None
sys.meta_path.append(_PinitBuiltinSubmodules)
del _PinitBuiltinSubmodules
"""


RUN_PROGRAM = """\
def _pinit_run(module):
    bootstrap = sys.modules["_frozen_importlib"]
    spec = bootstrap._find_spec(module, None)
    program = bootstrap.module_from_spec(spec)
    sys.modules[module] = program
    spec.loader.exec_module(program)
"""


# sysconfig imports its data by a name computed at run time from the target's ABI
# (`_sysconfigdata__aarch64-linux-gnu`, not an identifier Nuitka can embed): the target's file
# is embedded as `_pinit_sysconfigdata` and this finder, last on sys.meta_path, gives it the
# computed name (PINIT_SYSCONFIGDATA names it).
SYSCONFIGDATA = """\
class _PinitSysconfigData:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != %r:
            return None
        return sys.modules["_frozen_importlib"].ModuleSpec(fullname, cls)
    @staticmethod
    def create_module(spec):
        return __import__("_pinit_sysconfigdata")
    @staticmethod
    def exec_module(module):
        pass
sys.meta_path.append(_PinitSysconfigData)
del _PinitSysconfigData
"""
SYSCONFIGDATA_MODULE = "_pinit_sysconfigdata"


def dispatcher_py(programs: list[tuple[str, str]], sysconfigdata: str = "") -> str:
    """The `__main__` of a multi-call binary: runs the program of the invocation name, given
    (program name, module of its --main) pairs in order, after installing the finders above.
    It compares the basename of argv[0] and imports nothing but sys (Nuitka's own imports `re`:
    tens of milliseconds under emulation on every start, PID 1 included)."""
    # Nuitka sets sys.argv[0] to the executable (/init); a program sees its own name.
    lines = [
        "import sys",
        "sys.argv[0] = __compiled__.original_argv0",
        'name = sys.argv[0].rpartition("/")[2]',
        *BUILTIN_SUBMODULES.splitlines(),
    ]
    if sysconfigdata:
        lines += (SYSCONFIGDATA % sysconfigdata).splitlines()
    # The program runs as `python3 app.py` runs __main__: not inside an import. Imported, its
    # module would be "initializing" for as long as it runs, and another thread that imports it
    # (pickle does, for a function of the program a multiprocessing.Pool sends) would wait for
    # its module lock forever. Loaded as importlib's _load_unlocked loads it, less the lock and
    # the mark.
    lines += RUN_PROGRAM.splitlines()
    # Never called: Nuitka compiles in the modules an import statement names, and these are
    # the programs'.
    lines.append("def _pinit_programs():")
    lines += [f"    __import__({module!r})" for _, module in programs]
    for program, module in programs:
        lines += [f"if name == {program!r}:", f"    _pinit_run({module!r})", "    sys.exit(0)"]
    lines.append('sys.exit("pinit: %s: no program of that name in this binary" % name)')
    return "\n".join(lines) + "\n"


# Packages never embedded whole, wherever they are: tests and the standard library's IDE, GUI
# and installer, which need what no appliance has (a display, pip). A program that imports one
# of their modules by name still gets that module, as any other.
NEVER_WHOLE = frozenset(
    ("test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip")
)
# The standard library's packages come as their import graph says (every import statement,
# inside functions too), but these, which look their own modules up by a name computed at run
# time: codecs by encoding name, dbm's back ends by the file's type (dbm.whichdb), SAX parsers
# by name (xml.sax.make_parser), DOM implementations by name (xml.dom.getDOMImplementation),
# and sqlite3.dump, which sqlite3's C imports. A whole stdlib package would cascade: urllib
# whole is urllib.robotparser, http whole is http.server and argparse, logging whole is
# logging.config and, through it, smtplib and socketserver.
WHOLE_STDLIB = frozenset(("encodings", "dbm", "xml.sax", "xml.dom", "sqlite3"))


def in_stdlib(filename: str) -> bool:
    """`filename` is a file of the standard library (of the Python running Nuitka: Debian's
    3.11.2, the target's), not of a distribution installed beside it."""
    import sysconfig

    stdlib = sysconfig.get_paths()["stdlib"] + os.sep
    path = os.path.join(os.path.abspath(filename), "")  # a package's is its folder
    return path.startswith(stdlib) and not path[len(stdlib) :].startswith(
        ("site-packages" + os.sep, "dist-packages" + os.sep)
    )


def submodules(name: str, init_file: str) -> list[str]:
    """The direct submodules of package `name` whose __init__.py is `init_file`: its .py files
    and its folders with an __init__.py, less NEVER_WHOLE."""
    folder = os.path.dirname(init_file)
    found = []
    for entry in sorted(os.listdir(folder)):
        if entry.endswith(".py") and entry not in ("__init__.py", "__main__.py"):
            sub = entry[:-3]
        elif os.path.isfile(os.path.join(folder, entry, "__init__.py")):
            sub = entry
        else:
            continue
        if sub.isidentifier() and sub not in NEVER_WHOLE:
            found.append(f"{name}.{sub}")
    return found


def archive_symbols(path: str) -> list[str]:
    """The global symbols an `ar` archive defines, from its GNU symbol index (the first member,
    named "/": a big-endian count, that many member offsets, then the names)."""
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise ValueError(f"{path}: not an ar archive")
        header = f.read(60)
        if header[:16].strip() != b"/":
            return []
        index = f.read(int(header[48:58]))
    count = int.from_bytes(index[:4], "big")
    return [name.decode() for name in index[4 + 4 * count :].split(b"\0")[:count]]


def pythonapi_c(symbols: list[str]) -> str:
    """ctypes.pythonapi in a static binary: ctypes looks the C API up with dlsym in the program
    itself (PyDLL(None)), but a static program has no dynamic symbol table. The link wraps
    dlsym (-Wl,--wrap=dlsym): a name dlsym does not find is looked up in this table of
    libpython's symbols. Weak references: the table pulls nothing into the link, and a part of
    libpython the binary does not link is missing, as dlsym would say."""
    names = sorted({n for n in symbols if n.startswith(("Py", "_Py")) and n.isidentifier()})
    lines = ["#include <dlfcn.h>", "#include <stdlib.h>", "#include <string.h>", ""]
    lines += [f"extern char {n}[] __attribute__((weak));" for n in names]
    lines += [
        "",
        "struct pinit_api { const char *name; const void *address; };",
        "static const struct pinit_api pinit_api[] = {",
    ]
    lines += [f'    {{"{n}", {n}}},' for n in names]
    lines += [
        '    {"", 0}',
        "};",
        "",
        "static int pinit_api_cmp(const void *key, const void *entry) {",
        "    return strcmp((const char *)key, ((const struct pinit_api *)entry)->name);",
        "}",
        "",
        "void *__real_dlsym(void *handle, const char *name);",
        "void *__wrap_dlsym(void *handle, const char *name) {",
        "    void *found = __real_dlsym(handle, name);",
        "    if (found != NULL || name == NULL)",
        "        return found;",
        "    const struct pinit_api *entry = bsearch(name, pinit_api, "
        f"{len(names)}, sizeof *entry, pinit_api_cmp);",
        "    if (entry == NULL || entry->address == NULL)",
        "        return NULL;   /* dlerror() still says why */",
        "    dlerror();",
        "    return (void *)entry->address;",
        "}",
        "",
    ]
    return "\n".join(lines)
