"""Device permissions: the [[device]] rules applied to the nodes devtmpfs made, so a service
running as a normal user can open its hardware (what mdev.conf and udev rules do).

A rule matches a device by subsystem (/sys/class/<subsystem>) and kernel name (a glob, as in
/sys/class/<subsystem>/<name>); its node is /dev/<DEVNAME> (from the device's uevent).
"""

from __future__ import annotations

from init.config import Device
from init.console import Log, errname
from init.kernel import Kernel
from init.modules import glob_match
from init.rootfs import prefixed


def _devname(kernel: Kernel, uevent: str, name: str) -> str:
    try:
        text = kernel.read_text(uevent)
    except OSError:
        return name  # ENOENT: no uevent; devtmpfs names the node after the device
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "DEVNAME":
            return value
    return name


def apply_rules(kernel: Kernel, root: str, rules: tuple[Device, ...], log: Log) -> None:
    classes = prefixed(root, "/sys/class")
    try:
        subsystems = kernel.listdir(classes)
    except OSError:
        return  # ENOENT: no sysfs
    for subsystem in sorted(subsystems):
        wanted = [r for r in rules if r.subsystem in ("", subsystem)]
        if not wanted:
            continue
        try:
            names = kernel.listdir(f"{classes}/{subsystem}")
        except OSError:
            continue  # ENOENT: the class went away meanwhile
        for name in sorted(names):
            for rule in wanted:
                if glob_match(rule.kernel, name):
                    node = _devname(kernel, f"{classes}/{subsystem}/{name}/uevent", name)
                    _apply(kernel, root, rule, node, log)


def apply_one(
    kernel: Kernel,
    root: str,
    rules: tuple[Device, ...],
    subsystem: str,
    name: str,
    node: str,
    log: Log,
) -> None:
    """The rules for one device (a hotplug event): its class, kernel name and node."""
    for rule in rules:
        if rule.subsystem in ("", subsystem) and glob_match(rule.kernel, name):
            _apply(kernel, root, rule, node, log)


def _apply(kernel: Kernel, root: str, rule: Device, node: str, log: Log) -> None:
    path = prefixed(root, f"/dev/{node}")
    if not kernel.exists(path):
        return  # a device without a node (a network interface, a bus)
    try:
        kernel.chown(path, rule.uid, rule.gid)
        kernel.chmod(path, rule.mode)
    except OSError as exc:
        log(f"cannot set /dev/{node} to {rule.uid}:{rule.gid} {rule.mode:o}: {errname(exc)}")
        return
    if rule.symlink:
        try:
            kernel.symlink(node, prefixed(root, f"/dev/{rule.symlink}"))
        except FileExistsError:
            pass  # EEXIST: an earlier rule or boot made it
        except OSError as exc:
            log(f"cannot link /dev/{rule.symlink} to {node}: {errname(exc)}")
    log(
        f"/dev/{node}: {rule.uid}:{rule.gid} {rule.mode:o}"
        + (f", /dev/{rule.symlink}" if rule.symlink else "")
    )
