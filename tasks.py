"""pinit's commands: `invoke --list`. Thin: each task calls into builder/ or toolchain/.

Errors reach people here and only here: a BuildError becomes one line plus a hint, exit 1;
`--debug` (or PINIT_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import task

# The repository on the path first (invoke may run from elsewhere), then its paths from their owner.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostkit.paths import BUILD  # noqa: E402


def reported(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(c: Any, *args: Any, **kwargs: Any) -> Any:
        from hostkit.errors import BuildError

        try:
            return fn(c, *args, **kwargs)
        except BuildError as exc:
            if os.environ.get("PINIT_DEBUG"):
                traceback.print_exc()
            print(f"pinit: error: {exc}", file=sys.stderr)
            if exc.hint:
                print(f"pinit: hint: {exc.hint}", file=sys.stderr)
            sys.exit(1)

    return wrapper


@task(help={"update": "re-resolve the package list against the apt sources and rewrite the lock"})
@reported
def toolchain(c, update=False):
    """Provision the pinned cross toolchain (host packages, arm64 sysroot, kernel, firmware)."""
    from toolchain import provision

    if update:
        provision.update_lock()
    tc = provision.ensure()
    print(f"toolchain ready in {tc.cache} (kernel {tc.kernel_release})")


@task(help={"config": "the pinit.toml whose services' requirements to lock (default pinit.toml)"})
@reported
def lock(c, config=None):
    """Resolve the Python services' requirements again into pinit.lock beside the pinit.toml."""
    from builder import boards
    from builder import image as img
    from builder.config import load_build_config
    from builder.python import pypi

    cfg = load_build_config(Path(config) if config else img.default_config())
    if not cfg.requirements:
        print(f"{cfg.path}: no [[service]] has requirements; nothing to lock")
        return
    pypi.write_lock(
        cfg.path.with_name(pypi.LOCK_NAME),
        sorted(set(cfg.requirements.values())),
        cfg.python.wheels,
        boards.target_of(cfg.image.board),  # a board without a native runtime: no binary wheels
    )


@task(
    help={
        "debug": "show tracebacks",
        "target": "aarch64 (the default: build/init), armhf (the Pi 2: build/init-armhf) or "
        "armel (the Pi Zero and 1: build/init-armel), each from its locked sysroot",
    }
)
@reported
def build_init(c, debug=False, target="aarch64"):
    """Compile init/ into build/init: one static aarch64 ELF (--target T: build/init-T)."""
    from builder.python.compile import build_init as build
    from hostkit.run import step
    from toolchain import provision
    from toolchain.target import DEFAULT
    from toolchain.target import target as named

    if debug:
        os.environ["PINIT_DEBUG"] = "1"
    chosen = named(target)
    tc = provision.for_target(provision.ensure(), chosen)
    out = BUILD / ("init" if chosen == DEFAULT else f"init-{chosen.name}")
    with step("build-init" if chosen == DEFAULT else f"build-init --target {chosen.name}"):
        build(tc, out)


@task(
    help={
        "config": "the appliance description (default: pinit.toml in the repo)",
        "from_": "replace the shell init of this classic boot folder or card image (or take "
        "kernel, firmware and modules from a Raspberry Pi OS card); never modified",
        "out": "output directory (default: build)",
    }
)
@reported
def image(c, config=None, from_=None, out=None):
    """Build the initramfs, build/boot/ (copy onto a FAT card) and build/sdcard.img."""
    from builder import boards
    from builder import image as img
    from builder.config import load_build_config
    from builder.python.compile import build_init as build
    from builder.python.compile import init_is_current
    from hostkit.run import step
    from toolchain import provision
    from toolchain.target import DEFAULT

    tc = provision.ensure()
    outdir = Path(out) if out else BUILD

    def init_for(target):
        """The board's target (builder/boards.py) picks the init: build/init, build/init-armhf."""
        init = BUILD / ("init" if target == DEFAULT else f"init-{target.name}")
        built_for = provision.for_target(tc, target)
        if not init_is_current(built_for, init):
            with step(
                f"build-init ({init.relative_to(BUILD.parent)} is missing or older than init/)"
            ):
                build(built_for, init)
        return init

    if from_:
        from builder.convert import rebuild

        # The converted card's target (its kernel, its busybox) picks the init.
        rebuild.build_from(Path(from_), Path(config) if config else None, outdir, init_for, tc)
        return
    path = Path(config) if config else img.default_config()
    cfg = load_build_config(path)
    built = img.build(path, outdir, init_for(boards.target_of(cfg.image.board)), tc, cfg=cfg)
    print(f"boot folder: {built.boot}  (copy its contents onto a FAT-formatted SD card)")
    print(f"card image:  {built.image}")


@task(help={"out": "folder for update.key and update.pub (default: keys)"})
@reported
def keygen(c, out="keys"):
    """A new Ed25519 key pair for signed update bundles (an image's [update] key)."""
    from builder import update

    update.keygen(Path(out))


@task(
    help={
        "key": "the private key from invoke keygen (default: keys/update.key)",
        "boot": "the boot folder to ship (default: build/boot, as invoke image wrote it)",
        "out": "the bundle to write (default: build/update.bundle)",
        "version": "a name for this version, shown on the device (default: the UTC time)",
    }
)
@reported
def bundle(c, key="keys/update.key", boot=None, out=None, version=None):
    """Sign a boot folder into an update bundle for devices with [update]."""
    import datetime

    from builder import update

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    update.write_bundle(
        Path(boot) if boot else BUILD / "boot",
        Path(key),
        Path(out) if out else BUILD / "update.bundle",
        version or stamp,
    )


@task(
    help={
        "to": "the device: HOST or HOST:PORT, the port of its [update] listen (default 8080)",
        "bundle": "the bundle to push (default: build/update.bundle, as invoke bundle wrote it)",
    }
)
@reported
def update(c, to, bundle=None):
    """Push a signed bundle to a device with [update] listen; it checks it and tries it."""
    from builder import update as updates

    answer = updates.push(Path(bundle) if bundle else BUILD / "update.bundle", to)
    print(f"{to}: {answer}")


@task(help={"k": "only tests matching this expression", "fast": "skip the QEMU boot tests"})
@reported
def test(c, k=None, fast=False):
    """Provision, build the init, then run the whole test suite (unit, namespace, QEMU boots)."""
    from builder.python.compile import build_init as build
    from hostkit.run import step
    from toolchain import provision

    tc = provision.ensure()
    with step("build-init"):
        build(tc, BUILD / "init")
    # --durations: the slowest tests in the log, so CI's time can be kept in bounds.
    args = [sys.executable, "-m", "pytest", "-q", "-ra", "--durations=30"]
    if k:
        args += ["-k", k]
    if fast:
        args += ["-m", "not qemu"]
    import shlex

    result = c.run(shlex.join(args), warn=True, pty=False)
    sys.exit(result.exited)


@task(
    help={
        "n": "boots per variant (default 5)",
        "no_builds": "skip the cold/warm build timing",
        "no_icount": "real-time guest clock instead of instruction counting",
    }
)
@reported
def bench(c, n=5, no_builds=False, no_icount=False):
    """Build time, size and boot time of pinit beside busybox; build/bench.json, docs/benchmarks.md."""
    from builder.python.compile import build_init as build
    from builder.qemu import bench as b
    from toolchain import provision

    tc = provision.ensure()
    init = BUILD / "init"
    build(tc, init)
    b.bench(tc, init, BUILD, n=int(n), builds=not no_builds, icount=not no_icount)


# `path` is an option, not a positional: invoke requires every positional argument, so
# `invoke boot` alone (the README's first boot) would be refused.
@task(
    help={
        "path": "boot folder or card image (default build/boot)",
        "machine": "virt (default, fast), raspi3b (bcm2837 dtb, single-thread TCG), raspi2b "
        "(32-bit: a Pi 2 card, armhf) or raspi0 (32-bit: a Pi Zero card, armel)",
        "expect": "scripted: pass when this console text appears (repeatable)",
        "fail": "scripted: fail at once when this console text appears (repeatable)",
        "timeout": "scripted: seconds before giving up (default 30)",
        "disk": "attach this disk image (a card image attaches itself)",
        "timeline": "render the init's boot timeline from the console log as build/timeline.svg",
        "net": "a virtio NIC on qemu's own DHCP server (restrict=on: nothing outside is reached)",
    },
    iterable=["expect", "fail"],
)
@reported
def boot(
    c,
    path=None,
    machine="virt",
    expect=None,
    fail=None,
    timeout=30.0,
    disk=None,
    timeline=False,
    net=False,
):
    """Boot a boot folder or card image in QEMU the way the Pi firmware would."""
    from builder.qemu import harness

    source = Path(path) if path else BUILD / "boot"
    append = ["pinit.timeline=1"] if timeline else []
    nic = harness.NIC_USER_RESTRICTED if net else "none"
    with harness.plan(source, machine, append, disk=Path(disk) if disk else None, nic=nic) as plan:
        if not expect and not timeline:
            harness.run(plan, interactive=True)
            return
        wanted = expect or (["pinit: timeline "] if timeline else ["pinit: boot "])
        result = harness.run(
            plan, expect=wanted, fail=fail or [], timeout=float(timeout), echo=True
        )
    if timeline:
        from builder.qemu import timeline as tl

        svg = tl.render_from_console(result.lines, BUILD / "timeline.svg")
        print(f"pinit: boot timeline: {svg}")
    if not result.ok:
        sys.exit(1)
