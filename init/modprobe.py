"""The one binary called as modprobe: the kernel's own module requests (request_module: a mount
of a file system whose module is not loaded, `fs-vfat`; a character device's `char-major-…`).

The kernel runs /proc/sys/kernel/modprobe, which the init points at /sbin/modprobe, a link to
/init; dispatched by that name, this runs instead of the init, loads what the shipped modules
offer for the names it is given (with init.coldplug's Loader) and says so on the console.
Exit status 0 when something matched, 1 otherwise (the kernel then fails the request).
"""

from __future__ import annotations

import posix

from init.coldplug import Loader
from init.console import Log
from init.kernel import Kernel
from init.timeline import Timeline


def main(argv: list[str]) -> int:
    names = [a for a in argv[1:] if not a.startswith("-")]
    # The kernel starts its helpers with no standard files: the console becomes 1 and 2.
    try:
        console = posix.open("/dev/console", posix.O_WRONLY | posix.O_NOCTTY)
        posix.dup2(console, 1)
        posix.dup2(console, 2)
    except OSError:
        pass  # ENOENT: no console node (a test root); Log then writes nowhere
    kernel = Kernel()
    loader = Loader(kernel, "/", Log(kernel), Timeline(kernel.clock))
    found = loader.load(names, "requested by the kernel")
    return 0 if found or all(name in loader.loaded for name in names) else 1
