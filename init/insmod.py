"""Load the configured kernel modules and their dependencies, in order, with finit_module(2).

The dependency data is the builder's modules.dep / modules.alias under
/lib/modules/<uname -r>/; the load order comes from init.modules.resolve, read through the
kernel seam.
"""

from __future__ import annotations

import errno

from init.config import Config
from init.console import Log, errname
from init.errors import InitError
from init.kernel import Kernel
from init.rootfs import prefixed
from init.timeline import Timeline


def load_modules(
    kernel: Kernel, root: str, config: Config, log: Log, timeline: Timeline, early: bool = False
) -> None:
    """Raise InitError on a failure only when config.module_failure is "fatal". `early`: the C
    prologue started the first service, after loading every one of these (init/early.py)."""
    if not config.modules:
        return
    from init import modules  # here: a boot without modules reads no modules.dep

    fatal = config.module_failure == "fatal"
    base = f"/lib/modules/{kernel.uname_release()}"
    with timeline.step("modules", "resolve"):
        try:
            order = modules.resolve(
                kernel.read_text, prefixed(root, base), [m.name for m in config.modules]
            )
        except (OSError, modules.ModuleError) as exc:
            message = f"cannot resolve modules: {errname(exc)}"
            if fatal:
                raise InitError(message) from exc
            log(message)
            return
    params = {modules.normalize(m.name): m.params for m in config.modules}
    times = kernel.early_module_times() if early else []
    for index, path in enumerate(order):
        name = modules.name_of(path)
        if early and kernel.exists(prefixed(root, f"/sys/module/{name}")):
            if index < len(times):  # the prologue's own load, in the same order
                entry = timeline.step("modules", f"{name} (early)")
                entry.start, entry.end = times[index]
            log(f"loaded module {name} (before the interpreter)")
            continue
        with timeline.step("modules", name) as entry:
            try:
                kernel.finit_module(prefixed(root, f"{base}/{path}"), params.get(name, ""))
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    log(f"module {name} already loaded")  # EEXIST: built in or loaded before
                    continue
                entry.error = errname(exc)
                message = f"cannot load module {name}: {entry.error}"
                if fatal:
                    raise InitError(message) from exc
                log(message)
                continue
        log(f"loaded module {name}")
