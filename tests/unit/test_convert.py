"""builder/convert/initscript.py translating classic /init scripts, and builder/convert/rebuild.py detecting and
reading its inputs, on small trees made here (no QEMU, no toolchain)."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest
from test_kmod import MAGIC, RELEASE, fake_ko

from builder.config import BuildConfig, load_build_config
from builder.convert import initscript, rebuild, sources
from builder.formats import bootfs, compress, cpio, sdimage
from builder.qemu.seed import seed_init
from hostkit.errors import BuildError
from init.config import Data, Network

# The seed recipe's script, verbatim.
SEED = seed_init()

RICH = """#!/bin/sh
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
busybox mount -t proc none /proc 2>/dev/null || true
insmod /lib/modules/spi-bcm2835.ko polling_limit_us=30 \\
    debug=1
modprobe i2c-dev
modprobe -q -a snd-bcm2835 w1-gpio
mdev -s
echo /sbin/mdev > /proc/sys/kernel/hotplug
ifconfig eth0 up
hostname kiosk
mkdir -p /var/log /dev/shm
mount -t ext4 -o noatime,rw /dev/mmcblk0p2 /data
/usr/bin/logger-daemon --quiet &
if [ -e /data/reset ]; then
    rm -f /data/state
fi
APP=/app/kiosk
cd /data
exec $APP --port 8080 --verbose
echo unreachable
"""


def by_line(script: initscript.Script) -> dict[int, initscript.Outcome]:
    return {o.line: o for o in script.outcomes}


def test_seed_script() -> None:
    script = initscript.translate(SEED)
    lines = by_line(script)
    assert sorted(lines) == [3, 6, 7, 8, 9, 10, 12, 13, 14, 16], "comments and blanks are skipped"
    assert lines[3].kind == initscript.NOTED and "no busybox" in lines[3].what
    assert all(lines[n].kind == initscript.NOTED for n in (6, 7, 8, 9, 10, 12))
    assert lines[8].what == "pinit mounts /dev itself"
    assert script.entries == (
        cpio.CharDev("dev/null", 1, 3, 0o644),
        cpio.CharDev("dev/tty", 5, 0, 0o644),
    )
    assert [p.path for p in script.programs] == ["/rust-program"]
    assert lines[16].kind == initscript.TRANSLATED
    assert not [o for o in script.outcomes if o.kind == initscript.UNTRANSLATED]
    assert script.modules == () and script.data is None


def test_rich_script() -> None:
    script = initscript.translate(RICH)
    lines = by_line(script)
    assert [(m.name, m.params, m.path) for m in script.modules] == [
        ("spi_bcm2835", "polling_limit_us=30 debug=1", "/lib/modules/spi-bcm2835.ko"),
        ("i2c-dev", "", ""),
        ("snd-bcm2835", "", ""),
        ("w1-gpio", "", ""),
    ]
    assert lines[4].text.startswith("insmod") and "debug=1" in lines[4].text
    assert lines[8].kind == initscript.NOTED and "devtmpfs" in lines[8].what  # mdev -s
    assert lines[9].kind == initscript.NOTED and "hotplug" in lines[9].what
    assert script.hostname == "kiosk"
    assert cpio.Dir("var/log") in script.entries
    assert script.data == Data(
        device="/dev/mmcblk0p2", mountpoint="/data", fstype="ext4", options="noatime"
    )
    background, main = script.programs
    assert background.path == "/usr/bin/logger-daemon" and background.background
    assert main.path == "/app/kiosk" and main.args == ("--port", "8080", "--verbose")
    assert main.cwd == "/data" and ("PATH", "/sbin:/usr/sbin:/bin:/usr/bin") in main.env
    assert lines[20].kind == initscript.TRANSLATED
    assert lines[21].kind == initscript.NOTED and "never ran" in lines[21].what
    untranslated = {o.line: o.text for o in script.outcomes if o.kind == initscript.UNTRANSLATED}
    assert untranslated == {16: "rm -f /data/state"}
    assert lines[10].kind == initscript.NOTED and "[network]" in lines[10].what
    assert lines[15].kind == initscript.NOTED and "/data/reset exists" in lines[15].what
    report = "\n".join(initscript.report(script))
    assert "line 16: rm -f /data/state" in report.split("NOT translated")[1]


def test_mount_both_parts_of_an_or_list_are_reported() -> None:
    outcomes = initscript.translate("mount -t devtmpfs none /dev || mount -t tmpfs none /dev\n")
    assert [o.kind for o in outcomes.outcomes] == [initscript.NOTED, initscript.NOTED]


def test_without_exec_the_last_program_is_the_app() -> None:
    script = initscript.translate("mount -t proc proc /proc\n/usr/bin/setup\n/opt/app/run -x\n")
    assert [p.path for p in script.programs] == ["/opt/app/run"]
    lines = by_line(script)
    assert lines[2].kind == initscript.UNTRANSLATED and "waits for it" in lines[2].what
    assert lines[3].kind == initscript.TRANSLATED


@pytest.mark.parametrize(
    "line",
    [
        "exec switch_root /newroot /sbin/init",
        "exec setsid cttyhack sh",
        "exec $UNKNOWN",
        "echo 1 > /sys/class/gpio/export",
        "cat /proc/cmdline | grep quiet",
        "mount -a",
        "mount -t configfs none /sys/kernel/config",
        "modprobe -r dummy",
        "echo 'unbalanced",
        "dmesg -n 1",
        "while read x; do /app/x; done",
        "case $(cat /proc/cmdline) in *) /a;; esac",
        "for f in /etc/init.d/S*; do $f start; done",
        "if grep -q quiet /proc/cmdline; then /a; fi",
        "while true; do /app/x; /app/y; done",
    ],
)
def test_lines_left_for_a_person(line: str) -> None:
    script = initscript.translate(f"#!/bin/sh\n{line}\n")
    assert script.outcomes and all(o.kind == initscript.UNTRANSLATED for o in script.outcomes)
    assert all(o.line == 2 for o in script.outcomes)
    assert script.programs == () and script.modules == ()


def test_demote_moves_a_line_and_drops_its_program() -> None:
    script = initscript.demote(initscript.translate(SEED), 16, "/rust-program", "not there")
    assert script.programs == ()
    assert by_line(script)[16].kind == initscript.UNTRANSLATED


# ---- convert: detection


def classic(
    tmp_path: Path,
    init: str,
    extra: list[cpio.Entry] = (),
    name: str = "boot",
    kernel: bytes = b"\x7fELF kernel Linux version 6.1.0-56-arm64 (x) #1",
    busybox: bytes = b"\x7fELF" + b"BusyBox v1.36.1 (2024) multi-call binary",
) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    archive = cpio.write(
        [
            cpio.File("bin/busybox", busybox, 0o755),
            cpio.Symlink("bin/sh", "busybox"),
            cpio.CharDev("dev/console", 5, 1),
            cpio.File("init", init.encode(), 0o755),
            *extra,
        ]
    )
    (folder / "initramfs.gz").write_bytes(compress.compress(archive, "gzip"))
    (folder / "kernel8.img").write_bytes(kernel)
    (folder / "config.txt").write_text(
        bootfs.config_txt("kernel8.img", "initramfs.gz", ["dtoverlay=vc4-kms-v3d"])
    )
    (folder / "cmdline.txt").write_text("console=serial0,115200 console=tty1 rdinit=/init\n")
    (folder / "overlays").mkdir()
    (folder / "overlays" / "vc4-kms-v3d.dtbo").write_bytes(b"dtbo")
    return folder


def test_folder_without_config_txt(tmp_path: Path) -> None:
    folder = classic(tmp_path, SEED)
    (folder / "config.txt").unlink()
    with pytest.raises(BuildError, match=f"{folder}: no config.txt"):
        sources.detect(folder, tmp_path / "work")


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=f"{tmp_path / 'nope.img'}: no such"):
        sources.detect(tmp_path / "nope.img", tmp_path / "work")


def test_random_file(tmp_path: Path) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(
        BuildError, match=f"{path}: not a boot folder or a card image .*no MBR partition table"
    ):
        sources.detect(path, tmp_path / "work")


def test_unreadable_image(tmp_path: Path) -> None:
    # An MBR whose partition 1 runs past the end of the file: a truncated download.
    mbr = bytearray(512)
    mbr[446:462] = struct.pack("<B3xB3xII", 0, 0x0C, 8192, 1 << 20)
    mbr[510:512] = b"\x55\xaa"
    path = tmp_path / "truncated.img"
    path.write_bytes(bytes(mbr))
    with pytest.raises(BuildError, match=f"{path}: not a boot folder.*: partition 1 ends") as err:
        sources.detect(path, tmp_path / "work")
    assert "truncated or corrupt" in err.value.hint


def test_folder_with_a_root_partition_needs_the_card(tmp_path: Path) -> None:
    folder = classic(tmp_path, SEED)
    (folder / "cmdline.txt").write_text("console=tty1 root=PARTUUID=abcd-02 rootwait\n")
    with pytest.raises(BuildError, match="root=") as err:
        sources.detect(folder, tmp_path / "work")
    assert "card image" in err.value.hint


def test_classic_folder_and_card_are_detected(tmp_path: Path) -> None:
    folder = classic(tmp_path, SEED)
    src = sources.detect(folder, tmp_path / "work")
    assert (src.kind, src.kernel, src.initramfs) == (sources.FOLDER, "kernel8.img", "initramfs.gz")
    card = tmp_path / "card.img"
    sdimage.make_image(card, folder)
    src = sources.detect(card, tmp_path / "work")
    assert src.kind == sources.CARD and (src.boot / "overlays/vc4-kms-v3d.dtbo").is_file()
    assert src.cmdline == ("console=serial0,115200", "console=tty1", "rdinit=/init")


def test_root_partition_number() -> None:
    assert sources._root_partition(["root=PARTUUID=6c586e13-02"]) == 2
    assert sources._root_partition(["root=/dev/mmcblk0p3"]) == 3
    assert sources._root_partition(["root=/dev/sda5"]) == 5
    assert sources._root_partition(["quiet"]) == 2


def test_kernel_release_from_the_banner(tmp_path: Path) -> None:
    plain = tmp_path / "Image"
    plain.write_bytes(b"\0" * 64 + b"Linux version 6.6.31+rpt-rpi-v8 (gcc) #1 SMP\0")
    packed = tmp_path / "kernel8.img"
    packed.write_bytes(compress.compress(plain.read_bytes(), "gzip"))
    assert sources.kernel_release(plain) == sources.kernel_release(packed) == "6.6.31+rpt-rpi-v8"
    plain.write_bytes(b"no banner")
    assert sources.kernel_release(plain) == ""


def test_lookup_follows_symlinks() -> None:
    tree = {
        e.path: e
        for e in [
            cpio.Symlink("lib", "usr/lib"),
            cpio.Dir("usr/lib"),
            cpio.Symlink("usr/lib/ld.so", "/usr/lib/real/ld-2.36.so"),
            cpio.Symlink("bin/sh", "../bin/busybox"),
        ]
    }
    assert sources.lookup(tree, "/lib/ld.so") == "usr/lib/real/ld-2.36.so"
    assert sources.lookup(tree, "bin/sh") == "bin/busybox"


# ---- convert: reading the old initramfs


def test_from_initramfs_carries_the_app_and_modules(tmp_path: Path) -> None:
    app = b"\x7fELF" + b"\0" * 60 + b"the app"
    init = (
        "#!/bin/sh\nmount -t proc proc /proc\ninsmod /lib/modules/top.ko speed=3\n"
        "modprobe base\n/usr/bin/tool &\n/app/run.sh &\nexec /app/hello --fast\n"
    )
    folder = classic(
        tmp_path,
        init,
        [
            cpio.File("app/hello", app, 0o755),
            cpio.File("app/run.sh", b"#!/bin/sh\n", 0o755),
            cpio.Symlink("usr/bin/tool", "/bin/busybox"),
            cpio.File("etc/app.conf", b"x=1\n"),
            cpio.File("lib/modules/top.ko", fake_ko("top", "base")),
            cpio.File(
                f"lib/modules/{RELEASE}/kernel/lib/base.ko",
                fake_ko("base", aliases=("virtio:d00000001v*",)),
            ),
        ],
    )
    src = sources.detect(folder, tmp_path / "work")
    parts = sources.Parts(tmp_path / "work" / "modules", release=RELEASE)
    sources.from_initramfs(src, tmp_path / "work", parts, configured=False)

    [service] = parts.services
    assert (service.name, service.exec, service.args) == ("hello", "/app/hello", ("--fast",))
    assert parts.host_exec["hello"].read_bytes() == app
    assert [(m.name, m.params) for m in parts.modules] == [("top", "speed=3"), ("base", "")]
    dep = parts.modules_root / "lib/modules" / RELEASE / "modules.dep"
    assert dep.read_text() == "extra/top.ko: kernel/lib/base.ko\nkernel/lib/base.ko:\n"
    # coldplug finds a carried driver by its device's alias
    assert "alias virtio:d00000001v* base\n" in (dep.parent / "modules.alias").read_text()
    carried = {e.path for e in parts.extras}
    assert "etc/app.conf" in carried and "app/run.sh" in carried
    assert not carried & {
        "bin/busybox",
        "bin/sh",
        "usr/bin/tool",
        "init",
        "dev/console",
        "lib/modules/top.ko",
    }
    report = "\n".join(parts.report)
    assert "busybox applet" in report and "a script, and the new initramfs has no shell" in report
    assert parts.compression == "gzip"


def script_config(tmp_path: Path, init: str, toml: str = "") -> tuple[BuildConfig, list[str]]:
    folder = classic(tmp_path, init, [cpio.File("app/x", b"\x7fELF" + b"\0" * 60, 0o755)])
    src = sources.detect(folder, tmp_path / "work")
    parts = sources.Parts(tmp_path / "work" / "modules", release=RELEASE)
    sources.from_initramfs(src, tmp_path / "work", parts, configured=False)
    user = None
    if toml:
        (tmp_path / "pinit.toml").write_text(toml)
        user = load_build_config(tmp_path / "pinit.toml")
    return rebuild.build_config(src, parts, user), parts.report


def test_the_scripts_network_reaches_the_config(tmp_path: Path) -> None:
    cfg, report = script_config(
        tmp_path, "#!/bin/sh\nudhcpc -i eth0 -b\nntpd -p 10.0.0.1\nexec /app/x\n"
    )
    assert cfg.init.network == (Network(interface="eth0"),)
    assert cfg.init.time.servers == ("10.0.0.1",) and cfg.init.coldplug
    assert "network: eth0 DHCP; time servers 10.0.0.1 from /init" in report


def test_a_given_network_wins_over_the_scripts(tmp_path: Path) -> None:
    cfg, report = script_config(
        tmp_path,
        "#!/bin/sh\nudhcpc -i eth0 -b\nexec /app/x\n",
        '[network]\ninterface = "end0"\naddress = "10.0.0.2/24"\n',
    )
    assert cfg.init.network == (Network(interface="end0", address="10.0.0.2/24"),)
    assert report[-1].startswith("network: end0 10.0.0.2/24 from ")


def test_modules_for_another_kernel_are_refused(tmp_path: Path) -> None:
    other = MAGIC.replace(RELEASE, "5.10.0-old")
    folder = classic(
        tmp_path,
        "#!/bin/sh\ninsmod /m/dummy.ko\nexec /app/x\n",
        [cpio.File("m/dummy.ko", fake_ko("dummy", vermagic=other))],
    )
    src = sources.detect(folder, tmp_path / "work")
    parts = sources.Parts(tmp_path / "work" / "modules", release=RELEASE)
    with pytest.raises(BuildError, match="built for kernel 5.10.0-old, but the kernel is"):
        sources.from_initramfs(src, tmp_path / "work", parts, configured=False)


def test_non_script_init_needs_a_config(tmp_path: Path) -> None:
    folder = classic(tmp_path, "\x7fELF static init")
    src = sources.detect(folder, tmp_path / "work")
    parts = sources.Parts(tmp_path / "work" / "modules")
    with pytest.raises(BuildError, match="no shell script /init") as err:
        sources.from_initramfs(src, tmp_path / "work", parts, configured=False)
    assert "--config" in err.value.hint


def test_config_txt_and_cmdline_carried(tmp_path: Path) -> None:
    report: list[str] = []
    text = (
        "kernel=kernel8.img\narm_64bit=1\ninitramfs initramfs.gz followkernel\n"
        "dtparam=i2c_arm=on\n[pi4]\narm_boost=1\nauto_initramfs=1\n"
    )
    lines = rebuild.carried_config_txt(text, report)
    assert lines == ["dtparam=i2c_arm=on", "[pi4]", "arm_boost=1", "[all]", "upstream_kernel=0"]
    assert report == ["config.txt: dropped `auto_initramfs=1`"]
    words = "console=serial0,115200 root=PARTUUID=abcd-02 rootfstype=ext4 rootwait ro quiet"
    assert [w for w in words.split() if not rebuild.ROOT_WORDS.fullmatch(w)] == [
        "console=serial0,115200",
        "quiet",
    ]


def test_output_over_the_input_is_refused(tmp_path: Path) -> None:
    folder = classic(tmp_path, SEED, name="boot")
    with pytest.raises(BuildError, match="would overwrite it"):
        rebuild.build_from(folder, None, tmp_path, tmp_path / "init", None)  # type: ignore[arg-type]
    assert (folder / "initramfs.gz").is_file()


def test_symlinks_out_of_the_archive_are_refused(tmp_path: Path) -> None:
    tree = {
        e.path: e for e in [cpio.Symlink("x", "../../../../outside"), cpio.File("x/owned", b"no")]
    }
    with pytest.raises(BuildError, match="/x/owned: leads out of the archive"):
        sources._extract(tree, tmp_path / "old")
    assert not (tmp_path.parent / "outside").exists()


def test_an_old_mdev_conf_becomes_device_rules(tmp_path: Path) -> None:
    app = b"\x7fELF" + b"\0" * 60
    folder = classic(
        tmp_path,
        "#!/bin/sh\nmdev -s\nexec /app/hello\n",
        [
            cpio.File("app/hello", app, 0o755),
            cpio.File("etc/group", b"root:x:0:\ndialout:x:20:\n"),
            cpio.File("etc/mdev.conf", b"ttyUSB[0-9]* root:dialout 660\n(a|b) root:root 600\n"),
        ],
    )
    src = sources.detect(folder, tmp_path / "work")
    parts = sources.Parts(tmp_path / "work" / "modules", release=RELEASE)
    sources.from_initramfs(src, tmp_path / "work", parts, configured=False)
    assert [(d.kernel, d.gid, d.mode) for d in parts.devices] == [("ttyUSB*", 20, 0o660)]
    report = "\n".join(parts.report)
    assert "line 2 `(a|b) root:root 600`: NOT translated" in report
    assert "pinit's coldplug and hotplug" in report  # mdev -s


def test_a_card_with_nothing_to_run_is_refused(tmp_path: Path) -> None:
    """Only untranslatable lines and no --config: one error, and no outputs at all."""
    folder = classic(
        tmp_path,
        "#!/bin/sh\nmount -t proc proc /proc\n"
        'while read line; do /app/x "$line"; done </etc/jobs\n',
    )
    out = tmp_path / "out"
    with pytest.raises(
        BuildError, match=f"{folder}: nothing to run: its /init starts no program"
    ) as err:
        rebuild.build_from(folder, None, out, tmp_path / "init", None)  # type: ignore[arg-type]
    assert "--config" in err.value.hint
    assert not out.exists()


def test_a_switch_root_init_is_refused_with_what_it_does(tmp_path: Path) -> None:
    folder = classic(
        tmp_path,
        "#!/bin/sh\nmount -t proc proc /proc\n"
        "mount -t ext4 -o ro /dev/mmcblk0p2 /newroot\n"
        "exec switch_root /newroot /sbin/init\n",
    )
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BuildError, match="mounts /dev/mmcblk0p2 and switch_roots into it"):
        rebuild.build_from(folder, None, out, tmp_path / "init", None)  # type: ignore[arg-type]
    assert list(out.iterdir()) == []
    script = initscript.translate(
        "mount -t ext4 /dev/mmcblk0p2 /newroot\nexec switch_root /newroot /sbin/init\n"
    )
    assert script.data is None and script.switch_root == "/dev/mmcblk0p2"
    assert [o.kind for o in script.outcomes] == [initscript.UNTRANSLATED] * 2


# ---- the idioms read from the syntax tree


def test_a_restart_loop_is_restart_always_with_its_sleep_as_backoff() -> None:
    script = initscript.translate(
        "export A=1\nwhile true; do\n  /app/x --y\n  echo crashed\n  sleep 3\ndone\necho never\n"
    )
    [program] = script.programs
    assert (program.path, program.args, program.restart, program.backoff) == (
        "/app/x",
        ("--y",),
        "always",
        3.0,
    )
    assert program.env == (("A", "1"),) and not program.background
    lines = by_line(script)
    assert lines[3].kind == initscript.TRANSLATED and "restart" in lines[3].what
    assert lines[7].kind == initscript.NOTED and "never ran" in lines[7].what
    for head in ("while :; do /app/x; done", "until false; do /app/x; done"):
        [looped] = initscript.translate(head + "\n").programs
        assert looped.restart == "always" and looped.backoff == 0


def test_background_programs_and_wait_are_services() -> None:
    script = initscript.translate(
        "/app/a 1 &\n( cd /srv && exec ./b ) &\nwhile :; do /app/c; sleep 1; done &\nwait\n"
    )
    assert [(p.path, p.cwd, p.background, p.restart) for p in script.programs] == [
        ("/app/a", "/", True, ""),
        ("./b", "/srv", True, ""),
        ("/app/c", "/", True, "always"),
    ]
    assert by_line(script)[4].kind == initscript.NOTED


def test_env_cwd_and_assignments_before_exec() -> None:
    [p] = initscript.translate("cd /opt\nexec env -i B=2 /app/x\n").programs
    assert (p.env, p.cwd) == ((("B", "2"),), "/opt")
    [p] = initscript.translate("export A=1\nA=2 B=3 /app/x\n").programs
    assert p.env == (("A", "2"), ("B", "3"))


@pytest.mark.parametrize(
    "text",
    [
        "[ -b /dev/sda1 ] && mount -t ext4 /dev/sda1 /data\n",
        "if [ -e /dev/sda1 ]; then\n  mount -t ext4 /dev/sda1 /data\nfi\n",
        "test -b /dev/sda1 && mount -t ext4 /dev/sda1 /data\n",
        "mount -t ext4 /dev/sda1 /data || true\n",
    ],
)
def test_a_guarded_mount_is_an_optional_data_partition(text: str) -> None:
    script = initscript.translate(text + "exec /app/x\n")
    assert script.data == Data(
        device="/dev/sda1", mountpoint="/data", fstype="ext4", wait=0.0, required=False
    )


def test_a_waited_for_device_keeps_the_wait() -> None:
    script = initscript.translate(
        "while [ ! -b /dev/sda1 ]; do sleep 0.1; done\n"
        "mount -t ext4 /dev/sda1 /data\nuntil [ -e /dev/ttyUSB0 ]\n"
        "do sleep 1; done\nexec /app/x\n"
    )
    assert script.data == Data(device="/dev/sda1", mountpoint="/data", fstype="ext4")
    assert script.programs[0].wait_for == ("/dev/ttyUSB0",)


def test_modules_from_a_loop_keep_their_parameters() -> None:
    script = initscript.translate(
        "M=/lib/modules\nfor m in a b; do\n  insmod $M/$m.ko x=1\n"
        "done\nfor n in c d; do modprobe $n; done\nexec /app/x\n"
    )
    assert [(m.name, m.params, m.path) for m in script.modules] == [
        ("a", "x=1", "/lib/modules/a.ko"),
        ("b", "x=1", "/lib/modules/b.ko"),
        ("c", "", ""),
        ("d", "", ""),
    ]
    dropped = initscript.demote(script, 3, "/lib/modules/a.ko", "not there")
    assert [m.name for m in dropped.modules] == ["b", "c", "d"]


def network(text: str) -> tuple[initscript.Script, dict[int, initscript.Outcome]]:
    script = initscript.translate(text + "exec /app/x\n")
    return script, by_line(script)


def test_loopback_and_up_alone_are_noted() -> None:
    script, lines = network(
        "ifconfig lo 127.0.0.1 up\nip link set lo up\nifconfig eth0 up\nip link set dev eth0 up\n"
    )
    assert [lines[n].kind for n in (1, 2, 3, 4)] == [initscript.NOTED] * 4
    assert "loopback" in lines[1].what and "[network]" in lines[3].what
    assert script.network == ()


@pytest.mark.parametrize(
    ("command", "interface"),
    [
        ("udhcpc -i eth0 -b -q", "eth0"),
        ("udhcpc", "eth0"),
        ("udhcpc -t 5 -n -ieth1", "eth1"),
        ("udhcpc --interface=end0 -s /etc/udhcpc.script", "end0"),
        ("dhclient eth0", "eth0"),
        ("dhcpcd -q eth1", "eth1"),
    ],
)
def test_dhcp_commands_become_dhcp_on_the_interface(command: str, interface: str) -> None:
    script, lines = network(command + "\n")
    assert script.network == (Network(interface=interface),)
    assert lines[1].kind == initscript.TRANSLATED and f"DHCP on {interface}" in lines[1].what


def test_static_address_gateway_and_name_servers() -> None:
    script, lines = network(
        "ifconfig eth0 192.168.1.20 netmask 255.255.255.0 up\n"
        "route add default gw 192.168.1.1\n"
        'echo "nameserver 1.1.1.1" > /etc/resolv.conf\n'
        "echo nameserver 9.9.9.9 >> /etc/resolv.conf\n"
    )
    assert script.network == (
        Network(
            interface="eth0",
            address="192.168.1.20/24",
            gateway="192.168.1.1",
            dns=("1.1.1.1", "9.9.9.9"),
        ),
    )
    assert all(lines[n].kind == initscript.TRANSLATED for n in (1, 2, 3, 4))


def test_ip_address_and_route() -> None:
    script, _ = network(
        "ip link set eth0 up\nip addr add 10.1.2.3/16 dev eth0\n"
        "ip route add default via 10.1.0.1 dev eth0\n"
    )
    assert script.network == (Network(interface="eth0", address="10.1.2.3/16", gateway="10.1.0.1"),)


def test_ifconfig_without_netmask_takes_the_class_prefix() -> None:
    script, lines = network("ifconfig eth0 10.0.0.2\n")
    assert script.network[0].address == "10.0.0.2/8" and "class" in lines[1].what


def test_time_servers() -> None:
    script, lines = network(
        "udhcpc -i eth0\nntpd -n -q -p pool.ntp.org -p 10.0.0.1\n"
        "ntpdate -u 10.0.0.2\nrdate -s 10.0.0.3\n"
    )
    assert script.time.servers == ("pool.ntp.org", "10.0.0.1", "10.0.0.2", "10.0.0.3")
    assert "SNTP" in lines[4].what


@pytest.mark.parametrize(
    ("text", "bad", "why"),
    [
        ("ifconfig eth0 10.0.0.2 up\nudhcpc -i eth0\n", (1, 2), "both DHCP (line 2) and a static"),
        ("ifconfig eth0 10.0.0.2/24\nip addr add 10.0.0.3/24 dev eth0\n", (1, 2), "two addresses"),
        ("udhcpc\nroute add default gw 10.0.2.2\n", (2,), "without a static address on eth0"),
        ("route add default gw 10.0.2.2\n", (1,), "no one interface has a static address"),
        ("ifconfig eth0 10.0.0.2/24\nroute add default gw 10.9.0.1\n", (2,), "not in the network"),
        ('echo "nameserver 1.1.1.1" > /etc/resolv.conf\n', (1,), "no interface is configured"),
        ("ntpd -p pool.ntp.org\n", (1,), "nothing resolves it"),
        ("ntpd -n\n", (1,), "names no server"),
        ("udhcpc -i wlan0\n", (1,), "is a Wi-Fi interface and no wpa_supplicant line"),
        ("wpa_supplicant -B -i wlan0 -c /etc/wpa.conf\n", (1,), "not in the old initramfs"),
        ("iw dev wlan0 connect home\n", (1,), "write [[network.wifi]] by hand"),
        ("ip route add 10.0.0.0/8 via 10.0.0.1\n", (1,), "only the default route"),
        ("ifup eth0\n", (1,), "/etc/network/interfaces"),
        ("ifconfig eth0 10.0.0.300\n", (1,), "not an IPv4 address"),
    ],
)
def test_what_the_network_cannot_take_says_what_to_write(
    text: str, bad: tuple[int, ...], why: str
) -> None:
    script, lines = network(text)
    assert script.time.servers == ()
    assert {n.interface for n in script.network} <= {"eth0"}
    for line in bad:
        assert lines[line].kind == initscript.UNTRANSLATED and why in lines[line].what


def test_a_program_logged_through_a_pipe_is_the_service() -> None:
    script = initscript.translate("/app/x 2>&1 | logger -t app\n")
    assert [p.path for p in script.programs] == ["/app/x"]
    assert [o.kind for o in script.outcomes] == [initscript.TRANSLATED, initscript.NOTED]


def test_a_script_the_shell_cannot_parse_is_one_untranslated_line() -> None:
    script = initscript.translate("#!/bin/sh\nmount -t proc proc /proc\nif true; then\n")
    [outcome] = script.outcomes
    assert outcome.kind == initscript.UNTRANSLATED and "cannot parse" in outcome.what
    assert outcome.line == 4 and script.programs == ()


def test_an_initramfs_that_prepares_a_root_partition_is_refused_with_why(tmp_path: Path) -> None:
    folder = classic(tmp_path, "#!/bin/sh\nexec switch_root /newroot /sbin/init\n")
    (folder / "cmdline.txt").write_text("console=tty1 root=/dev/mmcblk0p2 rootwait\n")
    card = tmp_path / "card.img"
    sdimage.make_image(card, folder)
    with pytest.raises(
        BuildError,
        match="nothing says what to run: its initramfs.gz only prepares the root partition 2",
    ) as err:
        rebuild.build_from(card, None, tmp_path / "out", tmp_path / "init", None)  # type: ignore[arg-type]
    assert "--config" in err.value.hint and not (tmp_path / "out").exists()


def test_a_restart_loop_that_gives_up_points_at_crash_loop() -> None:
    script = initscript.translate(
        "n=0\nwhile true; do\n  /app/x\n  n=$((n+1))\n  [ $n -gt 5 ] && reboot\ndone\n"
    )
    [program] = script.programs
    assert program.restart == "always"
    reboot = [o for o in script.outcomes if o.text == "reboot"]
    assert reboot[0].kind == initscript.UNTRANSLATED and "crash_loop" in reboot[0].what


def test_a_test_guards_only_up_to_the_first_or() -> None:
    script = initscript.translate(
        "[ -b /dev/sda1 ] && mount -t ext4 /dev/sda1 /data || echo no data\nexec /app/x\n"
    )
    assert script.data is not None and not script.data.required
    script = initscript.translate("mount -t ext4 /dev/sda1 /data || echo 'no data'\nexec /app/x\n")
    assert script.data is not None and not script.data.required
    script = initscript.translate("mount -t ext4 /dev/sda1 /data && echo mounted\nexec /app/x\n")
    assert script.data is not None and script.data.required


def test_a_function_never_called_is_still_listed() -> None:
    script = initscript.translate("unused() {\n  /app/y\n}\nexec /app/x\n")
    assert by_line(script)[2].kind == initscript.NOTED
    assert "never calls" in by_line(script)[2].what
    assert [p.path for p in script.programs] == ["/app/x"]


def arm32(flags: int) -> bytes:
    """A static 32-bit ARM ELF header (no segments): EABI5, hard-float or not by `flags`."""
    ident = b"\x7fELF\x01\x01\x01" + bytes(9)
    return ident + struct.pack("<HHIIIIIHHHHHH", 2, 40, 1, 0x8000, 0, 0, flags, 52, 32, 0, 40, 0, 0)


ARMHF_BUSYBOX = arm32(0x05000400) + b"BusyBox v1.35.0 (Debian) multi-call binary"
ARMEL_BUSYBOX = arm32(0x05000200) + b"BusyBox v1.35.0 (Debian) multi-call binary"


def thirty_two_bit(tmp_path: Path, name: str, kernels: tuple[str, ...], busybox: bytes) -> Path:
    """A classic 32-bit folder: a zImage under each of `kernels`, an ARM busybox."""
    zimage = bytearray(0x40)
    zimage[0x24:0x28] = (0x016F2818).to_bytes(4, "little")
    folder = classic(tmp_path, SEED, [], name, busybox=busybox)
    (folder / "kernel8.img").unlink()
    for kernel in kernels:
        (folder / kernel).write_bytes(bytes(zimage))
    (folder / "config.txt").write_text("initramfs initramfs.gz followkernel\n")
    return folder


def board_of(folder: Path, work: Path, user: BuildConfig | None = None) -> str:
    src = sources.detect(folder, work)
    parts = sources.Parts(work / "modules")
    sources.from_initramfs(src, work, parts, False)
    return rebuild.card_board(src, parts, user)


def test_a_32_bit_card_is_told_by_its_kernel_and_busybox(tmp_path: Path) -> None:
    """kernel7.img is the Pi 2's ARMv7 (armhf), kernel.img the ARMv6 Pis' (armel, once pinit
    has that target), another name by the busybox's float ABI; the Pi 4's 32-bit kernel7l.img,
    and any card whose target pinit has no init for, is one line, before anything is written."""
    from elftools.elf.elffile import ELFFile

    from builder import boards
    from builder.formats.elf import debian_arch, inspect_elf

    zimage = bytearray(0x40)
    zimage[0x24:0x28] = (0x016F2818).to_bytes(4, "little")
    arm64 = bytearray(0x40)
    arm64[0x38:0x3C] = b"ARM\x64"
    assert sources.kernel_arch(bytes(zimage)) == "arm"
    assert sources.kernel_arch(compress.compress(bytes(arm64), "gzip")) == "arm64"
    assert sources.kernel_arch(b"x" * 100) == ""
    for blob, arch in ((ARMHF_BUSYBOX, "armhf"), (ARMEL_BUSYBOX, "armel")):
        (tmp_path / arch).write_bytes(blob)
        assert debian_arch(inspect_elf(tmp_path / arch)) == arch
        with (tmp_path / arch).open("rb") as f:
            assert ELFFile(f)["e_machine"] == "EM_ARM"

    # The Pi 2's kernel7.img wins over kernel.img on a card that has both.
    pi2 = thirty_two_bit(tmp_path, "pi2", ("kernel7.img", "kernel.img"), ARMEL_BUSYBOX)
    src = sources.detect(pi2, tmp_path / "w1")
    assert (src.kernel, src.kernel_arch) == ("kernel7.img", "arm")
    assert board_of(pi2, tmp_path / "w2") == "pi-2"
    # Another kernel name (a zImage under kernel8.img, named by config.txt): the busybox says.
    named = thirty_two_bit(tmp_path, "named", ("zImage",), ARMHF_BUSYBOX)
    (named / "config.txt").write_text("kernel=zImage\ninitramfs initramfs.gz followkernel\n")
    assert board_of(named, tmp_path / "w3") == "pi-2"
    # The ARMv6 Pis: their board once pinit has an armel target, else one line.
    armv6 = [b for b, x in boards.BOARDS.items() if x.target.default_kernel == "kernel.img"]
    for kernels, busybox in ((("kernel.img",), ARMEL_BUSYBOX), (("zImage",), ARMEL_BUSYBOX)):
        folder = thirty_two_bit(tmp_path, f"v6-{kernels[0]}", kernels, busybox)
        if kernels == ("zImage",):
            (folder / "config.txt").write_text("kernel=zImage\ninitramfs initramfs.gz\n")
        if armv6:
            assert board_of(folder, tmp_path / f"w-{kernels[0]}") == armv6[0]
            continue
        with pytest.raises(BuildError, match="ARMv6: a Pi Zero, Zero W or 1.*no init for it"):
            board_of(folder, tmp_path / f"w-{kernels[0]}")
    pi4 = thirty_two_bit(tmp_path, "pi4", ("kernel7l.img",), ARMHF_BUSYBOX)
    out = tmp_path / "out"
    with pytest.raises(BuildError, match=r"kernel7l.img; ARMv7 with LPAE.*no init") as refused:
        rebuild.build_from(pi4, None, out, tmp_path / "no-init", None)  # type: ignore[arg-type]
    assert "kernel7.img (armhf)" in (refused.value.hint or "")
    assert not out.exists(), "nothing is written"
    # A pinit.toml's board: a 32-bit one wins; a 64-bit one on a 32-bit card is refused.
    config = tmp_path / "pinit.toml"
    config.write_text('[image]\nboard = "pi-3"\n')
    with pytest.raises(BuildError, match="kernel7.img is 32-bit, but .* board pi-3 is a aarch64"):
        board_of(pi2, tmp_path / "w4", load_build_config(config))
    config.write_text('[image]\nboard = "pi-2"\n')
    assert board_of(pi4, tmp_path / "w5", load_build_config(config)) == "pi-2"


def test_a_32_bit_card_keeps_its_boot_files_and_gets_the_boards_console(tmp_path: Path) -> None:
    """The converted Pi 2 card: its own dtb names kept (a Pi kernel's bcm2709-…), no
    arm_64bit, the Pi 2's serial console once, the source's upstream_kernel=1 kept."""
    folder = thirty_two_bit(tmp_path, "pi2", ("kernel7.img",), ARMHF_BUSYBOX)
    (folder / "bcm2709-rpi-2-b.dtb").write_bytes(b"dtb")
    (folder / "config.txt").write_text("upstream_kernel=1\ninitramfs initramfs.gz followkernel\n")
    (folder / "cmdline.txt").write_text("console=ttyAMA0,115200 rdinit=/init quiet\n")
    work = tmp_path / "work"
    src = sources.detect(folder, work)
    parts = sources.Parts(work / "modules")
    sources.from_initramfs(src, work, parts, True)
    cfg = rebuild.build_config(src, parts, None, rebuild.card_board(src, parts, None))
    assert cfg.image.board == "pi-2" and parts.userland == "armhf"
    assert "board: pi-2 (armhf): kernel7.img is ARMv7" in parts.report
    assert "upstream_kernel=0" not in cfg.image.config_txt
    assert cfg.image.cmdline == ("quiet",)
    plat = rebuild.platform(src, "", parts.modules_root)
    assert plat.as_is and "bcm2709-rpi-2-b.dtb" in plat.boot_files


WPA_CONF = """ctrl_interface=/var/run/wpa_supplicant
country=gb
network={
    ssid="cafe"
    key_mgmt=NONE
}
network={
    ssid="home"
    psk="correct horse battery"
    priority=5
}
network={
    ssid="office"
    key_mgmt=WPA-EAP
    identity="me"
}
network={
    ssid="hidden"
    scan_ssid=1
    psk=f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e
}
"""


def test_wpa_supplicant_and_its_config_become_the_wireless_network() -> None:
    files = {"/etc/wpa_supplicant.conf": WPA_CONF}
    script = initscript.translate(
        "wpa_supplicant -B -Dnl80211 -iwlan0 -c /etc/wpa_supplicant.conf\n"
        "udhcpc -i wlan0\nexec /app/x\n",
        files.get,
    )
    lines = by_line(script)
    (net,) = script.network
    home = hashlib.pbkdf2_hmac("sha1", b"correct horse battery", b"home", 4096, 32).hex()
    assert net.interface == "wlan0" and net.country == "GB" and net.address == ""
    # priority first, then the file's order; the enterprise network is left out and said.
    assert [(w.ssid, w.psk, w.hidden) for w in net.wifi] == [
        ("home", home, False),
        ("cafe", "", False),
        ("hidden", "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e", True),
    ]
    assert lines[1].kind == initscript.TRANSLATED
    assert "Wi-Fi on wlan0 from /etc/wpa_supplicant.conf: home, cafe, hidden, country GB" in (
        lines[1].what
    )
    assert "office: WPA-EAP" in lines[1].what
    assert "correct horse" not in lines[1].what
    assert lines[2].kind == initscript.TRANSLATED and "DHCP on wlan0" in lines[2].what


def test_a_classic_image_with_wpa_supplicant_converts_to_its_wifi_networks(
    tmp_path: Path,
) -> None:
    """The whole --from reading: the config file comes out of the old initramfs."""
    folder = classic(
        tmp_path,
        "#!/bin/sh\nwpa_supplicant -B -i wlan0 -c /etc/wpa_supplicant/wpa.conf\n"
        "udhcpc -i wlan0 -b\nexec /app/probe\n",
        [
            cpio.Dir("etc/wpa_supplicant"),
            cpio.File("etc/wpa_supplicant/wpa.conf", WPA_CONF.encode(), 0o600),
            cpio.File("app/probe", b"\x7fELF" + b"\0" * 60, 0o755),
        ],
    )
    src = sources.detect(folder, tmp_path / "work")
    parts = sources.Parts(tmp_path / "work" / "modules")
    sources.from_initramfs(src, tmp_path / "work", parts, configured=False)
    (net,) = parts.network
    assert net.interface == "wlan0" and [w.ssid for w in net.wifi] == ["home", "cafe", "hidden"]
    assert any("Wi-Fi on wlan0 from /etc/wpa_supplicant/wpa.conf" in line for line in parts.report)
    # The old config (the passphrases) does not go onto the new card.
    assert "left behind: /etc/wpa_supplicant/wpa.conf (translated into [network])" in parts.report
    assert not any(getattr(e, "path", "").endswith("wpa.conf") for e in parts.extras)
