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
int pinit_reboot_with(const char *arg);
int pinit_no_new_privs(void);
int pinit_uevent_socket(void);
int pinit_spawn(const char *path, char *const argv[], char *const envp[], int cgroup_fd,
                int out_fd, int null_fd, int *err);
void sync(void);
int socket(int domain, int type, int protocol);
int pinit_packet_socket(int ifindex, int protocol);
int pinit_packet_send(int fd, int ifindex, int protocol, const unsigned char *dest,
                      const unsigned char *data, size_t len);
int pinit_netlink_socket(int protocol, unsigned int groups);
int pinit_netlink_join(int fd, unsigned int group);
int pinit_udp_socket(const unsigned char *addr, int port);
int pinit_tcp_socket(const unsigned char *addr, int port);
int pinit_tcp_listen(int port);
int pinit_tcp_accept(int fd, unsigned char *addr);
int pinit_adjtime(long long usec);
int pinit_blkpg(int fd, int op, int number, long long start, long long length);

#define BLKPG_ADD_PARTITION ...
#define BLKPG_RESIZE_PARTITION ...

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
#include <linux/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/module.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <linux/blkpg.h>

/* glibc 2.36 has no wrappers for these three. */
static int pinit_finit_module(int fd, const char *params, int flags) {
    return (int)syscall(SYS_finit_module, fd, params, flags);
}
static int pinit_delete_module(const char *name, int flags) {
    return (int)syscall(SYS_delete_module, name, flags);
}
/* reboot(2) with a command for the firmware: LINUX_REBOOT_CMD_RESTART2 and its argument, which
   the kernel prints ("Restarting system with command '0 tryboot'") and hands to its reboot
   notifiers (Raspberry Pi's firmware driver turns "tryboot" into the bootloader's one-shot
   flag). glibc's reboot() takes no argument. */
static int pinit_reboot_with(const char *arg) {
    return (int)syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                        LINUX_REBOOT_CMD_RESTART2, arg);
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

/* A new socket `fd` whose bind or connect `failed`: closed, -1 with that call's errno; else fd. */
static int pinit_kept(int fd, int failed) {
    if (failed) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
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
    return pinit_kept(fd, bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0);
}

/* DHCP before there is an address: IPv4 packets of one interface, sent to its broadcast
   hardware address. Non-blocking, closed on exec. */
static int pinit_packet_socket(int ifindex, int protocol) {
    struct sockaddr_ll addr;
    int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(protocol));
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(protocol);
    addr.sll_ifindex = ifindex;
    return pinit_kept(fd, bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0);
}
/* Send one packet of `protocol` (an ethertype) to the hardware address `dest` (6 bytes). */
static int pinit_packet_send(int fd, int ifindex, int protocol, const unsigned char *dest,
                             const unsigned char *data, size_t len) {
    struct sockaddr_ll addr;
    memset(&addr, 0, sizeof addr);
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(protocol);
    addr.sll_ifindex = ifindex;
    addr.sll_halen = ETH_ALEN;
    memcpy(addr.sll_addr, dest, ETH_ALEN);
    return (int)sendto(fd, data, len, 0, (struct sockaddr *)&addr, sizeof addr);
}
/* A netlink socket to the kernel (rtnetlink: addresses, routes, link events), subscribed to
   the multicast `groups`; non-blocking, closed on exec. */
static int pinit_netlink_socket(int protocol, unsigned int groups) {
    struct sockaddr_nl addr;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = groups;
    return pinit_kept(fd, bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0);
}
/* Join a netlink multicast group by number (generic netlink's groups are past bind's 32). */
static int pinit_netlink_join(int fd, unsigned int group) {
    return setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group);
}
/* A socket of `type` connected (or, for TCP, connecting) to addr:port (4 bytes, network order),
   non-blocking, closed on exec. UDP: only that peer's datagrams arrive, read and write need no
   address. TCP: connected when it turns writable (a write then says if it failed). */
static void pinit_ipv4(struct sockaddr_in *sa, const unsigned char *addr, int port) {
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short)port);
    memcpy(&sa->sin_addr, addr, 4);
}
static int pinit_connected(int type, const unsigned char *addr, int port) {
    struct sockaddr_in peer;
    int fd = socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    pinit_ipv4(&peer, addr, port);
    return pinit_kept(fd, connect(fd, (struct sockaddr *)&peer, sizeof peer) < 0 &&
                              !(type == SOCK_STREAM && errno == EINPROGRESS));
}
static int pinit_udp_socket(const unsigned char *addr, int port) {
    return pinit_connected(SOCK_DGRAM, addr, port);
}
static int pinit_tcp_socket(const unsigned char *addr, int port) {
    return pinit_connected(SOCK_STREAM, addr, port);
}
/* A TCP socket listening on `port` of every address, non-blocking, closed on exec: readable
   when a client is waiting. A backlog of one: PID 1 serves one client at a time, the next
   waits in the kernel. */
static int pinit_tcp_listen(int port) {
    static const unsigned char any[4] = {0, 0, 0, 0}; /* INADDR_ANY */
    struct sockaddr_in self;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    pinit_ipv4(&self, any, port);
    return pinit_kept(fd, bind(fd, (struct sockaddr *)&self, sizeof self) < 0 ||
                              listen(fd, 1) < 0);
}
/* The waiting client of a listening socket: its socket (non-blocking, closed on exec) and its
   address in addr (4 bytes, network order); -1 with EAGAIN when none waits. */
static int pinit_tcp_accept(int fd, unsigned char *addr) {
    struct sockaddr_in peer;
    socklen_t size = sizeof peer;
    int client = accept4(fd, (struct sockaddr *)&peer, &size, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client >= 0) memcpy(addr, &peer.sin_addr, 4);
    return client;
}
/* Slew the clock by usec microseconds (the kernel's 500 ppm: 0.1 s takes 200 s). */
static int pinit_adjtime(long long usec) {
    struct timeval delta;
    delta.tv_sec = (time_t)(usec / 1000000);
    delta.tv_usec = (suseconds_t)(usec % 1000000);
    return adjtime(&delta, NULL);
}

/* Tell the kernel about partition `number` of the disk open as `fd`: added, or resized, to
   `length` bytes from `start` (BLKPG): it works while the disk's other partitions are in use,
   where re-reading the whole table (BLKRRPART) would be refused. */
static int pinit_blkpg(int fd, int op, int number, long long start, long long length) {
    struct blkpg_partition part;
    struct blkpg_ioctl_arg arg;
    memset(&part, 0, sizeof part);
    memset(&arg, 0, sizeof arg);
    part.start = start;
    part.length = length;
    part.pno = number;
    arg.op = op;
    arg.datalen = sizeof part;
    arg.data = &part;
    return ioctl(fd, BLKPG, &arg);
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
