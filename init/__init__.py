"""pinit's init: PID 1 (init/main.py) and the programs the static binary also is (modprobe).

In that binary the package's own modules are imported by a short path: Nuitka's loader finds
and loads them as always (importlib's `_load_unlocked`, the same module attributes), without
the module locks and the round of the other finders that importlib adds to each import. PID 1
runs one thread, and every other name takes the usual way. About 0.05 ms of each of the 25
imports before the app starts under QEMU (`invoke bench`, pinit-late). On a host (the tests)
nothing changes.
"""

import sys


def _short_imports() -> None:
    # The type's name is checked against the pinned Nuitka (tests/unit/test_toolchain.py).
    loader = next((f for f in sys.meta_path if type(f).__name__ == "nuitka_module_loader"), None)
    if loader is None:
        return
    bootstrap = sys.modules["_frozen_importlib"]  # importlib as the interpreter runs it
    usual = bootstrap._find_and_load
    modules = sys.modules

    def find_and_load(name: str, import_: object) -> object:
        package, _, child = name.rpartition(".")
        if package == "init" and package in modules:
            spec = loader.find_spec(name, None)
            if spec is not None:
                module = bootstrap._load_unlocked(spec)
                setattr(modules[package], child, module)
                return module
        return usual(name, import_)

    bootstrap.__dict__["_find_and_load"] = find_and_load


_short_imports()
