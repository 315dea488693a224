"""init/modules.py: modules.dep/alias parsing, glob matching and the load-order closure."""

from __future__ import annotations

import fnmatch

import pytest

from init.errors import InitError, ModuleError
from init.modules import (
    closure,
    glob_match,
    name_of,
    parse_alias,
    parse_builtin,
    parse_dep,
    resolve,
)

RELEASE = "6.1.0-test-arm64"

# A diamond: top needs left and right, both need base. depmod lists every transitive dependency.
DEP = """\
kernel/drivers/top.ko: kernel/drivers/left.ko kernel/drivers/right.ko kernel/lib/base.ko
kernel/drivers/left.ko: kernel/lib/base.ko
kernel/drivers/right.ko: kernel/lib/base.ko
kernel/lib/base.ko:
kernel/drivers/net/dummy.ko:
kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/lib/crc16.ko.zst
kernel/fs/jbd2/jbd2.ko.xz:
kernel/lib/crc16.ko.zst:
kernel/sound/snd-bcm2835.ko.gz:
"""

ALIAS = """\
# Aliases extracted from modules themselves.
alias fs-ext4 ext4
alias pci:v00001AF4d00001041sv*sd*bc*sc*i* virtio_net
alias virtio:d00000001v* virtio_net
alias devname:snd snd-bcm2835
alias char-major-10-[0-9]* dummy
alias crypto-crc32c crc32c_generic
alias fs-vfat vfat
"""

BUILTIN = "kernel/crypto/crc32c_generic.ko\nkernel/fs/fat/vfat.ko\n"


def order_of(names: list[str]) -> list[str]:
    return [
        name_of(path)
        for path in closure(names, parse_dep(DEP), parse_alias(ALIAS), parse_builtin(BUILTIN))
    ]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("kernel/drivers/net/dummy.ko", "dummy"),
        ("kernel/fs/ext4/ext4.ko.xz", "ext4"),
        ("kernel/lib/crc16.ko.zst", "crc16"),
        ("kernel/sound/snd-bcm2835.ko.gz", "snd_bcm2835"),
        ("/lib/modules/6.1/kernel/a-b-c.ko", "a_b_c"),
    ],
)
def test_name_of(path: str, name: str) -> None:
    assert name_of(path) == name


def test_parse_dep_keeps_relative_paths_and_order() -> None:
    dep = parse_dep(DEP + "\n  \nnot a dep line\n")
    assert dep["kernel/drivers/top.ko"] == (
        "kernel/drivers/left.ko",
        "kernel/drivers/right.ko",
        "kernel/lib/base.ko",
    )
    assert dep["kernel/lib/base.ko"] == ()
    assert len(dep) == 11


def test_parse_alias_normalises_dashes_outside_brackets() -> None:
    alias = parse_alias(ALIAS)
    assert alias[0] == ("fs_ext4", "ext4")
    assert ("char_major_10_[0-9]*", "dummy") in alias
    assert ("devname:snd", "snd_bcm2835") in alias  # module names get underscores too
    assert len(alias) == 7  # the comment line is skipped


def test_diamond_loads_each_dependency_once_and_first() -> None:
    order = order_of(["top"])
    assert order == ["base", "right", "left", "top"]  # modprobe's order: last listed first


def test_closure_without_transitive_lists_still_orders_dependencies() -> None:
    dep = {"a.ko": ("b.ko",), "b.ko": ("c.ko",), "c.ko": ()}
    assert closure(["a"], dep) == ["c.ko", "b.ko", "a.ko"]


def test_closure_follows_request_order_and_skips_repeats() -> None:
    assert order_of(["dummy", "left", "top", "dummy"]) == ["dummy", "base", "left", "right", "top"]


def test_closure_is_deterministic() -> None:
    assert order_of(["top", "ext4", "virtio_net"]) == order_of(["top", "ext4", "virtio_net"])


@pytest.mark.parametrize(
    ("name", "loads"),
    [
        ("fs-ext4", ["crc16", "jbd2", "ext4"]),
        ("fs_ext4", ["crc16", "jbd2", "ext4"]),
        ("virtio-net", ["failover", "virtio_net"]),  # a name, spelt with a dash
        ("pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00", ["failover", "virtio_net"]),
        ("char-major-10-130", ["dummy"]),
        ("devname:snd", ["snd_bcm2835"]),
        ("crypto-crc32c", []),  # alias of a built-in module
        ("vfat", []),  # built in by name
    ],
)
def test_aliases_and_builtins(name: str, loads: list[str]) -> None:
    assert order_of([name]) == loads


def test_missing_module_names_it_with_a_suggestion() -> None:
    with pytest.raises(ModuleError) as caught:
        order_of(["dumy"])
    assert isinstance(caught.value, InitError)
    assert str(caught.value) == 'modules.dep: no module or alias "dumy" (did you mean "dummy"?)'
    with pytest.raises(ModuleError, match=r'no module or alias "zzzzzz"$'):
        order_of(["zzzzzz"])


def test_alias_of_a_module_not_in_the_tree_is_missing() -> None:
    with pytest.raises(ModuleError, match='no module or alias "fs-btrfs"'):
        closure(["fs-btrfs"], parse_dep(DEP), (("fs_btrfs", "btrfs"),))


def test_dependency_missing_from_modules_dep() -> None:
    with pytest.raises(ModuleError, match=r"kernel/b\.ko \(needed by a\) is not listed"):
        closure(["a"], {"kernel/a.ko": ("kernel/b.ko",)})


def test_dependency_cycle() -> None:
    dep = {"a.ko": ("b.ko",), "b.ko": ("a.ko",)}
    with pytest.raises(ModuleError, match="dependency cycle a -> b -> a"):
        closure(["a"], dep)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("pci:v*d*sv*", "pci:v1d2sv3"),
        ("a*b*c", "axxbyyc"),
        ("a*b*c", "axxbyyd"),
        ("a?c", "abc"),
        ("a?c", "ac"),
        ("*", ""),
        ("", ""),
        ("", "a"),
        ("[a-c]x", "bx"),
        ("[a-c]x", "dx"),
        ("[!a-c]x", "dx"),
        ("[!a-c]x", "ax"),
        ("[]]", "]"),
        ("[abc", "[abc"),
        ("*a*a*a*a*b", "a" * 30),
        ("x*", "x"),
        ("of:N*T*Cbrcm,bcm2835-wdtC*", "of:NwatchdogT(null)Cbrcm,bcm2835-wdtCbrcm,x"),
    ],
)
def test_glob_match_agrees_with_fnmatch(pattern: str, text: str) -> None:
    assert glob_match(pattern, text) == fnmatch.fnmatchcase(text, pattern)


def test_glob_backslash_escapes_like_fnmatch_3() -> None:
    # C fnmatch(3), which kmod uses, escapes with a backslash; Python's fnmatch does not.
    assert glob_match(r"a\*b", "a*b")
    assert not glob_match(r"a\*b", "axb")


def make_tree(root, alias: str | None = ALIAS) -> None:
    folder = root / "lib" / "modules" / RELEASE
    folder.mkdir(parents=True)
    (folder / "modules.dep").write_text(DEP)
    (folder / "modules.builtin").write_text(BUILTIN)
    if alias is not None:
        (folder / "modules.alias").write_text(alias)


def read(path: str) -> str:
    """What PID 1's reader does through the kernel seam, from a real file."""
    with open(path) as f:
        return f.read()


def test_without_optional_files_names_resolve_and_unknown_ones_say_so(tmp_path) -> None:
    make_tree(tmp_path, alias=None)
    folder = tmp_path / "lib" / "modules" / RELEASE
    (folder / "modules.builtin").unlink()
    assert resolve(read, str(folder), ["dummy"]) == ["kernel/drivers/net/dummy.ko"]
    with pytest.raises(ModuleError, match=r'no module or alias "fs-ext4"'):
        resolve(read, str(folder), ["fs-ext4"])


def test_missing_modules_dep_is_an_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        resolve(read, str(tmp_path), ["dummy"])


def test_resolve_gives_paths_relative_to_the_folder(tmp_path) -> None:
    make_tree(tmp_path)
    folder = tmp_path / "lib" / "modules" / RELEASE
    assert resolve(read, str(folder), ["top", "fs-ext4"]) == [
        "kernel/lib/base.ko",
        "kernel/drivers/right.ko",
        "kernel/drivers/left.ko",
        "kernel/drivers/top.ko",
        "kernel/lib/crc16.ko.zst",
        "kernel/fs/jbd2/jbd2.ko.xz",
        "kernel/fs/ext4/ext4.ko.xz",
    ]


def test_resolve_reads_modules_alias_only_when_a_name_needs_it(tmp_path) -> None:
    make_tree(tmp_path, alias=None)
    folder = tmp_path / "lib" / "modules" / RELEASE
    # A folder where the file should be: reading it would fail.
    (folder / "modules.alias").mkdir()
    assert len(resolve(read, str(folder), ["top", "vfat"])) == 4
    with pytest.raises(IsADirectoryError):
        resolve(read, str(folder), ["fs-ext4"])
