"""Boot a Pi boot folder or SD-card image in QEMU (qemu-system-aarch64, or qemu-system-arm for
the 32-bit Pi 2 B), the way the Pi firmware would.

QEMU does not run the Pi firmware, so plan() reads config.txt and cmdline.txt itself and turns
`kernel=`, `initramfs FILE followkernel`, `device_tree=` and the command line into -kernel,
-initrd, -dtb and -append. run() then decides pass or fail from sentinel lines on the serial
console: qemu's exit status cannot tell a kernel panic (panic=-1 with -no-reboot) from a
power-off, so the console is the only witness, and qemu's process group is always killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from builder.formats import bootfs, sdimage
from hostkit.errors import BuildError
from hostkit.output import write_atomic
from hostkit.paths import BUILD
from hostkit.run import log as note
from hostkit.run import run as run_tool
from toolchain.target import AARCH64, ARMEL, ARMHF, Target

QEMU = AARCH64.qemu  # the default machines' (each Machine's target names its own)

DEFAULT_LOG = BUILD / "boot.log"
# Always fatal: "Kernel panic - not syncing" and its "---[ end Kernel panic" trailer.
ALWAYS_FAIL = ("Kernel panic",)
# The Pi's own serial console= words; each machine replaces them with the UART it wires to stdio.
_SERIAL_CONSOLE = re.compile(r"console=(ttyS\d+|ttyAMA\d+|serial\d+)(,\S*)?")
# printk's "[    2.035125] " prefix; the 8250 port can emit a stray byte before the first one.
_PRINTK_TIME = re.compile(r"^[\x00\ufffd]*\[\s*(\d+\.\d+)\]")
_KILL_WAIT = 3.0


@dataclass(frozen=True)
class Machine:
    name: str
    board: str  # the config.txt model section ([pi3], [pi4]) the firmware would apply
    console: str  # console= device put last on the command line
    args: tuple[str, ...]
    needs_dtb: bool
    # The board's own device tree, where the firmware (upstream_kernel=1) and the kernel
    # package put it; the first name is the one an error names.
    dtbs: tuple[str, ...] = ()
    target: Target = AARCH64  # which kernel it runs: the QEMU program, the default kernel file
    # Kernel command-line words for what QEMU's model lacks and the Pi has (none on the Pi).
    quirks: tuple[str, ...] = ()
    # -M virt's virtio-mmio: a NIC, a virtio disk (and its write log); the others' disk is SD.
    virtio: bool = False


MACHINES = {
    # The fast default. QEMU 7.2 has no Pi 4 model: virt stands in for the Pi 4, so [pi4]
    # sections apply; it builds its own device tree, so device_tree= is ignored. Its only UART
    # is a PL011 (ttyAMA0). -smp 2 and -cpu max boot slower under TCG.
    "virt": Machine(
        "virt",
        "pi4",
        "ttyAMA0",
        ("-M", "virt", "-cpu", "cortex-a53", "-smp", "1", "-m", "512"),
        False,
        virtio=True,
    ),
    # The real Pi 3 B board with the kernel package's upstream dtb. Multi-threaded TCG does not
    # boot it. Its first -serial is the PL011 (ttyAMA0, Bluetooth on a real Pi), the second the
    # mini-UART, ttyS1 with upstream dtbs: the UART on GPIO 14/15 that cmdline.txt names.
    "raspi3b": Machine(
        "raspi3b",
        "pi3",
        bootfs.SERIAL_CONSOLE,
        ("-M", "raspi3b", "-accel", "tcg,thread=single", "-serial", "null", "-serial", "mon:stdio"),
        True,
        ("bcm2837-rpi-3-b.dtb", "broadcom/bcm2837-rpi-3-b.dtb"),
    ),
    # The Pi 2 B (ARMv7, qemu-system-arm) with Debian's armhf armmp kernel and its upstream dtb.
    # It has no radio: its PL011 is the UART on GPIO 14/15, ttyAMA0, QEMU's first -serial.
    # Power-off only halts it, as on raspi3b.
    "raspi2b": Machine(
        "raspi2b",
        "pi2",
        "ttyAMA0,115200",
        ("-M", "raspi2b", "-serial", "mon:stdio"),
        True,
        ("bcm2836-rpi-2-b.dtb",),
        ARMHF,
    ),
    # A stand-in for the Pi 2 where QEMU's raspi2b has no device: -M virt's virtio NIC, disk
    # and RNG, and its PL031 clock, for the armhf armmp kernel (which has the virt platform);
    # [pi2] sections apply. Its only UART is a PL011 (ttyAMA0).
    "virt32": Machine(
        "virt32",
        "pi2",
        "ttyAMA0",
        ("-M", "virt", "-cpu", "cortex-a15", "-smp", "1", "-m", "512"),
        False,
        target=ARMHF,
        virtio=True,
    ),
    # The Pi Zero (ARMv6 ARM1176, qemu-system-arm) with Debian's armel rpi kernel and its
    # upstream dtb: no radio, so its PL011 is on GPIO 14/15 (ttyAMA0), QEMU's first -serial.
    "raspi0": Machine(
        "raspi0",
        "pi0",
        "ttyAMA0,115200",
        ("-M", "raspi0", "-serial", "mon:stdio"),
        True,
        ("bcm2835-rpi-zero.dtb",),
        ARMEL,
        # QEMU 7.2's BCM2835 has no ASB block behind the power domains: the kernel's
        # bcm2835-power driver faults probing it, so it is not started (its watchdog still is).
        ("initcall_blacklist=bcm2835_power_driver_init",),
    ),
}
RASPI3B_DTBS = MACHINES["raspi3b"].dtbs


# A network back end (qemu's -netdev value): user networking with qemu's own DHCP server,
# reaching nothing outside the guest's private network. The card is a virtio NIC on the MMIO
# bus (no PCI option ROM); qemu 7.2's -nic shorthand knows no MMIO model, so it is -device.
NIC_USER_RESTRICTED = "user,restrict=on"


def _drive_path(path: Path) -> str:
    return str(path).replace(",", ",,")  # qemu option values escape a comma by doubling it


@dataclass(frozen=True)
class BootPlan:
    """What to boot and how; `workdir` holds temporary files plan() made (close() removes it)."""

    source: Path
    machine: str
    kernel: Path
    initramfs: Path | None
    dtb: Path | None
    append: str
    disk: Path | None
    workdir: Path | None = None
    extra_args: tuple[str, ...] = ()  # more qemu options, e.g. -icount for the benchmark
    # The network card's back end, as qemu's -netdev value without its id. "none" by default:
    # a machine gets no NIC (and needs no option ROM) unless a boot asks for one, e.g.
    # NIC_USER_RESTRICTED or "tap,ifname=tap0,script=no,downscript=no".
    nic: str = "none"
    # A file to which QEMU's blklogwrites driver logs every write to the disk, in order, with
    # its data (Linux's dm-log-writes format): a power cut can then be replayed at each write.
    disk_log: Path | None = None

    @property
    def args(self) -> list[str]:
        """QEMU's arguments (without the program name: MACHINES[machine].target.qemu)."""
        m = MACHINES[self.machine]
        args = [*m.args, "-nographic", "-no-reboot", "-kernel", str(self.kernel)]
        if self.initramfs is not None:
            args += ["-initrd", str(self.initramfs)]
        if self.dtb is not None:
            args += ["-dtb", str(self.dtb)]
        args += ["-append", self.append]
        if self.nic == "none":
            args += ["-nic", "none"]
        else:
            args += ["-netdev", f"{self.nic},id=net0", "-device", "virtio-net-device,netdev=net0"]
        if self.disk is not None and m.virtio:
            drive = f"if=none,file={_drive_path(self.disk)},format=raw,id=hd0"
            if self.disk_log is not None:
                drive = (
                    f"if=none,id=hd0,driver=blklogwrites,file.driver=file,"
                    f"file.filename={_drive_path(self.disk)},log.driver=file,"
                    f"log.filename={_drive_path(self.disk_log)},log-sector-size=512"
                )
            args += [
                "-drive",
                drive,
                "-device",
                "virtio-blk-device,drive=hd0",
            ]
        elif self.disk is not None:
            args += ["-drive", f"if=sd,format=raw,file={_drive_path(self.disk)}"]
        return [*args, *self.extra_args]

    def close(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> BootPlan:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Folder:
    """Files of a boot folder, found case-insensitively as on the FAT card it stands for."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find(self, name: str) -> Path | None:
        path = self.root
        for part in name.strip("/").split("/"):
            if (path / part).exists():
                path = path / part
                continue
            matches = (
                [p for p in path.iterdir() if p.name.lower() == part.lower()]
                if path.is_dir()
                else []
            )
            if not matches:
                return None
            path = matches[0]
        return path if path.is_file() else None


class _Card:
    """Files of a card image's FAT boot partition, copied out into `workdir` when asked for."""

    def __init__(self, image: Path, workdir: Path, partition: int = 1) -> None:
        self.image = image
        self.workdir = workdir
        self.partition = partition
        self.names = {
            n.lower(): n for n in sdimage.fat_list(image, partition) if not n.endswith("/")
        }

    def find(self, name: str) -> Path | None:
        actual = self.names.get(name.strip("/").lower())
        if actual is None:
            return None
        dest = self.workdir / "boot" / actual
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(sdimage.fat_read(self.image, self.partition, actual))
        return dest


def _settings(text: str, board: str) -> dict[str, bootfs.Setting]:
    """bootfs.effective()'s values, keeping each winning line for error messages."""
    bootfs.effective(text, board)  # checks the board name
    return {s.key: s for s in bootfs.parse_config_txt(text) if s.section in ("all", board)}


def qemu_cmdline(words: Sequence[str], machine: str, extra: Sequence[str] = ()) -> str:
    """The card's command line for `machine`: its serial console= and panic= words dropped,
    `extra` added, then panic=-1 (a panic ends qemu at once, thanks to -no-reboot) and the
    machine's serial console last, because the last console= becomes /dev/console."""
    kept = [w for w in words if not _SERIAL_CONSOLE.fullmatch(w) and not w.startswith("panic=")]
    m = MACHINES[machine]
    return " ".join([*kept, *extra, *m.quirks, "panic=-1", f"console={m.console}"])


def _pad_for_sd(disk: Path, workdir: Path) -> Path:
    """QEMU's SD card must be a power of two in size: a sparse padded copy if it is not."""
    size = disk.stat().st_size
    if size > 0 and size & (size - 1) == 0:
        return disk
    padded = workdir / f"{disk.name}.pow2"
    run_tool(["cp", "--sparse=always", "--reflink=auto", disk, padded], quiet=True)
    with open(padded, "r+b") as f:
        f.truncate(1 << max(size - 1, 1).bit_length())
    return padded


def plan(
    source: Path,
    machine: str = "virt",
    extra_append: Sequence[str] = (),
    *,
    disk: Path | None = None,
    qemu_args: Sequence[str] = (),
    nic: str = "none",
    tryboot: bool = False,
    disk_log: Path | None = None,
) -> BootPlan:
    """How to boot `source` (a boot folder, or a card image whose partition 1 is FAT) on
    `machine` (a name of MACHINES), reading config.txt as the firmware would for
    that board.
    A card with A/B slots (autoboot.txt) boots the slot the Pi 4 bootloader would: the
    default, or with `tryboot` (the one-shot flag a `reboot "0 tryboot"` sets) the other.

    A card image is itself attached as the disk (so its partition 2 is /dev/vda2 on virt,
    /dev/mmcblk0p2 on raspi3b) unless `disk` names another image. Disks are attached writable,
    as on a Pi; raspi3b's copy is padded to a power of two when needed, never the input.
    `disk_log` (virt only): QEMU logs every write to the disk into that file, emptied here first
    (see BootPlan.disk_log)."""
    if machine not in MACHINES:
        raise BuildError(f"machine {machine!r}: expected one of {', '.join(MACHINES)}")
    m = MACHINES[machine]
    if disk_log is not None and not m.virtio:
        raise BuildError(f"machine {machine}: a disk write log needs -M virt's virtio disk")
    if nic != "none" and not m.virtio:
        # The raspi boards' ethernet is on USB, which qemu 7.2 does not give their kernels.
        raise BuildError(f"machine {machine}: no network card; boot -M virt (virt32) for one")
    workdir: Path | None = None
    try:
        if source.is_dir():
            files: _Folder | _Card = _Folder(source)
        elif source.is_file():
            from builder.image import firmware_choice

            workdir = Path(tempfile.mkdtemp(prefix="pinit-qemu-"))
            partition, told = firmware_choice(source, tryboot)
            files = _Card(source, workdir, partition)
            extra_append = (*extra_append, *told)
            disk = disk or source
        else:
            raise BuildError(f"{source}: no such boot folder or card image")
        result = replace(
            _plan(source, m, files, extra_append, disk, workdir),
            extra_args=tuple(qemu_args),
            nic=nic,
            disk_log=disk_log,
        )
        if disk_log is not None:
            disk_log.write_bytes(b"")  # QEMU writes over an old log, never shortens it
    except BaseException:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    note(
        f"boot plan for {source} on {machine}: kernel {result.kernel.name}, initramfs "
        f"{result.initramfs.name if result.initramfs else '(none)'}, append {result.append!r}"
    )
    return result


def _plan(
    source: Path,
    m: Machine,
    files: _Folder | _Card,
    extra_append: Sequence[str],
    disk: Path | None,
    workdir: Path | None,
) -> BootPlan:
    config = files.find("config.txt")
    if config is None:
        raise BuildError(
            f"{source}: has no config.txt",
            hint="point at a Pi boot folder (build/boot) or card image",
        )
    text = config.read_text(errors="replace")
    raw_lines = text.splitlines()
    settings = _settings(text, m.board)

    def named(key: str, default: str | None = None) -> Path | None:
        setting = settings.get(key)
        name = setting.value if setting else default
        if not name:
            return None
        path = files.find(name)
        if path is None and setting is not None:
            raise BuildError(
                f"{source}: config.txt line {setting.lineno} "
                f"`{raw_lines[setting.lineno - 1].strip()}` names {name}, "
                "which is not there",
                hint=f"copy {name} into the boot folder or fix the config.txt line",
            )
        return path

    arm_64bit = settings.get("arm_64bit")
    if (
        m.target.arm_64bit
        and "kernel" not in settings
        and (arm_64bit is None or arm_64bit.value != "1")
    ):
        raise BuildError(
            f"{source}: config.txt has neither kernel= nor arm_64bit=1, so the "
            "firmware would load a 32-bit kernel7*.img",
            hint="add arm_64bit=1 and kernel=<the arm64 kernel>",
        )
    default_kernel = m.target.default_kernel
    kernel = named("kernel", default_kernel)
    if kernel is None:
        raise BuildError(f"{source}: no kernel= in config.txt and no {default_kernel}")
    initramfs = named("initramfs")
    cmdline_file = named("cmdline", "cmdline.txt")
    words: list[str] = []
    if cmdline_file is None:
        note(f"{source}: no cmdline.txt; booting with an empty command line, as the firmware would")
    else:
        first = (cmdline_file.read_text(errors="replace").splitlines() or [""])[0]
        words = first.split()  # the firmware passes only the first line
    dtb = None
    if m.needs_dtb:
        dtb = named("device_tree") or next(
            (found for name in m.dtbs if (found := files.find(name))), None
        )
        if dtb is None:
            raise BuildError(
                f"{source}: no {m.dtbs[0]} for -M {m.name}",
                hint=f"copy {m.dtbs[-1]} from the kernel package "
                "into the boot folder, or name a dtb with device_tree=",
            )
    if disk is not None:
        if not disk.is_file():
            raise BuildError(f"{disk}: no such disk image")
        if not m.virtio:
            workdir = workdir or Path(tempfile.mkdtemp(prefix="pinit-qemu-"))
            disk = _pad_for_sd(disk, workdir)
    return BootPlan(
        source,
        m.name,
        kernel,
        initramfs,
        dtb,
        qemu_cmdline(words, m.name, extra_append),
        disk,
        workdir,
    )


@dataclass
class BootResult:
    ok: bool
    reason: str
    lines: list[str]
    seconds: float  # wall time from qemu's start to the verdict
    first_seen: dict[str, float]  # expected (and `then`) text -> wall seconds since qemu's start


def kernel_time(lines: Sequence[str], text: str) -> float | None:
    """The printk timestamp of the first line containing `text`; for a line without one
    (an app's output) that of the nearest timestamped line before it."""
    last: float | None = None
    for line in lines:
        match = _PRINTK_TIME.match(line)
        if match:
            last = float(match.group(1))
        if text in line:
            return last
    return None


class _Console:
    """The verdict, line by line: fail texts at once, expect texts in order (and `also` texts
    in any order beside them), then `then`."""

    def __init__(
        self,
        expect: Sequence[str],
        fail: Sequence[str],
        then: str | None,
        stop_after_expect: bool,
        start: float,
        echo: bool,
        also: Sequence[str] = (),
    ) -> None:
        # A boot that is meant to panic (an update whose kernel cannot start) says so in `expect`.
        panics = any(text in e for e in expect for text in ALWAYS_FAIL)
        self.expect, self.fail = list(expect), [*fail, *(() if panics else ALWAYS_FAIL)]
        self.also = list(also)  # not seen yet
        self.then = then
        self.stop = stop_after_expect and then is None and bool(expect or also)
        self.start, self.echo = start, echo
        self.lines: list[str] = []
        self.first_seen: dict[str, float] = {}
        self.found = 0
        self.answers: list[tuple[str, str]] = []
        self.monitor: list[tuple[str, str]] = []  # (console text, monitor command)
        self.monitor_path: Path | None = None

    def waiting_for(self) -> str:
        if self.found < len(self.expect):
            return repr(self.expect[self.found])
        if self.also:
            return repr(self.also[0])
        return repr(self.then) if self.then is not None else "qemu to exit"

    def all_seen(self) -> bool:
        return self.found == len(self.expect) and not self.also

    def feed(self, raw: bytes) -> tuple[bool, str] | None:
        line = raw.decode(errors="replace").rstrip("\r\n").replace("\r", "")
        now = time.monotonic() - self.start
        self.lines.append(line)
        if self.echo:
            print(line, flush=True)
        for text in self.fail:
            if text in line:
                return False, f"saw {text!r} after {now:.1f} s: {line.strip()}"
        while self.found < len(self.expect) and self.expect[self.found] in line:
            self.first_seen[self.expect[self.found]] = now
            self.found += 1
        for text in [t for t in self.also if t in line]:
            self.first_seen[text] = now
            self.also.remove(text)
        if self.all_seen() and self.then is not None and self.then in line:
            self.first_seen[self.then] = now
            return True, f"saw all expected lines and {self.then!r} in {now:.1f} s"
        if self.all_seen() and self.stop:
            return True, f"saw all {len(self.expect)} expected lines in {now:.1f} s"
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM qemu's whole process group, SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_KILL_WAIT)
    with contextlib.suppress(ProcessLookupError):  # anything qemu left behind in its group
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _watch(proc: subprocess.Popen[bytes], console: _Console, timeout: float) -> tuple[bool, str]:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = console.start + timeout
    pending = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False, f"timed out after {timeout:g} s waiting for {console.waiting_for()}"
        if not select.select([fd], [], [], remaining)[0]:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            if pending:
                verdict = console.feed(pending)
                if verdict:
                    return verdict
            status = proc.wait()
            if console.all_seen() and console.expect:
                return True, f"qemu exited (status {status}) after all expected lines"
            last = next((ln.strip() for ln in reversed(console.lines) if ln.strip()), "")
            return False, (
                f"qemu exited (status {status}) while waiting for "
                f"{console.waiting_for()}" + (f"; last line: {last}" if last else "")
            )
        *complete, pending = (pending + chunk).split(b"\n")
        for raw in complete:
            verdict = console.feed(raw)
            if verdict:
                return verdict
            _answer(proc, console)


def _until_prompt(mon: socket.socket, after: bytes) -> None:
    """Read QEMU's human monitor until its "(qemu)" prompt follows `after`."""
    got = b""
    with contextlib.suppress(TimeoutError):
        while b"(qemu)" not in got[got.find(after) + len(after) :] if after in got else True:
            chunk = mon.recv(4096)
            if not chunk:
                return
            got += chunk


def _answer(proc: subprocess.Popen[bytes], console: _Console) -> None:
    """Type the answer to a console line that asks for one (each answer once, in order), and
    give QEMU's monitor the command a console line waits for (hot-plugging a device)."""
    if console.answers and console.answers[0][0] in console.lines[-1]:
        _, text = console.answers.pop(0)
        assert proc.stdin is not None
        proc.stdin.write(text.encode())
        proc.stdin.flush()
    if console.monitor and console.monitor[0][0] in console.lines[-1]:
        _, command = console.monitor.pop(0)
        assert console.monitor_path is not None
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mon:
            mon.settimeout(10)
            mon.connect(str(console.monitor_path))
            _until_prompt(mon, b"")  # the monitor's greeting
            mon.sendall(command.encode() + b"\n")
            _until_prompt(mon, command.encode())  # the command has run: its prompt again


def run(
    boot: BootPlan,
    *,
    expect: Sequence[str] = (),
    fail: Sequence[str] = (),
    timeout: float = 30,
    log: Path | None = None,
    also: Sequence[str] = (),
    interactive: bool = False,
    then: str | None = None,
    stop_after_expect: bool = True,
    echo: bool = False,
    answers: Sequence[tuple[str, str]] = (),
    monitor: Sequence[tuple[str, str]] = (),
    netns: str = "",
) -> BootResult:
    """Boot `boot` and judge it from the serial console.

    Passes when every `expect` text has appeared, in order, and every `also` text in any order
    (the lines of a process that runs beside those, such as an early-started app); then, if `then` is given (say
    "reboot: Power down") or stop_after_expect is False, keeps reading until `then` appears or
    qemu exits. Fails at once on a `fail` text or "Kernel panic" (unless `expect` names it),
    and on `timeout` seconds.
    The console goes to `log` (default build/boot.log), and to stdout as it comes if `echo`.
    `answers`: (text, keys) pairs; when a console line shows `text`, `keys` are typed on the
    serial console (in order, each once), e.g. to drive the init's Python shell.
    `interactive` gives qemu the terminal instead (Ctrl-A x quits) and just waits for it.
    `netns`: run qemu inside that network namespace (a test's private LAN with a tap)."""
    qemu = MACHINES[boot.machine].target.qemu
    program = shutil.which(qemu)
    if program is None:
        raise BuildError(f"{qemu}: command not found", hint="apt-get install qemu-system-arm")
    argv = [program, *boot.args]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    note("$ " + shlex.join(argv))
    start = time.monotonic()
    if interactive:
        note("qemu's console is this terminal; Ctrl-A x quits")
        status = subprocess.call(argv)
        return BootResult(
            status == 0, f"qemu exited with status {status}", [], time.monotonic() - start, {}
        )
    console = _Console(expect, fail, then, stop_after_expect, start, echo, also)
    console.answers = list(answers)
    console.monitor = list(monitor)
    sock_dir = None
    if monitor:
        # `monitor`: (text, command) pairs; when a console line shows `text`, `command` goes to
        # QEMU's human monitor (device_add, device_del …).
        sock_dir = Path(tempfile.mkdtemp(prefix="pinit-mon-"))
        console.monitor_path = sock_dir / "monitor.sock"
        argv += ["-monitor", f"unix:{console.monitor_path},server=on,wait=off"]
    # Its own session: killpg then reaches qemu and anything it started, never us.
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if answers else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        ok, reason = _watch(proc, console, timeout)
    finally:
        _kill_group(proc)
        assert proc.stdout is not None
        proc.stdout.close()
        log = log or DEFAULT_LOG
        write_atomic(log, "".join(f"{line}\n" for line in console.lines).encode())
        if sock_dir is not None:
            shutil.rmtree(sock_dir, ignore_errors=True)
    seconds = time.monotonic() - start
    note(f"boot {'passed' if ok else 'FAILED'}: {reason} (console log: {log})")
    return BootResult(ok, reason, console.lines, seconds, console.first_seen)
