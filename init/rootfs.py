"""The early root file system, as data, and the one loop that sets it up.

Each step is a small frozen value; `run_steps` applies them in order through the kernel seam,
times each on the boot timeline and names the errno of every failure. A step's `ok` lists the
errnos that mean "already done", each with its reason in a comment where the step is declared.
Paths are absolute inside the target system and get the `root` prefix when run, so host tests
can build the same tree in a temporary directory.
"""

from __future__ import annotations

import errno

from init.console import Log, errname
from init.frozen import frozen
from init.kernel import Kernel
from init.timeline import Timeline

# Linux UAPI mount(2) flags (include/uapi/linux/mount.h): the same numbers on every
# architecture, so the steps can be declared (and tested) without the cffi module.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_RELATIME = 1 << 21
MNT_DETACH = 2
S_IFCHR = 0o020000  # <sys/stat.h>; not from _stat: one module less to import at boot

FLAG_NAMES = {
    "ro": MS_RDONLY,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "remount": MS_REMOUNT,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}


@frozen
class Dir:
    path: str
    mode: int = 0o755


@frozen
class Symlink:
    target: str  # not prefixed with root: it is read by the running system
    path: str


@frozen
class CharDev:
    path: str
    major: int
    minor: int
    mode: int = 0o666


@frozen
class Mount:
    source: str
    target: str
    fstype: str
    flags: int = 0
    data: str = ""
    ok: tuple[int, ...] = ()  # errnos that mean "already mounted"
    fallback: tuple[Step, ...] = ()  # steps run instead when the mount fails
    unless: str = ""  # a path that exists only when it is mounted already
    optional: bool = False  # a failure is a console line, not the end of the boot
    slow: bool = False  # waits in the kernel: done beside the interpreter's start


Step = Dir | Symlink | CharDev | Mount

NOSUID_NODEV = MS_NOSUID | MS_NODEV
NOSUID_NODEV_NOEXEC = MS_NOSUID | MS_NODEV | MS_NOEXEC

# When devtmpfs cannot be mounted (a kernel without CONFIG_DEVTMPFS): a tmpfs with the nodes
# every program expects. Numbers from Documentation/admin-guide/devices.txt.
DEV_FALLBACK: tuple[Step, ...] = (
    Mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=0755,size=1m"),
    CharDev("/dev/console", 5, 1, 0o600),
    CharDev("/dev/null", 1, 3),
    CharDev("/dev/zero", 1, 5),
    CharDev("/dev/tty", 5, 0),
    CharDev("/dev/random", 1, 8),
    CharDev("/dev/urandom", 1, 9),
    CharDev("/dev/kmsg", 1, 11, 0o644),
)

CGROUP2 = Mount(
    "cgroup2", "/sys/fs/cgroup", "cgroup2", NOSUID_NODEV_NOEXEC, ok=(errno.EBUSY,), optional=True
)

EARLY_ROOTFS: tuple[Step, ...] = (
    # The static init's C constructor mounts /proc before Python starts (Nuitka reads
    # /proc/self/exe at start-up). proc can be mounted again on top (every proc mount is a new
    # instance, so no EBUSY), hence the look for /proc/self first.
    Mount("proc", "/proc", "proc", NOSUID_NODEV_NOEXEC, unless="/proc/self"),
    Mount("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC, ok=(errno.EBUSY,)),
    # One cgroup per service (init/cgroup.py). Optional: without it services run unconfined.
    # favordynmods (Linux >= 6.0) makes moving a process into a group cheap; without it every
    # service start waits for an RCU grace period (~9 ms under QEMU). With it the mount waits
    # once instead, so it is slow: the C prologue mounts it (and what it needs before it) in a
    # helper process while the interpreter starts. An older kernel refuses the option: then
    # the plain mount.
    Mount(
        "cgroup2",
        "/sys/fs/cgroup",
        "cgroup2",
        NOSUID_NODEV_NOEXEC,
        "favordynmods",
        ok=(errno.EBUSY,),
        fallback=(CGROUP2,),
        unless="/sys/fs/cgroup/cgroup.controllers",
        slow=True,
    ),
    # EBUSY: a kernel with CONFIG_DEVTMPFS_MOUNT mounts it itself (Debian's does not).
    Mount(
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MS_NOSUID,
        "mode=0755",
        ok=(errno.EBUSY,),
        fallback=DEV_FALLBACK,
    ),
    Dir("/dev/pts"),
    # Every devpts mount is a private instance since Linux 4.7 ("newinstance" is implied);
    # ptmxmode makes its ptmx usable by non-root services.
    Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666"),
    # EEXIST: devtmpfs already has a ptmx node, which finds /dev/pts by itself (Linux >= 4.7).
    Symlink("pts/ptmx", "/dev/ptmx"),
    Dir("/dev/shm", 0o1777),
    Mount("tmpfs", "/dev/shm", "tmpfs", NOSUID_NODEV, "mode=1777"),
    Symlink("/proc/self/fd", "/dev/fd"),
    Symlink("/proc/self/fd/0", "/dev/stdin"),
    Symlink("/proc/self/fd/1", "/dev/stdout"),
    Symlink("/proc/self/fd/2", "/dev/stderr"),
    Mount("tmpfs", "/run", "tmpfs", NOSUID_NODEV, "mode=0755,size=10%"),
    Mount("tmpfs", "/tmp", "tmpfs", NOSUID_NODEV, "mode=1777"),
)


def prefixed(root: str, path: str) -> str:
    return root.rstrip("/") + path


def parse_options(options: str) -> tuple[int, str]:
    """fstab-style "ro,noatime,errors=remount-ro" → (MS_RDONLY|MS_NOATIME, "errors=remount-ro")."""
    flags = 0
    data = []
    for word in filter(None, options.split(",")):
        if word in FLAG_NAMES:
            flags |= FLAG_NAMES[word]
        elif word not in ("rw", "defaults"):
            data.append(word)
    return flags, ",".join(data)


def _mkdir(kernel: Kernel, path: str, mode: int) -> None:
    try:
        kernel.mkdir(path, mode)
    except FileExistsError:
        pass  # EEXIST: the initramfs (or an earlier mount) already has it


def apply(kernel: Kernel, root: str, step: Step, early: bool = False) -> str:
    """Run one step; returns what it did, for the log. Raises OSError for unexpected errnos.
    `early`: the C prologue mounted some file systems already (early start); skip those."""
    if isinstance(step, Mount):
        target = prefixed(root, step.target)
        if step.unless and kernel.exists(prefixed(root, step.unless)):
            return f"mounted {step.target} (was already mounted)"
        if early and kernel.is_mountpoint(target):
            return f"mounted {step.target} (early)"
        try:
            kernel.mount(step.source, target, step.fstype, step.flags, step.data)
        except OSError as exc:
            if exc.errno in step.ok:
                return f"mounted {step.target} (was already mounted)"
            if step.optional and exc.errno != errno.ENOENT:
                return f"cannot mount {step.fstype} on {step.target}: {errname(exc)}"
            if exc.errno != errno.ENOENT:
                raise
            # ENOENT: the initramfs lacks the mount point; make it and try once more.
            _mkdir(kernel, target, 0o755)
            kernel.mount(step.source, target, step.fstype, step.flags, step.data)
        return f"mounted {step.target}"
    if isinstance(step, Dir):
        _mkdir(kernel, prefixed(root, step.path), step.mode)
        return f"made {step.path}"
    if isinstance(step, Symlink):
        try:
            kernel.symlink(step.target, prefixed(root, step.path))
        except FileExistsError:
            return f"kept {step.path}"  # EEXIST: see the step's declaration
        return f"linked {step.path} -> {step.target}"
    if isinstance(step, CharDev):
        try:
            kernel.mknod(prefixed(root, step.path), S_IFCHR | step.mode, step.major, step.minor)
        except FileExistsError:
            return f"kept {step.path}"  # EEXIST: devtmpfs or the initramfs made it already
        return f"created {step.path}"
    raise TypeError(f"not a rootfs step: {step!r}")


def describe(step: Step) -> str:
    if isinstance(step, Mount):
        return f"mount {step.fstype} on {step.target}"
    if isinstance(step, Symlink):
        return f"link {step.path}"
    if isinstance(step, Dir):
        return f"make {step.path}"
    return f"create {step.path}"


def run_steps(
    kernel: Kernel,
    root: str,
    steps: tuple[Step, ...],
    timeline: Timeline,
    log: Log,
    phase: str = "mounts",
    early: bool = False,
) -> list[str]:
    """Apply `steps` in order; returns the targets mounted (for unmounting at shutdown).

    A failing step is reported and skipped: an appliance with no /dev/shm may still do its job,
    and PID 1 must not stop here. Mounts are printed; other steps only when verbose.
    """
    mounted: list[str] = []
    for step in steps:
        with timeline.step(phase, describe(step)) as entry:
            try:
                done = apply(kernel, root, step, early)
            except OSError as exc:
                entry.error = errname(exc)
                if isinstance(step, Mount) and step.fallback:
                    log(f"cannot {describe(step)}: {entry.error}; using the fallback")
                    mounted += run_steps(kernel, root, step.fallback, timeline, log, phase, early)
                else:
                    log(f"cannot {describe(step)}: {entry.error}")
                continue
        if isinstance(step, Mount):
            log(done)
            if "already" not in done:
                mounted.append(step.target)
        else:
            log.debug(done)
    return mounted
