"""pinit's entry point: `main(sys.argv)`; PID 1 never returns from it and never dies.

Usage:  /init                                   (PID 1 in a real boot; stray arguments that the
                                                 kernel passes from its command line are ignored)
        python -m init.main --root DIR --config FILE   (host tests, e.g. in a PID namespace)

`--root DIR` prefixes every path the init sets up or reads (mounts, /dev nodes, /sys, /proc,
/lib/modules, /run); with a root other than "/" the init keeps the stdio it was started with and
does not write to /dev/kmsg. Services run in the real root either way. `--config FILE` is a
path on the running system (default DIR/etc/pinit.json). Not PID 1, reboot(2) is not called:
the init prints what it would do and exits 0.

Console lines — stable, greppable, each prefixed "pinit: " (N, K = numbers, S = exit status,
X, W = seconds, SIG = signal name, a|b = one of the words, <…> = any text; the service name
stands where "app" is, a path or errno for any other; tests/unit/test_docs.py checks that every
console line of the golden transcripts is one of these):

    pinit: started as PID 1 on <machine>
    pinit: mounted /proc                       (one per mount: /proc /sys /dev /dev/pts
    pinit: mounted /proc (was already mounted)   /dev/shm /run /tmp; EBUSY is fine)
    pinit: cannot mount devtmpfs on /dev: ENODEV (No such device); using the fallback
    pinit: cannot mount tmpfs on /run: <errno>   (reported, boot goes on)
    pinit: warning: <from the kernel command line's pinit.* words>
    pinit: cannot open console /dev/ttyS9: ENOENT (No such file or directory); keeping the
           kernel's console                      (one line)
    pinit: loaded module dummy
    pinit: module dummy already loaded
    pinit: cannot load module dummy: ENOENT (No such file or directory)
    pinit: cannot resolve modules: <modules.dep problem>
    pinit: waiting for LABEL=data
    pinit: checking LABEL=data (/dev/vda1) with e2fsck
    pinit: e2fsck: ...                         (e2fsck's own lines)
    pinit: LABEL=data: clean (e2fsck status N)   (or "repaired", "damaged")
    pinit: growing partition 2 of mmcblk0 to fill the card: X MiB -> X MiB
    pinit: mounted /data from /dev/vda1 (ext4)
    pinit: growing the file system on /data: X MiB -> X MiB   (then "grew the file system ...")
    pinit: watchdog /dev/watchdog armed (15 s)
    pinit: time: ...                           (init/clock.py lists them: restored, stepped …)
    pinit: network: ...                        (init/network.py lists them: lease, link …)
    pinit: starting app (pid N)
    pinit: app: waiting for network, time (up to X s)      (its wait_for paths, `after`)
    pinit: app: network not there within X s; starting it anyway   (or "not starting it",
                                                                     "reboot": on_wait_timeout)
    pinit: boot X s: main at X s, init X s, mounts X s, ... -> app started   (one per step)
    pinit: app: cannot execute /app/hello: ENOENT (No such file or directory)
    pinit: app exited with status S; restart K in X s
    pinit: app killed by signal N (SIG); restart K in X s
    pinit: app exited with status S; not restarting (restart=on-failure)
    pinit: app exited with status 125; not restarting (status 125 means do not restart)
    pinit: crash loop: app failed N times in W s; action <policy>
    pinit: got SIG: poweroff|reboot|halt      (SIGUSR2: poweroff, SIGTERM: reboot, SIGUSR1: halt,
                                                 SIGINT: reboot)
    pinit: control: poweroff                     (a word written to /run/pinit/control)
    pinit: control: unknown command 'foo' (expected reboot, poweroff or halt)
    pinit: shutdown (poweroff|reboot|halt)
    pinit: stopping app (pid N)
    pinit: app killed by signal N (SIG)         (or "app exited with status S")
    pinit: app did not stop within X s; sending SIGKILL
    pinit: synced file systems
    pinit: unmounted /data                       (or "cannot unmount /data: ...; remounted
    pinit: unmounted /tmp /run /dev/shm ...        read-only")
    pinit: watchdog disarmed
    pinit: powering off
    pinit: rebooting|halting
    pinit: FATAL: <message>
    pinit: reboot in X s                         (the failure policy; or poweroff, halt)
    pinit: watchdog disarmed for the shell
    pinit: starting a Python shell on the console; leave it (Ctrl-D) to reboot
    pinit: not PID 1, so no reboot(2) RB_POWER_OFF; exiting     (host runs only)

The failure policy (config.on_failure; "shell" with pinit.debug=1) also applies when
/etc/pinit.json cannot be read: then the defaults hold (reboot after 5 s).
"""

from __future__ import annotations

import _signal as signal  # not `signal`: it imports enum
import posix
import sys

from init.boot import Boot
from init.config import Config, failure_policy
from init.console import Log, errname, kmsg, release_console
from init.errors import InitError
from init.kernel import Kernel
from init.shutdown import reboot

USAGE = "usage: python -m init.main [--root DIR] [--config FILE]"
NOT_PID1 = (
    "pinit: /init runs the system only as PID 1 (a service that runs sys.executable gets this: "
    'multiprocessing\'s "spawn" and "forkserver" start methods are not available; "fork", '
    "Linux's default, is)"
)


def parse_args(argv: list[str], strict: bool) -> tuple[str, str | None]:
    """(root, config path). As PID 1, words the kernel passed from its command line are
    ignored; elsewhere an unknown option is a usage error."""
    root, config = "/", None
    words = list(argv)
    while words:
        word = words.pop(0)
        name, eq, value = word.partition("=")
        if name in ("--root", "--config"):
            if not eq:
                if not words:
                    if strict:
                        raise SystemExit(f"{USAGE}\n{name} needs a value")
                    break
                value = words.pop(0)
            if name == "--root":
                root = value
            else:
                config = value
        elif strict:
            raise SystemExit(f"{USAGE}\nunknown argument {word!r}")
    return root, config


def describe(exc: BaseException) -> str:
    """One line for the console; unexpected exceptions also say where they happened."""
    if isinstance(exc, (InitError, OSError)):
        return str(exc) if isinstance(exc, InitError) else errname(exc)
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def fatal(boot: Boot, exc: BaseException) -> str:
    """The one failure path: report, then follow the failure policy. Returns the action to
    shut down with ("shell" first runs the REPL). Cannot raise."""
    try:
        message = describe(exc)
        boot.log(f"FATAL: {message}")
        if boot.real_console:
            kmsg(boot.kernel, boot.root, f"FATAL: {message}")
        config = boot.config or Config()
        if config.debug and not isinstance(exc, InitError):
            from init.shell import traceback_lines  # only here: needed only to debug

            for line in traceback_lines(exc):
                boot.log(line)
        policy = failure_policy(config)
        if policy == "shell":
            return "shell"
        boot.log(f"{policy} in {config.failure_delay:g} s")
        boot.kernel.sleep(config.failure_delay)
        return policy
    except BaseException:  # even a second failure here must end in a reboot, not a panic
        return "reboot"


def repl(boot: Boot) -> None:
    """An interactive Python on the console (there is no busybox); returns when it is left."""
    boot.log("starting a Python shell on the console; leave it (Ctrl-D) to reboot")
    try:
        from init.shell import interact

        namespace = {
            "boot": boot,
            "kernel": boot.kernel,
            "config": boot.config,
            "supervisor": boot.supervisor,
            "timeline": boot.timeline,
        }
        interact(namespace, "pinit shell: boot, kernel, config, supervisor, timeline")
    except BaseException as exc:  # SystemExit from exit(), or a console that went away
        boot.log(f"shell ended: {describe(exc)}")


def main(argv: list[str], kernel: Kernel | None = None) -> None:
    """Boot, supervise, shut down, reboot(2). Never returns normally as PID 1.

    `argv` is the whole command line as in sys.argv: argv[0] is the program (the compiled
    init's entry calls main(sys.argv)). `kernel` is for tests (the recording fake)."""
    pid = posix.getpid()
    if pid != 1 and not argv[1:]:
        # /init is sys.executable in every Python service: what runs that (multiprocessing's
        # "spawn" and "forkserver", a program restarting itself) must not boot a second system
        # inside the first, which would start every service again, and so on.
        raise SystemExit(NOT_PID1)
    root, config_path = parse_args(argv[1:], strict=pid != 1)
    if kernel is None:
        try:
            kernel = Kernel()
        except BaseException as exc:
            # Without the syscall module there is no way to reboot; a panic would lose this line.
            posix.write(1, f"pinit: FATAL: no syscall module: {exc!r}\n".encode())
            if pid != 1:
                raise SystemExit(1) from exc  # a host run: build it (python -m init.sysdefs)
            while True:
                try:
                    signal.pause()
                except BaseException:
                    pass  # e.g. KeyboardInterrupt: PID 1 must not exit
    log = Log(kernel)
    boot = Boot(kernel, log, root, config_path)
    try:
        boot.setup()
        action = boot.run()
    except BaseException as exc:
        action = fatal(boot, exc)
    if action == "shell":
        if boot.watchdog is not None:
            # Nobody pets it while a person debugs; the board must not reset under them.
            try:
                boot.watchdog.disarm()
                log("watchdog disarmed for the shell")
            except OSError as exc:
                log(f"cannot disarm the watchdog: {errname(exc)}")
            boot.watchdog = None
        release_console(kernel, log)  # the shell reads and writes the console blocking
        repl(boot)
        action = "reboot"
    try:
        boot.shutdown(action)
    except BaseException as exc:
        log(f"shutdown failed: {describe(exc)}")
    reboot(kernel, action, log)


if __name__ == "__main__":
    main(sys.argv)
