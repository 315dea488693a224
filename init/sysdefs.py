"""The syscalls the stdlib lacks, declared once with cffi (API mode).

The same declaration builds two things: a host extension (`python -m init.sysdefs DIR`) so the
init's Python runs unchanged in host tests, and C source that the toolchain compiles into the
static aarch64 init (toolchain/nuitka_plugin.py). The resulting module is `_pinit_sys`; the init
imports it as `from _pinit_sys import ffi, lib`. This file runs only on the build machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cffi

MODULE = "_pinit_sys"

CDEF = """
int mount(const char *source, const char *target, const char *fstype,
          unsigned long flags, const void *data);
int umount2(const char *target, int flags);
int reboot(int cmd);
int sethostname(const char *name, size_t len);
int pinit_finit_module(int fd, const char *params, int flags);
int pinit_delete_module(const char *name, int flags);
int pinit_pivot_root(const char *new_root, const char *put_old);
int pinit_no_new_privs(void);
void sync(void);
int socket(int domain, int type, int protocol);

#define AF_INET ...
#define SOCK_DGRAM ...
#define SOCK_CLOEXEC ...

#define MS_RDONLY ...
#define MS_NOSUID ...
#define MS_NODEV ...
#define MS_NOEXEC ...
#define MS_REMOUNT ...
#define MS_BIND ...
#define MS_MOVE ...
#define MS_REC ...
#define MS_PRIVATE ...
#define MS_RELATIME ...
#define MNT_DETACH ...
#define MNT_FORCE ...
#define RB_AUTOBOOT ...
#define RB_HALT_SYSTEM ...
#define RB_POWER_OFF ...
#define RB_ENABLE_CAD ...
#define RB_DISABLE_CAD ...
#define MODULE_INIT_IGNORE_MODVERSIONS ...
#define MODULE_INIT_IGNORE_VERMAGIC ...
"""

SOURCE = """
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/module.h>
#include <sys/socket.h>

/* glibc 2.36 has no wrappers for these three. */
static int pinit_finit_module(int fd, const char *params, int flags) {
    return (int)syscall(SYS_finit_module, fd, params, flags);
}
static int pinit_delete_module(const char *name, int flags) {
    return (int)syscall(SYS_delete_module, name, flags);
}
static int pinit_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}
/* A non-root service can never gain privileges again (setuid programs, file capabilities). */
static int pinit_no_new_privs(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}
"""


def ffibuilder() -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(MODULE, SOURCE)
    return ffi


def emit_c(path: Path) -> Path:
    """Write the module's C source for the cross build."""
    ffibuilder().emit_c_code(str(path))
    return path


def build_host(outdir: Path) -> Path:
    """Compile the host extension into `outdir` and return its path."""
    outdir.mkdir(parents=True, exist_ok=True)
    return Path(ffibuilder().compile(tmpdir=str(outdir), verbose=False))


if __name__ == "__main__":
    print(build_host(Path(sys.argv[1] if len(sys.argv) > 1 else "build/host")))
