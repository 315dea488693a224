"""PID 1's own byte layouts are right on every target, 64-bit and 32-bit alike.

What goes through the cffi C code (init/sysdefs.py, init/prologue.c) is laid out by the target's
C compiler. What the Python init packs itself (`struct` formats, fixed offsets, ioctl request
numbers, which encode an argument's size) is checked here against each target's C compiler: a
tiny probe of sizeof/offsetof/macro values is compiled with `-c` by aarch64-linux-gnu-gcc,
arm-linux-gnueabihf-gcc, … and its values read back from the object with pyelftools.

A native ("@") format is sized on the Pi by the init's own struct module, cross-compiled for
it; here `Abi` is that module's arithmetic with a target's C sizes and alignments (the same
`offsetof(struct {char c; T x;}, x)` CPython's _struct.c uses), itself checked against the
host's real struct module. Guards make sure nothing new escapes the tables: every native
format and every ioctl request number in init/ must have its C counterpart here.
"""

from __future__ import annotations

import ast
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from hostkit.paths import REPO
from init import clock, early, grow, net, nl80211, rootfs, rtnl, sysdefs, watchdog
from toolchain.target import DEFAULT, TARGETS

INIT = REPO / "init"

# CPython's native struct codes and the C type each one is sized and aligned as.
CODE_TYPES = {
    "c": "char",
    "b": "signed char",
    "B": "unsigned char",
    "?": "_Bool",
    "h": "short",
    "H": "unsigned short",
    "i": "int",
    "I": "unsigned int",
    "l": "long",
    "L": "unsigned long",
    "q": "long long",
    "Q": "unsigned long long",
    "n": "ssize_t",
    "N": "size_t",
    "f": "float",
    "d": "double",
    "P": "void *",
}

# The ioctl requests PID 1 makes, by the module that names them, and their C definitions.
IOCTLS = {
    (net, "SIOCGIFFLAGS"): "SIOCGIFFLAGS",
    (net, "SIOCSIFFLAGS"): "SIOCSIFFLAGS",
    (clock, "RTC_RD_TIME"): "RTC_RD_TIME",
    (clock, "RTC_SET_TIME"): "RTC_SET_TIME",
    (watchdog, "WDIOC_KEEPALIVE"): "WDIOC_KEEPALIVE",
    (watchdog, "WDIOC_SETTIMEOUT"): "WDIOC_SETTIMEOUT",
    # fs/ext4/ext4.h: not in the UAPI headers; the target's own _IOW encodes it.
    (grow, "EXT4_IOC_RESIZE_FS"): "_IOW('f', 16, __u64)",
    (grow, "LOOP_CTL_GET_FREE"): "LOOP_CTL_GET_FREE",
    (grow, "LOOP_CONFIGURE"): "LOOP_CONFIGURE",
}

# Native formats in init/ (module, name): each is checked per target below.
NATIVE = {("net", "IFREQ"), ("watchdog", "INT"), ("clock", "RTC_TIME")}

# Fixed-size formats of kernel structures: the same on every target, and the C says so.
FIXED = {
    "sizeof(struct nlmsghdr)": rtnl.HEADER,
    "sizeof(struct ifaddrmsg)": rtnl.IFADDRMSG,
    "sizeof(struct rtmsg)": rtnl.RTMSG,
    "sizeof(struct ifinfomsg)": rtnl.IFINFOMSG,
    "sizeof(struct nlattr)": rtnl.ATTR,
    "sizeof(struct genlmsghdr)": nl80211.GENL,
    "sizeof(struct ifa_cacheinfo)": struct.Struct("=IIII"),  # rtnl.address's IFA_CACHEINFO
    "sizeof(struct nl80211_sta_flag_update)": struct.Struct("=II"),  # ATTR_STA_FLAGS2
}

RTC_FIELDS = ("sec", "min", "hour", "mday", "mon", "year", "wday", "yday", "isdst")

PROBE_HEADERS = """
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <net/if.h>
#include <linux/ioctl.h>
#include <linux/rtc.h>
#include <linux/watchdog.h>
#include <linux/loop.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/genetlink.h>
#include <linux/nl80211.h>
"""


def ms_flags() -> dict[str, int]:
    return {name: value for name, value in vars(rootfs).items() if name.startswith("MS_")}


def probe_values() -> dict[str, str]:
    """key -> C expression, every value the tests read from a target's compiler."""
    values = {}
    for code, ctype in CODE_TYPES.items():
        values[f"size {code}"] = f"sizeof({ctype})"
        values[f"align {code}"] = f"offsetof(struct pinit_align_{ord(code)}, x)"
    values |= {f"ioctl {name}": c for (_, name), c in IOCTLS.items()}
    values |= {f"flag {name}": name for name in ms_flags()}
    values |= {key: key for key in FIXED}
    values |= {
        "sizeof(struct ifreq)": "sizeof(struct ifreq)",
        "offsetof(struct ifreq, ifr_flags)": "offsetof(struct ifreq, ifr_flags)",
        "sizeof(struct rtc_time)": "sizeof(struct rtc_time)",
        "sizeof(struct loop_config)": "sizeof(struct loop_config)",
        "offsetof(struct loop_config, fd)": "offsetof(struct loop_config, fd)",
        "offsetof(struct loop_config, info.lo_flags)": "offsetof(struct loop_config, info.lo_flags)",
        "offsetof(struct loop_config, info.lo_file_name)": (
            "offsetof(struct loop_config, info.lo_file_name)"
        ),
        "sizeof(((struct loop_info64 *)0)->lo_file_name)": (
            "sizeof(((struct loop_info64 *)0)->lo_file_name)"
        ),
        "offsetof(struct ifinfomsg, ifi_index)": "offsetof(struct ifinfomsg, ifi_index)",
        "offsetof(struct ifinfomsg, ifi_flags)": "offsetof(struct ifinfomsg, ifi_flags)",
    }
    values |= {f"rtc {f}": f"offsetof(struct rtc_time, tm_{f})" for f in RTC_FIELDS}
    return values


def probe_source(values: dict[str, str]) -> str:
    aligns = "".join(
        f"struct pinit_align_{ord(code)} {{ char c; {ctype} x; }};\n"
        for code, ctype in CODE_TYPES.items()
    )
    rows = ",\n".join(f"    (unsigned long long)({c})" for c in values.values())
    return f"{PROBE_HEADERS}{aligns}const unsigned long long pinit_probe[] = {{\n{rows}\n}};\n"


@dataclass(frozen=True)
class Probe:
    target: str  # a name of TARGETS, or "host"
    values: dict[str, int]
    little_endian: bool
    elf_bits: int

    def __getitem__(self, key: str) -> int:
        return self.values[key]


def compile_probe(name: str, tmp: Path) -> Probe:
    """Target `name`'s values: the probe compiled with `-c`, read back from the object."""
    cc = compiler(name)
    values = probe_values()
    source = tmp / "probe.c"
    source.write_text(probe_source(values))
    obj = tmp / "probe.o"
    subprocess.run(
        [cc, "-c", "-O0", "-D_GNU_SOURCE", "-o", str(obj), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    with obj.open("rb") as file:
        elf = ELFFile(file)
        symtab = elf.get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        (symbol,) = symtab.get_symbol_by_name("pinit_probe") or []
        data = elf.get_section(symbol["st_shndx"]).data()
        raw = data[symbol["st_value"] : symbol["st_value"] + symbol["st_size"]]
        order: Literal["little", "big"] = "little" if elf.little_endian else "big"
        numbers = [int.from_bytes(raw[i : i + 8], order) for i in range(0, len(raw), 8)]
        assert len(numbers) == len(values)
        return Probe(name, dict(zip(values, numbers, strict=True)), elf.little_endian, elf.elfclass)


def compiler(name: str) -> str:
    """The C compiler of target `name` ("host": the machine's own gcc)."""
    cc = "gcc" if name == "host" else f"{TARGETS[name].cross}gcc"
    if shutil.which(cc) is None:
        if name == DEFAULT.name:
            pytest.fail(f"{cc} is not installed; run `invoke toolchain`")
        pytest.skip(f"{cc} is not installed: target {name}'s layouts are not checked here")
    return cc


@pytest.fixture(scope="module", params=list(TARGETS))
def target_probe(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Probe:
    """The probe's values from target `request.param`'s compiler, once per module."""
    return compile_probe(request.param, tmp_path_factory.mktemp(request.param))


class Abi:
    """CPython's struct arithmetic (Modules/_struct.c) with one target's native sizes: what the
    init's struct module computes when it runs there."""

    CODES = "xcbB?hHiIlLqQnNfdspP"
    TOKEN = re.compile(rf"\s*(\d*)([{re.escape(CODES)}])")

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def _size_align(self, code: str, native: bool) -> tuple[int, int]:
        if code in "xsp":
            return 1, 1
        if not native:
            return struct.calcsize("=" + code), 1
        return self.probe[f"size {code}"], self.probe[f"align {code}"]

    def layout(self, fmt: str) -> tuple[int, list[int]]:
        """(size, the offset of every value) of `fmt` on this target."""
        native = fmt[:1] not in ("=", "<", ">", "!")
        rest = fmt[1:] if fmt[:1] in ("@", "=", "<", ">", "!") else fmt
        assert re.fullmatch(rf"({self.TOKEN.pattern})*\s*", rest), f"{fmt!r}: not modelled"
        offset, offsets = 0, []
        for match in self.TOKEN.finditer(rest):
            count, code = int(match[1] or 1), match[2]
            size, align = self._size_align(code, native)
            offset += -offset % align
            if code in "sp":
                offsets.append(offset)
                offset += count
            elif code == "x":
                offset += count
            else:
                offsets += [offset + size * n for n in range(count)]
                offset += size * count
        return offset, offsets

    def calcsize(self, fmt: str) -> int:
        return self.layout(fmt)[0]


# --- the model of the struct module, checked against the real one on the host ------------------


STRUCT_CALLS = {"Struct", "pack", "unpack", "unpack_from", "pack_into", "calcsize", "iter_unpack"}


def init_formats() -> dict[tuple[str, str], ast.expr | None]:
    """Every struct format in init/: (module, the name it is bound to, or the call and its
    line for an inline one) -> the format's expression."""
    found: dict[tuple[str, str], ast.expr | None] = {}
    for path in sorted(INIT.glob("*.py")):
        tree = ast.parse(path.read_text())
        bound = {
            id(node.value): node.targets[0].id
            for node in tree.body
            if isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "struct"
                and node.func.attr in STRUCT_CALLS
            ):
                where = (path.stem, bound.get(id(node), f"{node.func.attr}@{node.lineno}"))
                found[where] = node.args[0] if node.args else None
    return found


def literal(fmt: ast.expr | None) -> str | None:
    if isinstance(fmt, ast.Constant) and isinstance(fmt.value, str):
        return fmt.value
    return None


def leading_text(fmt: ast.expr | None) -> str:
    """The format's text up to its first computed part (an f-string's), "" if none."""
    if isinstance(fmt, ast.JoinedStr) and fmt.values:
        return literal(fmt.values[0]) or ""
    return literal(fmt) or ""


def test_abi_model_is_the_hosts_struct_module(tmp_path: Path) -> None:
    """Abi with the host compiler's sizes computes what the host's struct module does, for
    every literal format in init/ and formats that exercise alignment and padding."""
    abi = Abi(compile_probe("host", tmp_path))
    formats = [f for f in map(literal, init_formats().values()) if f] + [
        "16sh22x",
        net.IFMAP,
        net.ifreq_format(),
        "LLHBBB",
        "ci",
        "cq",
        "cd",
        "cP",
        "bl0q",
        "hn",
        "?N",
        "3ci0l",
        "cf",
        "@hi",
        "=hi",
        "<cq",
        "!cd",
    ]
    for fmt in formats:
        size, offsets = abi.layout(fmt)
        assert size == struct.calcsize(fmt), fmt
        assert offsets == real_offsets(fmt), fmt


def real_offsets(fmt: str) -> list[int]:
    """Where the host's struct module puts each value of `fmt`: the first byte that changes when
    that value alone is set to one whose bytes are all non-zero."""
    zeros = struct.unpack(fmt, bytes(struct.calcsize(fmt)))
    offsets = []
    for index, zero in enumerate(zeros):
        values = list(zeros)
        if isinstance(zero, bytes):
            candidates: list[object] = [b"\xff" * len(zero)]
        elif isinstance(zero, bool):
            candidates = [True]
        elif isinstance(zero, float):
            candidates = [1.1]
        else:  # -1 for signed integers, then 0x01… of the unsigned one's size
            candidates = [-1, *(int.from_bytes(b"\x01" * n, "big") for n in (8, 4, 2, 1))]
        for marker in candidates:
            values[index] = marker
            try:
                packed = struct.pack(fmt, *values)
            except struct.error:
                continue
            break
        offsets.append(next(i for i, b in enumerate(packed) if b))
    return offsets


def test_every_struct_format_in_init_is_fixed_size_or_checked_per_target() -> None:
    """A native format (no "=", "<", ">", "!") sizes C types that may differ between 64-bit and
    32-bit targets: each must be one NATIVE checks against the targets' compilers; an inline
    or computed one must be bound to a name first."""
    unchecked = {
        where: ast.unparse(fmt) if fmt else None
        for where, fmt in init_formats().items()
        if leading_text(fmt)[:1] not in ("=", "<", ">", "!") and where not in NATIVE
    }
    assert not unchecked, f"native or computed formats not checked per target: {unchecked}"


def test_every_ioctl_request_in_init_is_checked_per_target() -> None:
    """Every request number passed to kernel.ioctl/ioctl_int is a module constant IOCTLS
    compares with the targets' C headers (which encode the argument's size in it)."""
    checked = {(module.__name__.rpartition(".")[2], name) for module, name in IOCTLS}
    used = set()
    for path in sorted(INIT.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"ioctl", "ioctl_int"}
                and path.stem != "kernel"
            ):
                request = node.args[1]
                assert isinstance(request, ast.Name), f"{path.name}:{node.lineno}: not a constant"
                used.add((path.stem, request.id))
    assert used and used <= checked, used - checked


def test_no_raw_syscall_numbers_in_init_c() -> None:
    """syscall(SYS_name, …) only: the numbers differ between arm's EABI table and aarch64's
    generic one (finit_module: 379 and 273)."""
    for name, text in {
        "prologue.c": (INIT / "prologue.c").read_text(),
        "sysdefs.py": sysdefs.SOURCE,
    }.items():
        calls = re.findall(r"\bsyscall\s*\(\s*([^,)]+)", text)
        assert calls and all(re.fullmatch(r"SYS_\w+", c.strip()) for c in calls), (name, calls)
        assert "__NR_" not in text, name


# --- each target's compiler ---------------------------------------------------------------------


def test_probe_is_the_targets_and_little_endian(target_probe: Probe) -> None:
    """The compiler is the target's (its ELF class; long and pointers as wide), and the target
    is little-endian: grow.py's to_bytes(…, "little") (the ext4 resize's u64, struct
    loop_config) and the on-disk formats assume it; "=" formats take the machine's own order."""
    bits = TARGETS[target_probe.target].elf_bits
    assert target_probe.elf_bits == bits
    assert 8 * target_probe["size L"] == 8 * target_probe["size P"] == bits
    assert target_probe.little_endian


def target_format(module: ModuleType, name: str, abi: Abi) -> str:
    """The format `module`.`name` has when the init runs on `abi`'s target: its literal (the
    native codes sized there), or what the function that computes it gives with the target's
    calcsize (`net.ifreq_format()`)."""
    fmt = init_formats()[(module.__name__.rpartition(".")[2], name)]
    if literal(fmt) is not None:
        return str(literal(fmt))
    assert isinstance(fmt, ast.Call) and isinstance(fmt.func, ast.Name) and not fmt.args, (
        f"{name}: computed in a way this test does not model: {ast.unparse(fmt or ast.Pass())}"
    )
    computed: str = getattr(module, fmt.func.id)(abi.calcsize)
    return computed


def test_native_formats_match_the_targets_c(target_probe: Probe) -> None:
    abi = Abi(target_probe)
    # struct ifreq: 40 bytes on aarch64, 32 on armhf; the flags at 16 on both.
    size, offsets = abi.layout(target_format(net, "IFREQ", abi))
    assert size == target_probe["sizeof(struct ifreq)"]
    assert offsets[1] == target_probe["offsetof(struct ifreq, ifr_flags)"]
    # struct rtc_time: nine ints.
    size, offsets = abi.layout(target_format(clock, "RTC_TIME", abi))
    assert size == target_probe["sizeof(struct rtc_time)"]
    assert offsets == [target_probe[f"rtc {f}"] for f in RTC_FIELDS]
    # The watchdog's int.
    assert abi.calcsize(target_format(watchdog, "INT", abi)) == target_probe["size i"]
    # A format added to NATIVE gets its check here.
    assert NATIVE == {("net", "IFREQ"), ("clock", "RTC_TIME"), ("watchdog", "INT")}


def test_ifreq_on_a_64_bit_host_is_the_old_format() -> None:
    """aarch64's (and this host's) struct ifreq layout is unchanged: byte-identical ioctls."""
    assert net.IFREQ.format == net.ifreq_format()
    if struct.calcsize("P") == 8:
        assert net.IFREQ.format == "16sh22x" and net.IFREQ.size == 40


def test_ioctl_numbers_match_the_targets_headers(target_probe: Probe) -> None:
    """_IOR/_IOW numbers carry sizeof the argument: RTC's struct rtc_time, the watchdog's int,
    ext4's u64; the same on every target, which the C says."""
    for (module, name), c in IOCTLS.items():
        assert getattr(module, name) == target_probe[f"ioctl {name}"], (name, c)


def test_fixed_formats_match_the_targets_c(target_probe: Probe) -> None:
    for key, fixed in FIXED.items():
        assert fixed.size == target_probe[key], key
    _, offsets = Abi(target_probe).layout(rtnl.IFINFOMSG.format)
    assert offsets[2:4] == [  # family, type, index, flags, change
        target_probe["offsetof(struct ifinfomsg, ifi_index)"],
        target_probe["offsetof(struct ifinfomsg, ifi_flags)"],
    ]


def test_loop_config_matches_the_targets_c(target_probe: Probe) -> None:
    config = grow.loop_config(0x01020304, "/run/pinit/boot/pinit-data.img")
    assert len(config) == target_probe["sizeof(struct loop_config)"]
    fd = target_probe["offsetof(struct loop_config, fd)"]
    assert config[fd : fd + 4] == (0x01020304).to_bytes(4, "little")
    flags = target_probe["offsetof(struct loop_config, info.lo_flags)"]
    assert config[flags : flags + 4] == grow.LO_FLAGS_AUTOCLEAR.to_bytes(4, "little")
    name = target_probe["offsetof(struct loop_config, info.lo_file_name)"]
    room = target_probe["sizeof(((struct loop_info64 *)0)->lo_file_name)"]
    assert config[name : name + room].rstrip(b"\0") == b"/run/pinit/boot/pinit-data.img"
    assert config[name + room - 1] == 0  # NUL-terminated even when the name is longer
    # Nothing else is set: the fd's four bytes, the flag's one, the name's.
    assert sum(1 for b in config if b) == 4 + 1 + len("/run/pinit/boot/pinit-data.img")


def test_mount_flags_are_the_targets_and_fit_its_unsigned_long(target_probe: Probe) -> None:
    """mount(2)'s flags are an unsigned long: 32 bits on armhf (cffi refuses more), and the
    prologue's early steps spell them `…UL`."""
    bits = 8 * target_probe["size L"]
    for name, value in ms_flags().items():
        assert value == target_probe[f"flag {name}"], name
    for step in rootfs.EARLY_ROOTFS:
        if isinstance(step, rootfs.Mount):
            assert step.flags < 1 << bits, step


C_WARNINGS = [
    "-Werror=implicit-function-declaration",
    "-Werror=int-conversion",
    "-Werror=pointer-to-int-cast",
    "-Werror=int-to-pointer-cast",
    "-Werror=incompatible-pointer-types",
    "-Werror=format",
    "-Werror=overflow",
    "-Werror=implicit-int",
]


@pytest.mark.parametrize("name", list(TARGETS))
def test_init_c_compiles_for_the_target(name: str, tmp_path: Path) -> None:
    """init/sysdefs.py's C and init/prologue.c (after init/early.py's header, with a stand-in
    Python.h) compile for every target without a size or pointer warning: every SYS_* and
    struct they name exists there (SYS_clone3 and struct clone_args on armhf too)."""
    cc = compiler(name)
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "Python.h").write_text(
        "typedef struct _object PyObject;\n"
        "int PyImport_AppendInittab(const char *name, PyObject *(*initfunc)(void));\n"
    )
    (tmp_path / "sysdefs.c").write_text(sysdefs.SOURCE)
    (tmp_path / "boot.c").write_text(early.c_header() + f'#include "{INIT / "prologue.c"}"\n')
    for source in ("sysdefs.c", "boot.c"):
        proc = subprocess.run(
            [
                cc,
                "-fsyntax-only",
                "-std=gnu11",
                "-D_GNU_SOURCE",
                "-D_FILE_OFFSET_BITS=64",  # what CPython's pyconfig.h, included first, sets
                "-I",
                str(stub),
                *C_WARNINGS,
                str(tmp_path / source),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"{name}: {source}\n{proc.stderr[-3000:]}"
