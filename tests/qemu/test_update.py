"""A/B updates in QEMU, with the harness playing the Pi 4 bootloader: it reads autoboot.txt on
the card and the tryboot flag the guest's reboot asked for ("Restarting system with command
'0 tryboot'", which the kernel prints), and boots the slot the bootloader would. What QEMU
cannot show: the flag reaching a real bootloader (Debian's kernel has no Raspberry Pi firmware
reboot notifier; see docs/update.md)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

from builder import update
from builder.formats import sdimage
from builder.image import build
from builder.qemu import harness
from hostkit.errors import BuildError
from init import slots
from tests.qemu.lan import HOST, Lan
from tests.qemu.test_watchdog import CONFIG as WATCHDOG
from tests.qemu.test_watchdog import FREEZER, WATCHDOG_QEMU

APP = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
    printf("APP %s\n", VERSION); fflush(stdout);
    if (CRASH) return 1;
    sleep(STAY);
    kill(1, SIGUSR2);   /* poweroff: the end of this boot */
    for (;;) pause();
}
"""
TRYBOOT = "Restarting system with command '0 tryboot'"
POWER_DOWN = "reboot: Power down"


def appliance(
    cc,
    tmp: Path,
    name: str,
    key: Path,
    crash: bool,
    built_init,
    toolchain,
    url: str = "",
    extra: str = "",
    listen: int = 0,
    stay: int = 0,
) -> Path:
    """An A/B card whose app prints its version, then powers off after `stay` seconds (by
    default v1 stays long enough for an update to be written first). `url`, `listen`: the
    [update] keys, with a [network] (DHCP)."""
    source = APP.replace("VERSION", f'"{name}"').replace("CRASH", str(int(crash)))
    app = cc(name, source.replace("STAY", str(stay or (40 if name == "v1" else 8))))
    network = "".join(
        [
            f'url = "{url}"\nfetch_every = 2\n' if url else "",
            f"listen = {listen}\n" if listen else "",
            "[network]\n" if url or listen else "",
        ]
    )
    folder = tmp / name
    folder.mkdir()
    (folder / "pinit.toml").write_text(f"""
[data]
size = "96MiB"
[update]
key = "{key}"
check_every = 1
healthy_after = 3
ready = "APP v"
deadline = 15
{network}[[service]]
name = "app"
exec = "{app}"
restart = "always"
backoff_start = 0.5
crash_loop = {{ count = 1000 }}
{extra}""")
    return build(folder / "pinit.toml", folder / "out", built_init, toolchain).image


def bundle_of(
    card: Path,
    private: Path,
    out: Path,
    version: str,
    unbootable: bool = False,
    keep: tuple[str, ...] = (),
) -> Path:
    """A bundle of the card's slot: what QEMU needs of its boot folder (the Pi's firmware
    files are left out to keep the test small, but for `keep`, say raspi3b's device tree;
    `invoke bundle` ships the whole folder).
    `unbootable`: a release whose initramfs is damaged, signed all the same (a bad build):
    the kernel finds no init and panics."""
    boot = out.parent / f"{out.stem}-boot"
    boot.mkdir()
    for name in sdimage.fat_list(card, slots.SLOTS[0]):
        if name.endswith(("config.txt", "cmdline.txt", *keep)) or name.startswith(
            ("vmlinuz", "initramfs")
        ):
            data = sdimage.fat_read(card, slots.SLOTS[0], name)
            if unbootable and name.startswith("initramfs"):
                data = bytes(len(data))
            (boot / name).write_bytes(data)
    return update.write_bundle(boot, private, out, version)


def drop(card: Path, bundles: dict[str, Path], work: Path) -> None:
    """Put bundles into /data/update of the card's data partition, as an app would."""
    index = len(sdimage.read_partitions(card))
    part = work / "data.img"
    sdimage.extract_partition(card, index, part)
    commands = ["mkdir update", *(f"write {p} update/{n}" for n, p in sorted(bundles.items()))]
    for command in commands:
        subprocess.run(["debugfs", "-w", "-R", command, str(part)], check=True, capture_output=True)
    start = next(p.start for p in sdimage.read_partitions(card) if p.index == index)
    with open(card, "r+b") as f:
        f.seek(start)
        f.write(part.read_bytes())


def firmware_boot(
    card: Path,
    tryboot: bool,
    expect: list[str],
    log: Path,
    then: str | None = "reboot: ",
    lan: Lan | None = None,
    qemu_args: tuple[str, ...] = (),
    nic: str = "none",
) -> harness.BootResult:
    """One boot as the bootloader would make it; by default until the guest reboots or powers
    off (qemu's -no-reboot ends it there, as a reset would hand over to the bootloader). The
    guest's network: `lan`'s, or QEMU's own `nic`."""
    nic, netns = (lan.nic, lan.netns) if lan is not None else (nic, "")
    with harness.plan(card, tryboot=tryboot, nic=nic, qemu_args=qemu_args) as plan:
        result = harness.run(
            plan,
            expect=expect,
            fail=("FATAL",),  # a panic fails too, unless `expect` names it
            then=then,
            timeout=120,
            log=log,
            netns=netns,
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    return result


def autoboot(card: Path) -> tuple[int, int] | None:
    return slots.parse_autoboot(sdimage.fat_read(card, 1, slots.AUTOBOOT).decode())


def test_a_signed_update_is_tried_once_and_kept_a_forged_one_is_refused(
    cc, built_init, toolchain, tmp_path
) -> None:
    private, public = update.keygen(tmp_path / "keys")
    forger = update.keygen(tmp_path / "forger")[0]
    new = appliance(cc, tmp_path, "v2", public, False, built_init, toolchain)
    card = appliance(cc, tmp_path, "v1", public, False, built_init, toolchain)
    assert autoboot(card) == (2, 3)
    drop(
        card,
        {
            "1-forged.bundle": bundle_of(new, forger, tmp_path / "forged.bundle", "v2"),
            "2-good.bundle": bundle_of(new, private, tmp_path / "good.bundle", "v2"),
        },
        tmp_path,
    )
    first = firmware_boot(
        card,
        False,
        [
            "update: /data/update/1-forged.bundle refused: its signature is not the update key's",
            "update: /data/update/2-good.bundle: version v2, signature and hashes good",
            "update: version v2 written to slot 3",
            TRYBOOT,
        ],
        tmp_path / "boot1.log",
    )
    assert "APP v1" in first.lines
    assert autoboot(card) == (2, 3)  # not committed before it is tried
    tried = firmware_boot(
        card,
        True,
        ["update: trying slot 3", "APP v2", "update: slot 3 is healthy and kept", POWER_DOWN],
        tmp_path / "boot2.log",
    )
    assert tried.ok
    assert autoboot(card) == (3, 2)
    again = firmware_boot(card, False, ["APP v2", POWER_DOWN], tmp_path / "boot3.log")
    assert not any("update: trying" in line for line in again.lines)
    names = sdimage.fat_list(card, 1)
    assert [n for n in names if not n.endswith("/")] == [slots.AUTOBOOT]


def test_an_update_that_never_becomes_healthy_falls_back_to_the_old_slot(
    cc, built_init, toolchain, tmp_path
) -> None:
    private, public = update.keygen(tmp_path / "keys")
    broken = appliance(cc, tmp_path, "v2", public, True, built_init, toolchain)
    card = appliance(cc, tmp_path, "v1", public, False, built_init, toolchain)
    drop(card, {"u.bundle": bundle_of(broken, private, tmp_path / "u.bundle", "v2")}, tmp_path)
    firmware_boot(
        card, False, ["update: version v2 written to slot 3", TRYBOOT], tmp_path / "1.log"
    )
    firmware_boot(
        card,
        True,
        ["APP v2", "update: slot 3 not healthy after 15 s: rebooting into slot 2"],
        tmp_path / "2.log",
    )
    assert autoboot(card) == (2, 3)
    back = firmware_boot(card, False, ["APP v1"], tmp_path / "3.log", then=None)
    assert any("pinit: mounted /data" in line for line in back.lines)


def test_an_update_whose_kernel_panics_falls_back_to_the_old_slot(
    cc, built_init, toolchain, tmp_path
) -> None:
    """The tried system never reaches PID 1: the kernel panics and reboots (panic=-1) without
    the tryboot flag, so the bootloader starts the default slot, which is still the old one.
    Its PID 1 cannot tell that from a power cut before the reboot (the try never began), so it
    tries once more; the second panic gives the update up."""
    private, public = update.keygen(tmp_path / "keys")
    new = appliance(cc, tmp_path, "v2", public, False, built_init, toolchain)
    card = appliance(cc, tmp_path, "v1", public, False, built_init, toolchain)
    bundle = bundle_of(new, private, tmp_path / "u.bundle", "v2", unbootable=True)
    drop(card, {"u.bundle": bundle}, tmp_path)
    firmware_boot(
        card, False, ["update: version v2 written to slot 3", TRYBOOT], tmp_path / "1.log"
    )
    firmware_boot(card, True, ["Kernel panic - not syncing"], tmp_path / "2.log", then=None)
    assert autoboot(card) == (2, 3)
    firmware_boot(
        card,
        False,
        ["update: version v2 in slot 3 was written but never tried", TRYBOOT],
        tmp_path / "3.log",
    )
    firmware_boot(card, True, ["Kernel panic - not syncing"], tmp_path / "4.log", then=None)
    back = firmware_boot(
        card,
        False,
        ["update: version v2 was not kept: slot 3 never started its try twice", "APP v1"],
        tmp_path / "5.log",
        then=None,
    )
    assert any("pinit: mounted /data" in line for line in back.lines)


def test_an_update_whose_init_hangs_is_reset_by_the_watchdog_and_falls_back(
    cc, built_init, toolchain, tmp_path
) -> None:
    """The tried system's PID 1 freezes (a service stops it with ptrace) before the update is
    kept: nobody pets the armed watchdog, the board is reset, and the bootloader starts the
    default slot, still the old one."""
    private, public = update.keygen(tmp_path / "keys")
    freezer = cc("freezer", FREEZER)
    hang = WATCHDOG + f'[[service]]\nname = "freezer"\nexec = "{freezer}"\nrestart = "never"\n'
    new = appliance(cc, tmp_path, "v2", public, False, built_init, toolchain, extra=hang)
    card = appliance(cc, tmp_path, "v1", public, False, built_init, toolchain)
    drop(card, {"u.bundle": bundle_of(new, private, tmp_path / "u.bundle", "v2")}, tmp_path)
    firmware_boot(
        card, False, ["update: version v2 written to slot 3", TRYBOOT], tmp_path / "1.log"
    )
    tried = firmware_boot(
        card,
        True,
        ["pinit: watchdog /dev/watchdog armed", "APP v2", "FREEZER froze PID 1"],
        tmp_path / "2.log",
        qemu_args=WATCHDOG_QEMU,
    )
    assert not any("update: slot 3 is healthy" in line for line in tried.lines)
    assert autoboot(card) == (2, 3)
    firmware_boot(
        card,
        False,
        ["update: version v2 was not kept: slot 2 runs on", "APP v1"],
        tmp_path / "3.log",
        then=None,
    )


def power_cut(card: Path, tryboot: bool, at: str, log: Path) -> None:
    """Boot until `at` shows on the console, then kill qemu: nothing synced after it."""
    with harness.plan(card, tryboot=tryboot) as plan:
        result = harness.run(
            plan, expect=[at], fail=("FATAL", "Kernel panic"), timeout=120, log=log
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])


def fsck_fat(card: Path, partition: int, work: Path) -> None:
    part = work / f"p{partition}.img"
    sdimage.extract_partition(card, partition, part)
    subprocess.run(["fsck.fat", "-n", str(part)], check=True, capture_output=True)


def test_a_power_cut_while_the_slot_is_written_or_tried_boots_the_old_slot(
    cc, built_init, toolchain, tmp_path
) -> None:
    private, public = update.keygen(tmp_path / "keys")
    new = appliance(cc, tmp_path, "v2", public, False, built_init, toolchain)
    card = appliance(cc, tmp_path, "v1", public, False, built_init, toolchain)
    drop(card, {"u.bundle": bundle_of(new, private, tmp_path / "u.bundle", "v2")}, tmp_path)
    # Cut while slot 3 is being written: the default slot boots, and writes it again.
    power_cut(card, False, "signature and hashes good", tmp_path / "cut1.log")
    assert autoboot(card) == (2, 3)
    firmware_boot(
        card, False, ["update: version v2 written to slot 3", TRYBOOT], tmp_path / "1.log"
    )
    # Cut during the try, before it is kept: the tryboot flag is gone, the old slot boots.
    power_cut(card, True, "APP v2", tmp_path / "cut2.log")
    assert autoboot(card) == (2, 3)
    back = firmware_boot(card, False, ["APP v1"], tmp_path / "2.log", then=None)
    assert not any("update: trying" in line for line in back.lines)
    for partition in (1, 2):
        fsck_fat(card, partition, tmp_path)


def test_a_bundle_is_fetched_over_http_tried_kept_and_not_fetched_again(
    cc, built_init, toolchain, tmp_path
) -> None:
    """[update] url: PID 1 resolves the URL's host name with the name server DHCP gave it, and
    fetches from a web server on the test's own LAN (a network namespace with a tap),
    conditionally; the version it keeps is not fetched and tried again."""
    private, public = update.keygen(tmp_path / "keys")
    url = "http://updates.test:8080/app.bundle"  # the LAN's name server: updates.test is HOST
    new = appliance(cc, tmp_path, "v2", public, False, built_init, toolchain, url)
    card = appliance(cc, tmp_path, "v1", public, False, built_init, toolchain, url)
    site = tmp_path / "site"
    site.mkdir()
    bundle_of(new, private, site / "app.bundle", "v2")
    with Lan(tmp_path) as lan:
        server = subprocess.Popen(
            ["ip", "netns", "exec", lan.netns, "python3", "-m", "http.server", "8080"]
            + ["--bind", HOST, "--directory", str(site)],
            stderr=(tmp_path / "http.log").open("wb"),
        )
        try:
            firmware_boot(
                card,
                False,
                [
                    f"update: updates.test is {HOST}",
                    f"update: fetched version v2 from {url}",
                    "update: version v2 written to slot 3",
                ],
                tmp_path / "1.log",
                lan=lan,
            )
            firmware_boot(
                card,
                True,
                ["APP v2", "update: slot 3 is healthy and kept"],
                tmp_path / "2.log",
                lan=lan,
            )
            again = firmware_boot(card, False, ["APP v2", POWER_DOWN], tmp_path / "3.log", lan=lan)
        finally:
            server.kill()
            server.wait()
    assert not any("written to slot" in line for line in again.lines)
    requests = (tmp_path / "http.log").read_text()
    assert '"GET /app.bundle HTTP/1.0" 200' in requests
    assert '"GET /app.bundle HTTP/1.0" 304' in requests  # asked again, conditionally


def push_when_listening(bundle: Path, to: str, stop: threading.Event) -> str:
    """`invoke update --to`'s own code, tried again until the guest listens (QEMU takes the
    connection at once and drops it while nothing listens in the guest)."""
    while True:
        try:
            return update.push(bundle, to, timeout=20)
        except BuildError as exc:
            if stop.is_set() or " refused " in str(exc):
                raise
        time.sleep(1)


def test_a_bundle_pushed_with_invoke_update_is_written_and_tried_a_forged_one_refused(
    cc, built_init, toolchain, tmp_path
) -> None:
    """[update] listen: the host pushes to the guest through QEMU's user network (restrict=on:
    the guest reaches nothing; a forwarded port of the host's loopback reaches it), the way
    `invoke update --to` does: first a forged bundle, then a good one. Both are taken (202: in
    the inbox); the inbox's check refuses the forged one and writes the good one."""
    private, public = update.keygen(tmp_path / "keys")
    forger = update.keygen(tmp_path / "forger")[0]
    new = appliance(cc, tmp_path, "v2", public, False, built_init, toolchain)
    card = appliance(
        cc, tmp_path, "v1", public, False, built_init, toolchain, listen=8080, stay=100
    )
    forged = bundle_of(new, forger, tmp_path / "forged.bundle", "v2")
    good = bundle_of(new, private, tmp_path / "good.bundle", "v2")
    with socket.socket() as probe:  # a free port on the host's loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answers: list[str] = []
    problems: list[BaseException] = []
    stop = threading.Event()

    def pusher() -> None:
        try:
            for bundle in (forged, good):
                answers.append(push_when_listening(bundle, f"127.0.0.1:{port}", stop))
        except BaseException as exc:  # reported by the test's thread
            problems.append(exc)

    thread = threading.Thread(target=pusher, daemon=True)
    thread.start()
    try:
        boot = firmware_boot(
            card,
            False,
            [
                "update: listening on port 8080 for pushed bundles",
                "update: pushed from 10.0.2.2",
                "update: /data/update/pushed-1.bundle refused: its signature is not the "
                "update key's",
                "update: pushed from 10.0.2.2",
                "update: /data/update/pushed-1.bundle: version v2, signature and hashes good",
                "update: version v2 written to slot 3",
                TRYBOOT,
            ],
            tmp_path / "push.log",
            nic=f"{harness.NIC_USER_RESTRICTED},hostfwd=tcp:127.0.0.1:{port}-:8080",
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not problems, problems
    assert [a.split(":", 1)[0] for a in answers] == ["202 Accepted", "202 Accepted"]
    assert "APP v1" in boot.lines
    assert autoboot(card) == (2, 3)  # written, not kept before it is tried
    initramfs = next(n for n in sdimage.fat_list(new, 2) if n.startswith("initramfs"))
    assert sdimage.fat_read(card, 3, initramfs) == sdimage.fat_read(new, 2, initramfs)
