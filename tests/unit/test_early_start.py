"""Which appliances get early start, and the record the init's C prologue reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.config import load_build_config
from builder.image import early_start

ELF_AARCH64 = (
    b"\x7fELF\x02\x01\x01"
    + b"\0" * 9
    + (2).to_bytes(2, "little")
    + (183).to_bytes(2, "little")
    + b"\0" * 44
)


def config(tmp_path: Path, extra: str = "", service: str = "") -> object:
    app = tmp_path / "app"
    app.write_bytes(ELF_AARCH64)
    (tmp_path / "pinit.toml").write_text(f"""{extra}
[[service]]
name = "app"
exec = "app"
args = ["--fast", "x y"]
env = {{ GREETING = "hi" }}
{service}
""")
    return load_build_config(tmp_path / "pinit.toml")


# The image's lib/modules, as builder.kmod.pack writes them: dummy needs nothing, veth-like
# "pair" needs "core" first.
PACKED = {
    "lib/modules/6.1.0-t/modules.dep": b"kernel/net/dummy.ko:\n"
    b"kernel/net/pair.ko: kernel/net/core.ko\nkernel/net/core.ko:\n",
    "lib/modules/6.1.0-t/modules.alias": b"alias net-pair pair\n",
}


def test_record_lists_path_cwd_argv_and_env_nul_separated(tmp_path: Path) -> None:
    record = early_start(config(tmp_path), {})
    assert record is not None
    fields = record.split(b"\0")
    assert fields[-1] == b"" and fields[0] == b"pinit-early-4"
    assert fields[1:3] == [b"pinit", b"0"]  # the host name; no modules to load first
    fields = fields[2:]
    assert fields[1:8] == [
        b"/app/app",
        b"/",
        b"/sys/fs/cgroup/app",
        b"3",
        b"/app/app",
        b"--fast",
        b"x y",
    ]
    envc = int(fields[8])
    env = fields[9 : 9 + envc]
    assert b"GREETING=hi" in env and any(e.startswith(b"PATH=") for e in env)
    assert len(fields) == 9 + envc + 1


def test_the_configured_modules_load_first_in_the_inits_order_with_their_parameters(
    tmp_path: Path,
) -> None:
    from init import early

    extra = """
[kernel]
modules = ["net-pair", "dummy"]
params = { dummy = "numdummies=2" }
available = ["virtio_mmio"]
"""
    record = early.decode(early_start(config(tmp_path, extra), PACKED) or b"")
    assert record is not None and record.program == "/app/app"
    base = "/lib/modules/6.1.0-t/kernel/net"
    assert record.modules == (
        (f"{base}/core.ko", ""),
        (f"{base}/pair.ko", ""),
        (f"{base}/dummy.ko", "numdummies=2"),
    )


@pytest.mark.parametrize(
    "extra, service",
    [
        ('[data]\nsize = "16MiB"', ""),  # the app may need the data partition
        ('[init]\nmode = "exec"', ""),  # exec mode has no supervisor to adopt it
        ("[init]\nearly_start = false", ""),  # turned off
        ("", "user = 1000"),  # the prologue does not change users
        ("", 'wait_for = ["/dev/vda"]'),  # a device coldplug finds, say
        ('[[device]]\nkernel = "hw_random"\nmode = "0644"', ""),  # device rules come first
        ('[init]\nconsole = "hvc0"\n[kernel]\nmodules = ["dummy"]', ""),  # a module's console
    ],
)
def test_apps_that_need_more_than_the_early_file_systems_wait(
    tmp_path: Path, extra: str, service: str
) -> None:
    assert early_start(config(tmp_path, extra, service), PACKED) is None


def test_the_record_decodes_as_the_prologue_reads_it() -> None:
    from init import early

    record = early.Record(
        "/app/x",
        "/srv",
        "/sys/fs/cgroup/x",
        ("/app/x", "a b", ""),
        ("A=1", "PATH=/bin"),
        (("/lib/modules/r/a.ko", ""), ("/lib/modules/r/b.ko", "x=1 y=2")),
        "box",
    )
    data = early.encode(record)
    assert early.decode(data) == record
    assert early.decode(data[:-1]) == record  # the prologue NUL-terminates its buffer
    assert early.decode(b"pinit-early-0\0" + data.split(b"\0", 1)[1]) is None
    assert early.decode(data.replace(b"\x003\x00", b"\x00999\x00", 1)) is None
    assert early.decode(data.replace(b"-4\x00box\x002\x00", b"-4\x00box\x0065\x00", 1)) is None


@pytest.mark.parametrize(
    "record, problem",
    [
        (("/app/x", "/", "", ("/app/x\0",), ()), "NUL"),
        (("/app/x", "/", "", (), ()), "arguments"),
        (("/app/x", "/", "", ("/app/x",), tuple(f"V{i}=1" for i in range(300))), "arguments"),
        (("/app/x", "/", "", ("/app/x", "y" * 40000), ()), "bytes"),
        (("/app/x", "/", "", ("/app/x",), (), (("/m.ko", "a\0"),)), "NUL"),
        (("/app/x", "/", "", ("/app/x",), (), (("/m.ko", ""),) * 65), "modules"),
    ],
)
def test_a_record_the_prologue_could_not_read_is_refused(record, problem) -> None:
    from init import early

    with pytest.raises(ValueError, match=problem):
        early.encode(early.Record(*record))


def test_the_prologue_compiles_with_the_steps_python_defines(toolchain, tmp_path) -> None:
    """init/prologue.c reads init/early.py's header: one definition of the early mounts."""
    import subprocess

    from init import early
    from init.rootfs import EARLY_ROOTFS, Mount
    from toolchain import nuitka_pin

    header = early.c_header()
    targets = [s.target for s in EARLY_ROOTFS if isinstance(s, Mount)]
    assert [t for t in targets if f'"{t}"' in header] == targets
    assert header.index('"/run"') < header.index('"/tmp"')
    source = tmp_path / "pinit_boot.c"
    source.write_text(
        header + f'#include "{nuitka_pin.PROLOGUE_C}"\nconst char pinit_inittab_names[] = "";\n'
    )
    subprocess.run(
        [
            "aarch64-linux-gnu-gcc",
            f"--sysroot={toolchain.sysroot}",
            "-Wall",
            "-Werror",
            "-Wno-unused-result",
            f"-I{toolchain.sysroot}/usr/include/python3.11",
            f"-I{toolchain.sysroot}/usr/include/aarch64-linux-gnu/python3.11",
            "-c",
            source,
            "-o",
            tmp_path / "boot.o",
        ],
        check=True,
    )


def test_the_prologues_module_times_are_read_as_it_writes_them() -> None:
    from init.early import module_times

    assert module_times("1.500000000 1.750000000,2.000000001 2.5") == [
        (1.5, 1.75),
        (2.000000001, 2.5),
    ]
    assert module_times("") == [] and module_times("1.5") == [] and module_times("a b") == []
