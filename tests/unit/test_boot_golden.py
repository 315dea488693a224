"""The whole init, from main() to reboot(2), against the recording fake kernel.

Each scenario's transcript (every kernel call and console line, on a virtual clock) is compared
with tests/golden/<scenario>.txt. After an intended change, review and rewrite them with
    PINIT_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_boot_golden.py
"""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from hostkit.paths import REPO
from init.boot import Boot
from init.config import Config, CrashLoop, Data, Module, Service, Watchdog
from init.console import Log
from init.main import main
from init.validate import to_dict
from tests.fakes import Execed, FakeKernel, Rebooted, Run

GOLDEN = REPO / "tests" / "golden"
HEADER = (
    "Written by tests/unit/test_boot_golden.py (PINIT_UPDATE_GOLDEN=1 rewrites it).\n"
    "Each line: virtual CLOCK_BOOTTIME, then one kernel call of the init (console| = a "
    "console line).\n"
)
SCENARIOS = {
    "normal_boot": "A Pi-like boot: modules, a LABEL= data partition, the watchdog, one app; "
    "'poweroff' on the control FIFO at t=12.",
    "crash_loop": "The app exits 1 after 0.2 s each time: backoff 0.5, 1, 2 s, then the crash "
    "loop (4 in 30 s) reboots.",
    "missing_app": "/app/hello does not exist: each start fails with ENOENT (exit 127); the "
    "crash loop powers off.",
    "sigterm_shutdown": "SIGTERM at t=3 with two services, one ignoring SIGTERM: SIGKILL after "
    "the 2 s grace, then reboot.",
    "module_failure": "finit_module fails with EINVAL and module_failure is fatal: FATAL, "
    "reboot after failure_delay.",
    "module_failure_warns": "The same failure with module_failure = warn: a console line, the "
    "app starts; SIGUSR1 halts.",
    "devtmpfs_fallback": "devtmpfs cannot be mounted (ENODEV): tmpfs on /dev with static nodes; "
    "SIGUSR2 powers off.",
    "unreadable_config": "No /etc/pinit.json: FATAL with the default policy (reboot after 5 s).",
    "exec_mode": "mode = exec: the set-up, the summary, then execve of the one service in PID 1.",
}
MODULES = "/lib/modules/6.1.0-test"
CONFIG = "/boot/pinit.json"


# The card: the boot partition, then the data partition up to the card's end (nothing to grow).
PARTITIONS = ((0x0C, 8192, 212992), (0x83, 221184, 32768))
CARD_SECTORS = 253952


def ext4_with_label(label: str) -> bytes:
    head = bytearray(2048)
    head[1024 + 0x04 : 1024 + 0x08] = (32768 * 512 // 4096).to_bytes(4, "little")  # blocks
    head[1024 + 0x18 : 1024 + 0x1C] = (2).to_bytes(4, "little")  # 1024 << 2: 4 KiB blocks
    head[1024 + 0x38 : 1024 + 0x3A] = b"\x53\xef"
    head[1024 + 0x78 : 1024 + 0x78 + len(label)] = label.encode()
    return bytes(head)


def mbr(signature: int) -> bytes:
    head = bytearray(512)
    head[440:444] = signature.to_bytes(4, "little")
    for i, (kind, start, count) in enumerate(PARTITIONS):
        head[446 + 16 * i + 4] = kind
        head[446 + 16 * i + 8 : 446 + 16 * i + 16] = struct.pack("<II", start, count)
    head[510:512] = b"\x55\xaa"
    return bytes(head)


def machine(**kwargs: object) -> FakeKernel:
    """A Pi-like machine: a kernel command line, two modules, an SD card with a data partition."""
    files = {
        "/proc/cmdline": b"console=ttyAMA0,115200 rdinit=/init pinit.hostname=appliance\n",
        f"{MODULES}/modules.dep": b"kernel/drivers/net/dummy.ko: kernel/lib/helper.ko\n"
        b"kernel/lib/helper.ko:\n",
        f"{MODULES}/kernel/drivers/net/dummy.ko": b"\x7fELF",
        f"{MODULES}/kernel/lib/helper.ko": b"\x7fELF",
        "/sys/class/block/mmcblk0/dev": b"179:0\n",
        "/sys/class/block/mmcblk0p1/dev": b"179:1\n",
        "/sys/class/block/mmcblk0p1/partition": b"1\n",
        "/sys/class/block/mmcblk0p2/dev": b"179:2\n",
        "/sys/class/block/mmcblk0p2/partition": b"2\n",
        "/sys/class/block/mmcblk0p2/start": b"%d\n" % PARTITIONS[1][1],
        "/sys/class/block/mmcblk0p2/size": b"%d\n" % PARTITIONS[1][2],
        "/sys/class/block/mmcblk0/size": b"%d\n" % CARD_SECTORS,
    }
    links = {
        f"/sys/class/block/{name}": f"/sys/devices/platform/mmc/block/mmcblk0/{name}"
        for name in ("mmcblk0p1", "mmcblk0p2")
    }
    devices = {
        "/dev/mmcblk0": mbr(0x6C586E13),
        "/dev/mmcblk0p1": b"",
        "/dev/mmcblk0p2": ext4_with_label("data"),
    }
    return FakeKernel(files=files, links=links, devices=devices, **kwargs)  # type: ignore[arg-type]


def app(**kwargs: object) -> Service:
    defaults: dict[str, object] = {
        "args": ("--fast",),
        "env": (("GREETING", "hi"),),
        "backoff_start": 0.5,
        "backoff_max": 4.0,
    }
    return Service("app", "/app/hello", **{**defaults, **kwargs})  # type: ignore[arg-type]


def boot(
    fake: FakeKernel,
    config: Config | None,
    name: str,
    entry: Callable[[list[str], FakeKernel], None] = main,
) -> BaseException:  # type: ignore[assignment]
    """Run main() until reboot(2) or execve; compare the transcript with the golden file."""
    path = CONFIG  # a fixed path: a temporary one would change the byte counts written
    if config is not None:  # the init reads it through the kernel seam: the fake serves it
        fake.files[str(path)] = json.dumps(to_dict(config)).encode()
    with pytest.raises((Rebooted, Execed)) as info:
        entry(["init", "--config", str(path)], fake)
    about = (HEADER + SCENARIOS[name]).replace("\n", "\n# ")
    text = f"# {about}\n" + "\n".join(fake.transcript) + "\n"
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("PINIT_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no {golden}; create it with PINIT_UPDATE_GOLDEN=1"
    assert text == golden.read_text(), (
        f"transcript differs from {golden.name}; if intended, rerun with PINIT_UPDATE_GOLDEN=1"
    )
    return info.value


def console(fake: FakeKernel) -> list[str]:
    return [line.split("console| ", 1)[1] for line in fake.transcript if "console| " in line]


def test_normal_boot() -> None:
    fake = machine()
    fake.program("/app/hello", Run(None, output=b"hello from app\n"))
    fake.program(
        "/sbin/e2fsck", Run(0.05, output=b"data: clean, 11/4096 files, 1000/16384 blocks\n")
    )
    fake.at(12.0, control=b"poweroff\n")
    config = Config(
        modules=(Module("dummy", "numdummies=2"),),
        data=Data(device="LABEL=data", wait=1.0),
        watchdog=Watchdog(device="/dev/watchdog", timeout=15, interval=5.0),
        services=(app(),),
    )
    end = boot(fake, config, "normal_boot")
    assert isinstance(end, Rebooted) and end.action == "poweroff"
    lines = console(fake)
    assert "pinit: loaded module helper" in lines and "pinit: loaded module dummy" in lines
    assert "pinit: mounted /data from /dev/mmcblk0p2 (ext4)" in lines
    assert any(
        line.startswith("pinit: boot ") and line.endswith("-> app started") for line in lines
    )
    timeline = json.loads(fake.files["/run/pinit/timeline.json"])
    assert timeline["clock"] == "CLOCK_BOOTTIME" and timeline["app_started"] > 1.0
    assert sum("WDIOC_KEEPALIVE" in line for line in fake.transcript) == 2  # at 5 s and 10 s


def test_crash_loop() -> None:
    fake = machine()
    fake.program("/app/hello", Run(0.2, status=1, output=b"oops\n"))
    config = Config(services=(app(crash_loop=CrashLoop(count=4, window=30.0)),))
    end = boot(fake, config, "crash_loop")
    assert isinstance(end, Rebooted) and end.action == "reboot"
    lines = console(fake)
    assert "pinit: app exited with status 1; restart 3 in 2.0 s" in lines
    assert "pinit: crash loop: app failed 4 times in 30 s; action reboot" in lines


def test_missing_app() -> None:
    fake = machine()
    config = Config(services=(app(crash_loop=CrashLoop(count=3, window=60.0, action="poweroff")),))
    end = boot(fake, config, "missing_app")
    assert isinstance(end, Rebooted) and end.action == "poweroff"
    assert "pinit: app: cannot execute /app/hello: ENOENT (No such file or directory)" in console(
        fake
    )


def test_sigterm_shutdown() -> None:
    fake = machine()
    fake.program("/app/hello", Run(None, output=b"hello\n"))
    fake.program("/app/stubborn", Run(None, ignore_term=True))
    fake.at(3.0, signal=signal.SIGTERM)
    config = Config(
        shutdown_grace=2.0, services=(app(), Service("stubborn", "/app/stubborn", restart="never"))
    )
    end = boot(fake, config, "sigterm_shutdown")
    assert isinstance(end, Rebooted) and end.action == "reboot"
    lines = console(fake)
    assert "pinit: got SIGTERM: reboot" in lines
    assert "pinit: stubborn did not stop within 2 s; sending SIGKILL" in lines


def test_module_failure() -> None:
    fake = machine()
    fake.fail(f"finit_module {MODULES}/kernel/drivers/net/dummy.ko", errno.EINVAL)
    fake.program("/app/hello", Run(None))
    config = Config(
        modules=(Module("dummy"),), module_failure="fatal", failure_delay=3.0, services=(app(),)
    )
    end = boot(fake, config, "module_failure")
    assert isinstance(end, Rebooted) and end.action == "reboot"
    lines = console(fake)
    assert "pinit: FATAL: cannot load module dummy: EINVAL (Invalid argument)" in lines
    assert "pinit: reboot in 3 s" in lines
    assert not any("spawn" in line for line in fake.transcript)


def test_module_failure_warns() -> None:
    fake = machine()
    fake.fail(f"finit_module {MODULES}/kernel/drivers/net/dummy.ko", errno.EINVAL)
    fake.program("/app/hello", Run(None))
    fake.at(2.0, signal=signal.SIGUSR1)
    config = Config(modules=(Module("dummy"),), services=(app(),))
    end = boot(fake, config, "module_failure_warns")
    assert isinstance(end, Rebooted) and end.action == "halt"
    assert "pinit: cannot load module dummy: EINVAL (Invalid argument)" in console(fake)


def test_devtmpfs_fallback() -> None:
    fake = machine()
    fake.fail("mount devtmpfs", errno.ENODEV)
    fake.program("/app/hello", Run(None))
    fake.at(1.5, signal=signal.SIGUSR2)
    end = boot(fake, Config(services=(app(),)), "devtmpfs_fallback")
    assert isinstance(end, Rebooted) and end.action == "poweroff"
    assert any("mknod /dev/null c 1:3 666" in line for line in fake.transcript)


def test_unreadable_config() -> None:
    fake = machine()
    end = boot(fake, None, "unreadable_config")
    assert isinstance(end, Rebooted) and end.action == "reboot"
    lines = console(fake)
    assert f"pinit: FATAL: {CONFIG}: ENOENT (No such file or directory)" in lines
    assert "pinit: reboot in 5 s" in lines


def setup_and_run(argv: list[str], kernel: FakeKernel) -> None:
    """Boot without main()'s catch-everything, which would take the fake's Execed (a
    successful execve, which really never returns) for a failure."""
    b = Boot(kernel, Log(kernel), "/", argv[2])  # type: ignore[arg-type]
    b.setup()
    b.run()


def test_exec_mode() -> None:
    fake = machine()
    fake.program("/app/hello", Run(None))
    end = boot(fake, Config(mode="exec", services=(app(),)), "exec_mode", setup_and_run)
    assert isinstance(end, Execed)
    assert "execve /app/hello --fast (cwd /, uid 0, gid 0)" in fake.transcript[-1]


def test_debug_gives_the_shell_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pinit.debug=1 turns a fatal error into the REPL; leaving it reboots."""
    fake = machine()
    fake.files["/proc/cmdline"] = b"pinit.debug=1\n"
    entered = []
    monkeypatch.setattr("init.main.repl", lambda boot: entered.append(boot))
    with pytest.raises(Rebooted) as info:
        main(["init", "--config", str(tmp_path / "missing.json")], kernel=fake)  # type: ignore[arg-type]
    assert entered and info.value.action == "reboot"
