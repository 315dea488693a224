"""End to end: images built by the real builder, booted on the real Debian arm64 kernel in QEMU.

Each test builds an appliance with builder.image.build (the real init from `invoke build-init`,
real module closure, real cpio, real FAT/ext4 image) and decides from console lines. Apps other
than the demo are tiny static C programs made by the cross compiler (seconds, not a Nuitka run).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder.formats import cpio, sdimage
from builder.formats.compress import DEFAULT_METHOD
from builder.image import INITRAMFS_NAMES, build
from builder.qemu import harness
from hostkit.paths import REPO

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which("qemu-system-aarch64") is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]
POWER_DOWN = "reboot: Power down"

HEADERS = """
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
"""
CRASHER = HEADERS + 'int main(void) { printf("CRASHER running\\n"); fflush(stdout); return 3; }\n'
POWEROFF = (
    HEADERS
    + """
int main(void) {
    printf("ASKING-POWEROFF\\n"); fflush(stdout);
    sleep(1);
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""
)
DATA = (
    HEADERS
    + """
int main(void) {
    char buf[64] = {0};
    int fd = open("/data/counter", O_RDONLY);
    if (fd >= 0) {
        read(fd, buf, sizeof buf - 1);
        printf("DATA-SEEN %s\\n", buf);
    } else {
        fd = open("/data/counter", O_WRONLY | O_CREAT, 0644);
        write(fd, "boot1", 5);
        fsync(fd);
        printf("DATA-WRITTEN errno=%d\\n", fd < 0 ? errno : 0);
    }
    close(fd);
    fflush(stdout);
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""
)

GROW = (
    HEADERS
    + "#include <sys/statvfs.h>\n"
    + DATA.replace(
        """int main(void) {
    char buf[64] = {0};""",
        """int main(void) {
    char buf[64] = {0};
    struct statvfs fs;
    if (statvfs("/data", &fs) == 0)
        printf("DATA-MIB %llu\\n", (unsigned long long)fs.f_blocks * fs.f_frsize >> 20);""",
    )
)


def appliance(tmp: Path, toml: str, built_init: Path, toolchain) -> Path:
    config = tmp / "pinit.toml"
    config.write_text(toml)
    return build(config, tmp / "out", built_init, toolchain).boot


def data_appliance(
    cc,
    name: str,
    source: str,
    size: str,
    built_init: Path,
    toolchain,
    tmp: Path,
    wait: float = 10,
    data: str = "",
):
    """An appliance whose one service is the C program `source`, with a [data] of `size` (and
    the [data] lines `data`), built in `tmp`."""
    tmp.mkdir(parents=True, exist_ok=True)
    app = cc(name, source)
    config = tmp / "pinit.toml"
    config.write_text(f"""
[kernel]
modules = ["virtio_mmio", "virtio_blk", "crc32c", "ext4"]
[data]
size = "{size}"
wait = {wait}
{data}
[[service]]
name = "data"
exec = "{app}"
""")
    return build(config, tmp / "out", built_init, toolchain)


def copied_card(path: Path, size_mib: int, fat: str) -> Path:
    """A card made the seed's way: one FAT32 partition at 4 MiB (`fat`: sfdisk's size field,
    "" to the card's end), the boot folder's files on it not needed (QEMU loads the kernel)."""
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    subprocess.run(["sfdisk", "--quiet", str(path)], input=f"8192,{fat},c\n".encode(), check=True)
    subprocess.run(
        ["mkfs.vfat", "-F", "32", "--offset=8192", str(path), str(65536)],
        check=True,
        capture_output=True,
    )
    return path


def boot(
    source: Path,
    expect: list[str],
    *,
    machine: str = "virt",
    fail: tuple[str, ...] = (),
    timeout: float = 30,
    disk: Path | None = None,
    then: str | None = None,
    log: Path | None = None,
    also: tuple[str, ...] = (),
) -> harness.BootResult:
    with harness.plan(source, machine, disk=disk) as plan:
        return harness.run(
            plan, expect=expect, fail=list(fail), timeout=timeout, then=then, log=log, also=also
        )


@pytest.fixture(scope="module")
def default_image(built_init, toolchain, tmp_path_factory) -> Path:
    """The repo's own pinit.toml: the demo app, module dummy."""
    out = tmp_path_factory.mktemp("default")
    return build(REPO / "pinit.toml", out, built_init, toolchain).image


def test_default_image_boots_to_hello_world_with_its_module(default_image, tmp_path) -> None:
    result = boot(
        default_image,
        [
            "pinit: started as PID 1",
            "pinit: mounted /proc",
            "pinit: mounted /sys",
            "pinit: mounted /dev",
            "pinit: loaded module dummy",
            "pinit: starting hello (pid ",
            "pinit: boot ",
        ],
        # Started early (the module loaded by the C prologue): its lines come as they come.
        also=("Hello world!", "hello: dummy module loaded: True"),
        fail=("FATAL",),
        log=tmp_path / "console.log",
    )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


def test_default_image_boots_on_raspi3b(default_image, tmp_path) -> None:
    result = boot(
        default_image,
        ["pinit: loaded module dummy"],
        also=("Hello world!",),
        machine="raspi3b",
        fail=("FATAL",),
        timeout=45,
        log=tmp_path / "console.log",
    )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


def test_crashing_service_backs_off_then_the_crash_loop_policy_powers_off(
    cc, built_init, toolchain, tmp_path
) -> None:
    app = cc("crasher", CRASHER)
    boot_dir = appliance(
        tmp_path,
        f"""
[[service]]
name = "crasher"
exec = "{app}"
restart = "always"
backoff_start = 0.2
backoff_max = 0.8
crash_loop = {{ count = 4, window = 60, action = "poweroff" }}
""",
        built_init,
        toolchain,
    )
    result = boot(
        boot_dir,
        [
            "CRASHER running",
            "pinit: crasher exited with status 3; restart 1 in 0.2 s",
            "pinit: crasher exited with status 3; restart 2 in 0.4 s",
            "pinit: crasher exited with status 3; restart 3 in 0.8 s",
            "pinit: crash loop: crasher failed 4 times in",
            POWER_DOWN,
        ],
        fail=("FATAL",),
    )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    assert sum("CRASHER running" in line for line in result.lines) == 4


def test_sigusr2_to_pid1_stops_services_and_powers_off(cc, built_init, toolchain, tmp_path) -> None:
    app = cc("poweroff", POWEROFF)
    boot_dir = appliance(
        tmp_path,
        f"""
[kernel]
modules = ["dummy"]
[[service]]
name = "asker"
exec = "{app}"
""",
        built_init,
        toolchain,
    )
    result = boot(
        boot_dir,
        [
            "pinit: loaded module dummy",
            "pinit: got SIGUSR2: poweroff",
            "pinit: stopping asker",
            "pinit: synced file systems",
            POWER_DOWN,
        ],
        also=("ASKING-POWEROFF",),
        fail=("FATAL",),
    )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


def test_missing_app_is_reported_and_the_policy_applies_without_a_panic(
    cc, built_init, toolchain, tmp_path
) -> None:
    app = cc("ghost", CRASHER)
    boot_dir = appliance(
        tmp_path,
        f"""
[init]
on_failure = "poweroff"
[[service]]
name = "ghost"
exec = "{app}"
backoff_start = 0.1
crash_loop = {{ count = 2, window = 60, action = "poweroff" }}
""",
        built_init,
        toolchain,
    )
    # Take the app out of the built initramfs, as if the card had been damaged.
    initramfs = boot_dir / INITRAMFS_NAMES[DEFAULT_METHOD]
    from builder.formats import compress

    entries = [e for e in cpio.read_initramfs(initramfs.read_bytes()) if e.path != "app/ghost"]
    initramfs.write_bytes(compress.compress(cpio.write(entries), DEFAULT_METHOD))
    result = boot(
        boot_dir,
        [
            "pinit: ghost: cannot execute /app/ghost: ENOENT",
            "pinit: crash loop: ghost failed 2 times",
            POWER_DOWN,
        ],
    )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


def test_unreadable_config_is_fatal_with_the_failure_policy(
    built_init, toolchain, tmp_path
) -> None:
    boot_dir = appliance(tmp_path, '[init]\nhostname = "x"\n', built_init, toolchain)
    initramfs = boot_dir / INITRAMFS_NAMES[DEFAULT_METHOD]
    from builder.formats import compress

    entries = [
        e if e.path != "etc/pinit.json" else cpio.File("etc/pinit.json", b"{not json")
        for e in cpio.read_initramfs(initramfs.read_bytes())
    ]
    initramfs.write_bytes(compress.compress(cpio.write(entries), DEFAULT_METHOD))
    cmdline = boot_dir / "cmdline.txt"
    cmdline.write_text(
        cmdline.read_text().strip() + " pinit.on_failure=poweroff pinit.failure_delay=0\n"
    )
    result = boot(boot_dir, ["pinit: FATAL: ", POWER_DOWN])
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    assert any("pinit.json" in line for line in result.lines if "FATAL" in line)


def test_data_partition_survives_a_clean_power_off(cc, built_init, toolchain, tmp_path) -> None:
    image = data_appliance(cc, "data", DATA, "16MiB", built_init, toolchain, tmp_path).image
    first = boot(
        image,
        ["pinit: mounted /data", "DATA-WRITTEN errno=0", "pinit: unmounted /data", POWER_DOWN],
        fail=("FATAL",),
    )
    assert first.ok, f"{first.reason}\n" + "\n".join(first.lines[-30:])
    second = boot(image, ["pinit: mounted /data", "DATA-SEEN boot1", POWER_DOWN], fail=("FATAL",))
    assert second.ok, f"{second.reason}\n" + "\n".join(second.lines[-30:])


def damage(image: Path, offset: int, data: bytes) -> None:
    """Write `data` at `offset` of the card's data partition (partition 2), as a worn card."""
    part = next(p for p in sdimage.read_partitions(image) if p.index == 2)
    with open(image, "r+b") as f:
        f.seek(part.start + offset)
        f.write(data)


def test_a_damaged_data_partition_is_repaired_or_left_out_never_a_reboot_loop(
    cc, built_init, toolchain, tmp_path
) -> None:
    """One appliance, three boots: the data written; the primary superblock zeroed, found by
    a backup's label, repaired by e2fsck with nothing lost; a feature no e2fsck or kernel
    knows set, which nothing can repair: the boot goes on without /data (on_damage's default)."""
    # 160 MiB: with 4 KiB blocks the first backup superblock is at 128 MiB
    image = data_appliance(cc, "data", DATA, "160MiB", built_init, toolchain, tmp_path).image
    first = boot(
        image,
        [
            "pinit: LABEL=pinit-data: clean (e2fsck status 0)",
            "pinit: mounted /data",
            "DATA-WRITTEN errno=0",
            POWER_DOWN,
        ],
        fail=("FATAL",),
    )
    assert first.ok, f"{first.reason}\n" + "\n".join(first.lines[-30:])
    damage(image, 1024, bytes(1024))  # the primary superblock
    second = boot(
        image,
        [
            "pinit: checking LABEL=pinit-data",
            "e2fsck: ",
            "pinit: LABEL=pinit-data: repaired",
            "pinit: mounted /data",
            "DATA-SEEN boot1",
            POWER_DOWN,
        ],
        fail=("FATAL",),
        timeout=60,
    )
    assert second.ok, f"{second.reason}\n" + "\n".join(second.lines[-40:])
    # A feature bit no e2fsck or kernel knows (with the superblock's checksum made right):
    # e2fsck stops ("Get a newer version"), mount(2) refuses.
    part = tmp_path / "data.img"
    sdimage.extract_partition(image, 2, part)
    incompat = int.from_bytes(part.read_bytes()[1024 + 0x60 : 1024 + 0x64], "little")
    subprocess.run(
        ["debugfs", "-w", "-R", f"ssv feature_incompat {incompat | 0x80000:#x}", str(part)],
        check=True,
        capture_output=True,
    )
    damage(image, 0, part.read_bytes())
    third = boot(
        image,
        ["pinit: LABEL=pinit-data: damaged", "going on without it", "DATA-WRITTEN", POWER_DOWN],
        fail=("FATAL",),
        timeout=60,
    )
    assert third.ok, f"{third.reason}\n" + "\n".join(third.lines[-40:])
    # The same card under an appliance whose pinit.toml asks for a format on damage.
    formats = data_appliance(
        cc,
        "data",
        DATA,
        "160MiB",
        built_init,
        toolchain,
        tmp_path / "format",
        data='on_damage = "format"',
    ).boot
    fourth = boot(
        formats,
        [
            'formatting it (on_damage = "format"): what it held is lost',
            "pinit: mounted /data",
            "pinit: grew the file system on /data",
            "DATA-WRITTEN errno=0",
            POWER_DOWN,
        ],
        disk=image,
        fail=("FATAL",),
        timeout=60,
    )
    assert fourth.ok, f"{fourth.reason}\n" + "\n".join(fourth.lines[-40:])


def test_a_flashed_card_grows_its_data_partition_even_across_power_cuts(
    cc, built_init, toolchain, tmp_path
) -> None:
    """sdcard.img on a card 240 MiB larger: the power is cut as the partition table is
    written, then as the file system grows; the next boot completes it, nothing is lost."""
    image = data_appliance(cc, "grow", GROW, "16MiB", built_init, toolchain, tmp_path).image
    card = tmp_path / "card.img"
    shutil.copy(image, card)
    with open(card, "r+b") as f:
        f.truncate(card.stat().st_size + (240 << 20))
    for cut_at in ("pinit: growing partition 2 of vda", "pinit: growing the file system on /data"):
        cut = boot(card, [cut_at], fail=("FATAL",))  # the harness kills QEMU at once: a cut
        assert cut.ok, f"{cut.reason}\n" + "\n".join(cut.lines[-30:])
    grown = boot(
        card,
        ["pinit: mounted /data", "DATA-MIB ", "DATA-WRITTEN errno=0", POWER_DOWN],
        fail=("FATAL", "damaged"),
        timeout=60,
    )
    assert grown.ok, f"{grown.reason}\n" + "\n".join(grown.lines[-40:])
    size = next(int(line.split()[1]) for line in grown.lines if line.startswith("DATA-MIB "))
    assert size > 200, grown.lines
    again = boot(
        card, ["pinit: mounted /data", "DATA-SEEN boot1", POWER_DOWN], fail=("FATAL", "growing")
    )
    assert again.ok, f"{again.reason}\n" + "\n".join(again.lines[-30:])


def test_a_card_made_by_copying_the_boot_folder_gets_its_data_partition(
    cc, built_init, toolchain, tmp_path
) -> None:
    """The seed's way: a 320 MiB card with one FAT partition. The first boot makes the data
    partition from the image's seed (the power cut once while it does), grows it to fill the
    card; the next boot finds what was written."""
    boot_dir = data_appliance(
        cc, "grow", GROW, "16MiB", built_init, toolchain, tmp_path, wait=3
    ).boot
    card = copied_card(tmp_path / "card.img", 320, "131072")
    cut = boot(
        boot_dir,
        ["pinit: making the data partition (first boot): partition 2 of vda"],
        disk=card,
        fail=("FATAL",),
    )
    assert cut.ok, f"{cut.reason}\n" + "\n".join(cut.lines[-30:])
    made = boot(
        boot_dir,
        [
            "pinit: checking LABEL=pinit-data",
            "pinit: mounted /data",
            "pinit: grew the file system on /data",
            "DATA-MIB ",
            "DATA-WRITTEN errno=0",
            POWER_DOWN,
        ],
        disk=card,
        fail=("FATAL", "damaged"),
        timeout=90,
    )
    assert made.ok, f"{made.reason}\n" + "\n".join(made.lines[-40:])
    size = next(int(line.split()[1]) for line in made.lines if line.startswith("DATA-MIB "))
    assert size > 200, made.lines
    again = boot(
        boot_dir,
        ["pinit: mounted /data", "DATA-SEEN boot1", POWER_DOWN],
        disk=card,
        fail=("FATAL", "making the data partition", "growing"),
    )
    assert again.ok, f"{again.reason}\n" + "\n".join(again.lines[-30:])
    table = sdimage.read_partitions(card)  # the FAT partition as it was, then the new one
    assert [(p.index, p.type, p.start) for p in table] == [
        (1, 0x0C, 8192 * 512),
        (2, 0x83, 139264 * 512),
    ]
    assert table[1].start + table[1].size == card.stat().st_size
    sdimage.extract_partition(card, 1, tmp_path / "fat.img")
    subprocess.run(["fsck.fat", "-n", str(tmp_path / "fat.img")], check=True, capture_output=True)


def test_a_copied_card_without_room_keeps_its_data_in_a_file_on_the_fat_partition(
    cc, built_init, toolchain, tmp_path
) -> None:
    """The seed's way on a card whose FAT partition fills it: the data lives in a file on it,
    on a loop device; the FAT partition is left clean and the data is there the next boot."""
    boot_dir = data_appliance(
        cc, "grow", GROW, "32MiB", built_init, toolchain, tmp_path, wait=3
    ).boot
    card = copied_card(tmp_path / "card.img", 68, "")
    made = boot(
        boot_dir,
        [
            "pinit: making the data file (first boot): pinit-data.img on vda1",
            "pinit: the data is in pinit-data.img on vda1 (loop0)",
            "pinit: mounted /data from /dev/loop0",
            "DATA-MIB ",
            "DATA-WRITTEN errno=0",
            POWER_DOWN,
        ],
        disk=card,
        fail=("FATAL", "damaged"),
        timeout=90,
    )
    assert made.ok, f"{made.reason}\n" + "\n".join(made.lines[-40:])
    size = next(int(line.split()[1]) for line in made.lines if line.startswith("DATA-MIB "))
    assert 24 <= size <= 32, made.lines  # 32 MiB less the journal and metadata
    again = boot(
        boot_dir,
        ["pinit: the data is in pinit-data.img on vda1 (loop0)", "DATA-SEEN boot1", POWER_DOWN],
        disk=card,
        fail=("FATAL", "making the data file"),
    )
    assert again.ok, f"{again.reason}\n" + "\n".join(again.lines[-30:])
    assert [p.index for p in sdimage.read_partitions(card)] == [1]  # no partition was made
    assert "pinit-data.img" in sdimage.fat_list(card, 1)
    sdimage.extract_partition(card, 1, tmp_path / "fat.img")  # unmounted cleanly: no repair
    subprocess.run(["fsck.fat", "-n", str(tmp_path / "fat.img")], check=True, capture_output=True)


@pytest.mark.parametrize("early", [True, False])
def test_early_start_runs_the_app_before_python_and_is_adopted(
    early, cc, built_init, toolchain, tmp_path
) -> None:
    app = cc("poweroff", POWEROFF)
    boot_dir = appliance(
        tmp_path,
        f"""
[init]
early_start = {str(early).lower()}
[[service]]
name = "asker"
exec = "{app}"
""",
        built_init,
        toolchain,
    )
    result = boot(
        boot_dir,
        [
            "pinit: starting asker (pid ",
            "pinit: got SIGUSR2: poweroff",
            "pinit: stopping asker",
            POWER_DOWN,
        ],
        fail=("FATAL",),
    )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    line = next(x for x in result.lines if x.startswith("pinit: starting asker"))
    assert ("started early" in line) == early
    app_line = result.lines.index("ASKING-POWEROFF")
    init_line = next(i for i, x in enumerate(result.lines) if "pinit: started as PID 1" in x)
    # Early, the app writes to the console before the Python init has printed a word.
    assert (app_line < init_line) == early
    # Early: /sys, /dev and /dev/pts were mounted by the C prologue and are not mounted twice.
    assert any("mounted /dev (early)" in x for x in result.lines) == early


MODULE_SEER = (
    HEADERS
    + """
int main(void) {
    char cg[256] = {0};
    int fd = open("/proc/self/cgroup", O_RDONLY);
    if (fd >= 0) read(fd, cg, sizeof cg - 1);
    printf("SEER dummy=%d cgroup=%s", access("/sys/module/dummy", F_OK) == 0, cg);
    fflush(stdout);
    sleep(1);
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""
)


@pytest.mark.parametrize("params", ["", "numdummies=x"])
def test_early_start_loads_the_modules_first_and_starts_the_app_in_its_cgroup(
    params, cc, built_init, toolchain, tmp_path
) -> None:
    """The seed's job: the C prologue loads `[kernel] modules` (a module the app needs is
    there at its first instruction), clones the app into its own cgroup, and coldplug runs in
    the Python init beside it. A module that does not load (a bad parameter) leaves the boot
    to the Python init: it names the failure and starts the app itself."""
    app = cc("seer", MODULE_SEER)
    boot_dir = appliance(
        tmp_path,
        f"""
[kernel]
modules = ["dummy"]
params = {{ dummy = "{params}" }}
available = ["virtio_mmio"]
[[service]]
name = "seer"
exec = "{app}"
""",
        built_init,
        toolchain,
    )
    early = not params
    seer = f"SEER dummy={int(early)} cgroup=0::/seer"
    coldplug = "pinit: loaded module virtio_mmio (coldplug)"
    if early:  # the app first, before the Python init has said a word
        expect = [seer, "pinit: loaded module dummy (before the interpreter)", coldplug]
    else:
        expect = ["pinit: cannot load module dummy: EINVAL", coldplug, seer]
    expect.append(POWER_DOWN)
    result = boot(boot_dir, expect, fail=("FATAL",))
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    starting = next(x for x in result.lines if x.startswith("pinit: starting seer"))
    assert ("started early" in starting) == early
    app_line = next(i for i, x in enumerate(result.lines) if x.startswith("SEER"))
    init_line = next(i for i, x in enumerate(result.lines) if "pinit: started as PID 1" in x)
    assert (app_line < init_line) == early


EXEC_APP = (
    HEADERS
    + """
#include <sys/reboot.h>
int main(void) {
    printf("EXEC-APP pid %d\\n", (int)getpid());
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    return 1;
}
"""
)
DYNAMIC_APP = (
    HEADERS
    + """
#include <math.h>
int main(int argc, char **argv) {
    printf("DYNAMIC-APP %s %.3f\\n", argc > 1 ? argv[1] : "-", cbrt(argc > 1 ? atof(argv[1]) : 0));
    fflush(stdout);
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""
)


def test_exec_mode_replaces_the_init_with_the_app(cc, built_init, toolchain, tmp_path) -> None:
    app = cc("execapp", EXEC_APP)
    boot_dir = appliance(
        tmp_path,
        f"""
[init]
mode = "exec"
[kernel]
modules = ["dummy"]
[[service]]
name = "app"
exec = "{app}"
""",
        built_init,
        toolchain,
    )
    result = boot(
        boot_dir,
        ["pinit: loaded module dummy", "pinit: starting app (pid 1)", "EXEC-APP pid 1", POWER_DOWN],
        fail=("FATAL",),
    )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


def test_dynamic_app_is_bundled_with_its_loader_and_libraries(
    toolchain, built_init, tmp_path
) -> None:
    src = tmp_path / "dyn.c"
    src.write_text(DYNAMIC_APP)
    app = tmp_path / "dyn"
    subprocess.run(
        [
            "aarch64-linux-gnu-gcc",
            f"--sysroot={toolchain.sysroot}",
            "-O2",
            "-o",
            str(app),
            str(src),
            "-lm",
        ],
        check=True,
    )
    boot_dir = appliance(
        tmp_path,
        f"""
[[service]]
name = "dyn"
exec = "{app}"
args = ["8"]
""",
        built_init,
        toolchain,
    )
    names = {
        e.path
        for e in cpio.read_initramfs((boot_dir / INITRAMFS_NAMES[DEFAULT_METHOD]).read_bytes())
    }
    assert {
        "lib/ld-linux-aarch64.so.1",
        "lib/aarch64-linux-gnu/libc.so.6",
        "lib/aarch64-linux-gnu/libm.so.6",
    } <= names
    result = boot(boot_dir, ["DYNAMIC-APP 8 2.000", POWER_DOWN], fail=("FATAL",))
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


def test_two_builds_give_identical_boot_folders_and_card_images(
    built_init, toolchain, tmp_path
) -> None:
    import time

    first = build(REPO / "pinit.toml", tmp_path / "a", built_init, toolchain)
    time.sleep(1.1)
    second = build(REPO / "pinit.toml", tmp_path / "b", built_init, toolchain)
    files_a = sorted(p.relative_to(first.boot) for p in first.boot.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(second.boot) for p in second.boot.rglob("*") if p.is_file())
    assert files_a == files_b and files_a
    for rel in files_a:
        assert (first.boot / rel).read_bytes() == (second.boot / rel).read_bytes(), rel
    assert first.image.read_bytes() == second.image.read_bytes()


def test_shell_on_the_console_is_a_python_repl(cc, built_init, toolchain, tmp_path) -> None:
    app = cc("crasher", CRASHER)
    boot_dir = appliance(
        tmp_path,
        f"""
[[service]]
name = "never"
exec = "{app}"
""",
        built_init,
        toolchain,
    )
    with harness.plan(boot_dir, "virt", ["pinit.shell=1"]) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: starting a Python shell on the console",
                "pinit shell:",
                "42",
                "pinit: shell ended",
                "pinit: rebooting",
            ],
            answers=[("pinit shell:", "print(6 * 7)\n"), ("42", "raise SystemExit\n")],
            fail=("FATAL",),
            timeout=40,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    # The services never started: the person at the console comes first.
    assert not any("CRASHER running" in line for line in result.lines)


def test_boot_timeline_from_a_real_boot_is_drawn(default_image, tmp_path) -> None:
    from builder.qemu.timeline import render_from_console

    with harness.plan(default_image, "virt", ["pinit.timeline=1"]) as plan:
        result = harness.run(
            plan,
            expect=["pinit: timeline {"],
            fail=("FATAL",),
            timeout=30,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    svg = render_from_console(result.lines, tmp_path / "timeline.svg").read_text()
    for step in (
        "mounts: mount proc on /proc",
        "modules: dummy",
        "services: start",
        "app started",
        "Python main",
    ):
        assert step in svg, step


MARKER = (
    HEADERS
    + """
int main(void) {
    int fd = open("/run/leftover-mark", O_RDONLY);
    if (fd < 0) {
        fd = open("/run/leftover-mark", O_WRONLY | O_CREAT, 0644);
        printf("MARK-WRITTEN %d\\n", fd >= 0); fflush(stdout);
        return 1;
    }
    printf("MARK-SEEN\\n"); fflush(stdout);
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""
)


def test_early_start_mounts_everything_before_the_service_starts(
    cc, built_init, toolchain, tmp_path
) -> None:
    """The first run, started by the C prologue, writes /run; its restart, started by the
    Python init, still finds it: nothing was mounted over the service's files in between."""
    app = cc("marker", MARKER)
    boot_dir = appliance(
        tmp_path,
        f"""
[[service]]
name = "marker"
exec = "{app}"
restart = "always"
backoff_start = 0.2
""",
        built_init,
        toolchain,
    )
    result = boot(
        boot_dir,
        [
            "MARK-WRITTEN 1",
            "pinit: mounted /run (early)",
            "pinit: mounted /tmp (early)",
            "pinit: starting marker (pid",
            "MARK-SEEN",
            POWER_DOWN,
        ],
        fail=("FATAL",),
    )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    assert any("started early" in line for line in result.lines)
