"""Load the configured kernel modules and their dependencies, in order, with finit_module(2).

The dependency data is the builder's modules.dep / modules.alias under
/lib/modules/<uname -r>/; the closure and load order come from init.modules (pure parsing).
"""

from __future__ import annotations

import errno

from init import modules
from init.config import Config
from init.console import Log, errname
from init.errors import InitError
from init.kernel import Kernel
from init.rootfs import prefixed
from init.timeline import Timeline


def _optional(kernel: Kernel, path: str) -> str:
    try:
        return kernel.read_text(path)
    except FileNotFoundError:
        return ""   # ENOENT: modules.alias and modules.builtin are optional


def resolve(kernel: Kernel, folder: str, names: list[str]) -> list[str]:
    """Module paths relative to `folder`, dependencies first (modules.resolve, but read
    through the kernel seam). modules.builtin (hundreds of lines) and modules.alias are read
    only for a name that is not a module's own name: parsing costs boot time under emulation."""
    dep = modules.parse_dep(kernel.read_text(folder + "/modules.dep"))
    known = {modules.name_of(path) for path in dep}
    builtin: frozenset[str] = frozenset()
    alias: tuple[tuple[str, str], ...] = ()
    if any(modules.normalize(name) not in known for name in names):
        builtin = modules.parse_builtin(_optional(kernel, folder + "/modules.builtin"))
        if any(modules.normalize(name) not in known | builtin for name in names):
            alias = modules.parse_alias(_optional(kernel, folder + "/modules.alias"))
    return modules.closure(names, dep, alias, builtin, folder + "/modules.dep")


def load_modules(kernel: Kernel, root: str, config: Config, log: Log,
                 timeline: Timeline) -> None:
    """Raise InitError on a failure only when config.module_failure is "fatal"."""
    if not config.modules:
        return
    fatal = config.module_failure == "fatal"
    base = f"/lib/modules/{kernel.uname_release()}"
    with timeline.step("modules", "resolve"):
        try:
            order = resolve(kernel, prefixed(root, base), [m.name for m in config.modules])
        except (OSError, modules.ModuleError) as exc:
            message = f"cannot resolve modules: {errname(exc)}"
            if fatal:
                raise InitError(message) from exc
            log(message)
            return
    params = {modules.normalize(m.name): m.params for m in config.modules}
    for path in order:
        name = modules.name_of(path)
        with timeline.step("modules", name) as entry:
            try:
                kernel.finit_module(prefixed(root, f"{base}/{path}"), params.get(name, ""))
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    log(f"module {name} already loaded")   # EEXIST: built in or loaded before
                    continue
                entry.error = errname(exc)
                message = f"cannot load module {name}: {entry.error}"
                if fatal:
                    raise InitError(message) from exc
                log(message)
                continue
        log(f"loaded module {name}")
