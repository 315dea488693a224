"""The whole standard library in the static binary, proven by a real service in a real boot.

tests/apps/stdlib_probe.py is compiled like any Python service and booted twice on -M virt
with a data partition; every check prints a line. Only what a program imports is linked: the
probe carries OpenSSL, the init and the demo do not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.image import build
from builder.qemu import harness
from hostkit.paths import REPO
from toolchain import nuitka_pin

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which(harness.QEMU) is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]
PROBE = REPO / "tests/apps/stdlib_probe.py"


@pytest.fixture(scope="module")
def probe_image(built_init, toolchain, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("stdlib")
    config = tmp / "pinit.toml"
    config.write_text(f"""
[kernel]
modules = ["virtio_mmio", "virtio_blk", "crc32c", "ext4"]
[data]
size = "16MiB"
[[service]]
name = "probe"
exec = "{PROBE}"
restart = "never"
[python]
exclude = ["unicodedata"]
[image]
timezone = "Europe/Berlin"
""")
    return build(config, tmp / "out", built_init, toolchain).image


def _boot(image: Path, log: Path) -> harness.BootResult:
    with harness.plan(image) as plan:
        return harness.run(
            plan, expect=["STDLIB done", "reboot: Power down"], fail=["FATAL"], timeout=90, log=log
        )


def test_stdlib_modules_work_in_a_static_service_and_sqlite_persists(probe_image, tmp_path) -> None:
    first = _boot(probe_image, tmp_path / "first.log")
    assert first.ok, f"{first.reason}\n" + "\n".join(first.lines[-40:])
    lines = [line for line in first.lines if line.startswith("STDLIB ")]
    text = "\n".join(lines)
    assert "FAILED" not in text, text
    expected = [
        "STDLIB asyncio: ok sum=30",
        "STDLIB termios: ok speed=115200 8N1=True",
        "STDLIB mmap: ok file=hello anon=world",
        "STDLIB ctypes-ioctl: ok rows=24 cols=80 sizeof=8",
        "STDLIB sqlite3: ok boots=1 sqlite=3.",
        "STDLIB ssl: ok verify=CERT_REQUIRED OpenSSL",
        "STDLIB compression: ok roundtrips=True",
        "STDLIB decimal: ok 3.3 0.142857142857142857142857142857",
        "STDLIB threading: ok count=4000 finished=4",
        "STDLIB zones: ok tokyo=9:00:00 new_york=EST local=[2, 1] CEST Europe/Berlin",
        "STDLIB accounts: ok root / root",
        "STDLIB processes: ok pool=[0, 1, 4, 9, 16] executor=14 process=child exit=0",
        "STDLIB trusted: ok /usr/lib/ssl/cert.pem all=True",
        "STDLIB dlopen: refused: OSError:",
        "STDLIB nis: refused: ImportError: nis is not in pinit's static binary: ",
        "STDLIB left-out: refused: ModuleNotFoundError: unicodedata is not in pinit's "
        "static binary: the appliance's pinit.toml excludes it ([python] exclude)",
        "STDLIB fallback: ok colorsys",
        "STDLIB fallback in main: ok graphlib",
        "STDLIB data beside: ok data beside the program",
        "STDLIB data from cwd: ok data beside the program",
        "STDLIB file: ok /stdlib_probe.py",
        'STDLIB source: ok """A service',
        "STDLIB by name: ok /probe_by_name.py",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), f"{want!r} not in:\n{text}"
    second = _boot(probe_image, tmp_path / "second.log")
    assert second.ok, f"{second.reason}\n" + "\n".join(second.lines[-40:])
    assert any(line.startswith("STDLIB sqlite3: ok boots=2 ") for line in second.lines), "\n".join(
        second.lines[-40:]
    )


def _init_of(image: Path) -> bytes:
    """/init of the initramfs in the boot folder beside a built card image."""
    from builder.formats import compress, cpio

    initramfs = next((image.parent / "boot").glob("initramfs.*"))
    entries = cpio.read(compress.decompress(initramfs.read_bytes()))
    return next(e.data for e in entries if e.path == "init" and isinstance(e, cpio.File))


def inittab(binary: bytes, mark: str = nuitka_pin.INITTAB_MARK) -> set[str]:
    """The builtin modules a binary has (or, with REFUSED_MARK, those whose import says they
    are left out): the plugin writes their names into it."""
    start = binary.index(mark.encode()) + len(mark)
    return set(binary[start : binary.index(b"\0", start)].decode().split())


def test_only_what_is_imported_is_linked(probe_image, built_init) -> None:
    init = inittab(built_init.read_bytes())
    assert "posix" in init and not {"_ssl", "_sqlite3", "unicodedata", "readline"} & init
    # libpython's builtins that the interpreter's start-up does not import: not in PID 1.
    assert not {"_sre", "itertools", "_functools", "_operator", "math"} & init
    # Imported only inside functions of the standard library: left out, and saying so.
    refused = inittab(built_init.read_bytes(), nuitka_pin.REFUSED_MARK)
    assert {"traceback", "re"} <= refused
    assert b"OpenSSL" not in built_init.read_bytes()
    probe_binary = _init_of(probe_image)
    probe = inittab(probe_binary)
    assert {"_ssl", "_sqlite3", "_asyncio", "termios", "mmap", "_ctypes"} <= probe
    assert b"OpenSSL" in probe_binary
    # libpython's own optional builtins: what the probe imports (hashlib's _sha256, _ssl's
    # _socket from C), not what it does not, nor what its pinit.toml excludes.
    assert {"_sha256", "_socket"} <= probe and not {"cmath", "unicodedata"} & probe


def test_python_services_are_programs_of_the_one_init_binary(
    built_init, toolchain, tmp_path
) -> None:
    """Each Python service is /app/<name>, a link to /init, and runs as its own program."""
    from builder.formats import compress, cpio

    config = tmp_path / "pinit.toml"
    config.write_text(f"""
[[service]]
name = "argv"
exec = "{REPO / "tests/apps/argv_probe.py"}"
args = ["one", "two words"]
restart = "never"
[[service]]
name = "stopper"
exec = "{REPO / "tests/apps/stopper.py"}"
""")
    built = build(config, tmp_path / "out", built_init, toolchain)
    entries = {e.path: e for e in cpio.read(compress.decompress(built.initramfs.read_bytes()))}
    assert isinstance(entries["app/argv"], cpio.Symlink) and entries["app/argv"].target == "/init"
    assert isinstance(entries["app/stopper"], cpio.Symlink)
    elves = [p for p, e in entries.items() if isinstance(e, cpio.File) and e.data[:4] == b"\x7fELF"]
    assert elves == ["init"]
    # Neither imports zoneinfo: no tz database (the stdlib probe's image has it).
    assert not [p for p in entries if p.startswith("usr/share/zoneinfo")]
    with harness.plan(built.boot) as plan:
        result = harness.run(
            plan,
            expect=[
                "ARGV ['/app/argv', 'one', 'two words'] name=__main__ init-loaded=False pid1=False "
                "sigterm=True",
                "reboot: Power down",
            ],
            fail=["FATAL"],
            timeout=60,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    assert any("pinit: argv exited with status 3" in line for line in result.lines)
    assert any(line.startswith("STOPPER running") for line in result.lines)
