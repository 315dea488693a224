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
int pinit_uevent_socket(void);
int pinit_spawn(const char *path, char *const argv[], char *const envp[], int cgroup_fd,
                int out_fd, int null_fd, int *err);
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
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/module.h>
#include <sys/socket.h>
#include <linux/netlink.h>

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
/* Start a service inside its cgroup without copying PID 1: vfork (the child borrows PID 1's
   memory until it execs, as posix_spawn does) with every signal blocked, so no handler of PID
   1's runs in the child. The child joins the cgroup (writes "0" to its open cgroup.procs),
   starts a session, takes /dev/null and the output pipe, gets default signal handling and an
   empty mask, and execs. A failure before or at exec is left in *err (the memory is shared). */
static int pinit_spawn(const char *path, char *const argv[], char *const envp[], int cgroup_fd,
                       int out_fd, int null_fd, int *err) {
    sigset_t all, old;
    volatile int child_err = 0;
    pid_t pid;
    int saved;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = vfork();
    if (pid == 0) {
        struct sigaction dfl;
        sigset_t none;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                sigaction(sig, &dfl, NULL);
        if ((cgroup_fd >= 0 && write(cgroup_fd, "0", 1) != 1) || setsid() < 0 ||
                dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) {
            child_err = errno;
            _exit(127);
        }
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        child_err = errno;
        _exit(127);
    }
    saved = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    *err = pid < 0 ? saved : child_err;
    return pid;
}

/* The kernel's device events (what udev and mdev listen to): a netlink socket bound to the
   kernel's multicast group 1, non-blocking, closed on exec. */
static int pinit_uevent_socket(void) {
    struct sockaddr_nl addr;
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    NETLINK_KOBJECT_UEVENT);
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = 1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
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
