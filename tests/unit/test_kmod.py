"""builder/kmod.py: module index from .modinfo or depmod files, closure, vermagic, packing."""

from __future__ import annotations

import gzip
import lzma
import shutil
import struct
from pathlib import Path

import pytest

from builder import kmod
from hostkit.errors import BuildError
from init.modules import resolve as boot_resolve

RELEASE = "6.1.0-56-arm64"
MAGIC = f"{RELEASE} SMP mod_unload modversions aarch64"
OTHER = MAGIC.replace("-56-", "-99-")


def fake_ko(
    name: str, depends: str = "", aliases: tuple[str, ...] = (), vermagic: str = MAGIC
) -> bytes:
    """A minimal aarch64 ELF64 relocatable with only a .modinfo section, enough for pyelftools."""
    info = [f"alias={a}" for a in aliases] + [
        f"depends={depends}",
        f"name={name}",
        f"vermagic={vermagic}",
    ]
    modinfo = b"".join(item.encode() + b"\0" for item in info)
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    shoff = (64 + len(modinfo) + len(shstrtab) + 7) & ~7
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)  # 64-bit, little-endian, version 1
    header = ident + struct.pack("<HHIQQQIHHHHHH", 1, 183, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 2)
    body = (header + modinfo + shstrtab).ljust(shoff, b"\0")
    sections = [
        struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack("<IIQQQQIIQQ", 1, 1, 2, 0, 64, len(modinfo), 0, 0, 1, 0),
        struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, 64 + len(modinfo), len(shstrtab), 0, 0, 1, 0),
    ]
    return body + b"".join(sections)


# A diamond (top needs left and right, both need base), a dashed name, and a glob alias.
FAKE = {
    "kernel/drivers/top.ko": fake_ko("top", "left,right", ("fs-top", "pci:v00001234d*")),
    "kernel/drivers/left.ko": fake_ko("left", "base"),
    "kernel/drivers/right.ko": fake_ko("right", "base"),
    "kernel/lib/base.ko": fake_ko("base"),
    "kernel/sound/snd-dash.ko": fake_ko("snd_dash", "base", ("sound-dash",)),
}
BUILTIN = "kernel/fs/ext4/ext4.ko\nkernel/net/packet/af_packet.ko\n"
BUILTIN_MODINFO = b"af_packet.alias=net-pf-17\0af_packet.license=GPL\0ext4.alias=fs-ext4\0"


def make_tree(root: Path, modules: dict[str, bytes], builtin: bool = True) -> Path:
    folder = root / "lib/modules" / RELEASE
    for rel, data in modules.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    if builtin:
        (folder / "modules.builtin").write_text(BUILTIN)
        (folder / "modules.builtin.modinfo").write_bytes(BUILTIN_MODINFO)
    return folder


def unpack(files: list[tuple[str, bytes]], root: Path) -> None:
    for path, data in files:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def boot_order(
    resolved: kmod.Resolved, names: list[str], tmp: Path, release: str = RELEASE
) -> list[str]:
    """What PID 1 computes at boot from the packed files: the resolver it runs, its reader
    reading files instead of going through the kernel seam."""
    unpack(kmod.pack(resolved), tmp)
    return boot_resolve(read, str(tmp / "lib" / "modules" / release), names)


def plain(paths: tuple[str, ...]) -> list[str]:
    return [kmod._plain(p) for p in paths]


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    make_tree(tmp_path / "tree", FAKE)
    return tmp_path / "tree"


def test_closure_from_modinfo(fake: Path, tmp_path: Path) -> None:
    got = kmod.resolve(["top"], fake, RELEASE, tmp_path / "cache")
    assert got.modules == (
        "kernel/lib/base.ko",
        "kernel/drivers/right.ko",
        "kernel/drivers/left.ko",
        "kernel/drivers/top.ko",
    )
    assert got.dep["kernel/drivers/top.ko"] == (
        "kernel/drivers/left.ko",
        "kernel/drivers/right.ko",
        "kernel/lib/base.ko",
    )
    assert got.vermagic == MAGIC
    assert boot_order(got, ["top"], tmp_path / "image") == list(got.modules)


@pytest.mark.parametrize("name", ["snd-dash", "snd_dash", "sound-dash", "sound_dash"])
def test_dashes_and_aliases(fake: Path, tmp_path: Path, name: str) -> None:
    got = kmod.resolve([name], fake, RELEASE, tmp_path / "cache")
    assert got.modules == ("kernel/lib/base.ko", "kernel/sound/snd-dash.ko")
    assert boot_order(got, [name], tmp_path / "image") == list(got.modules)


def test_glob_alias_and_trimmed_alias_file(fake: Path, tmp_path: Path) -> None:
    got = kmod.resolve(["pci:v00001234d00005678"], fake, RELEASE, tmp_path / "cache")
    assert got.modules[-1] == "kernel/drivers/top.ko"
    files = dict(kmod.pack(got))
    alias = files[f"lib/modules/{RELEASE}/modules.alias"].decode()
    assert "alias fs_top top" in alias and "sound_dash" not in alias


def test_builtin_names_are_skipped(fake: Path, tmp_path: Path, capsys) -> None:
    names = ["ext4", "net-pf-17", "fs-ext4", "snd-dash"]
    got = kmod.resolve(names, fake, RELEASE, tmp_path / "cache")
    assert got.builtin == ("ext4", "net-pf-17", "fs-ext4")
    assert got.modules == ("kernel/lib/base.ko", "kernel/sound/snd-dash.ko")
    assert "module net-pf-17: built into kernel" in capsys.readouterr().err
    # The init at boot must see the same: builtin names and their aliases go into the image.
    assert boot_order(got, names, tmp_path / "image") == list(got.modules)


def test_unknown_module_names_tree_and_close_match(fake: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError) as err:
        kmod.resolve(["tpo"], fake, RELEASE, tmp_path / "cache")
    text = str(err.value)
    assert 'no module or alias "tpo"' in text and 'did you mean "top"' in text
    assert str(fake / "lib/modules" / RELEASE) in text
    assert err.value.hint


def test_missing_dependency_is_named(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    make_tree(root, {"kernel/a.ko": fake_ko("a", "ghost")})
    with pytest.raises(BuildError, match=r"ghost\.ko \(needed by a\) is not listed"):
        kmod.resolve(["a"], root, RELEASE, tmp_path / "cache")


def test_vermagic_of_another_release_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    make_tree(root, {**FAKE, "kernel/drivers/left.ko": fake_ko("left", "base", vermagic=OTHER)})
    kmod.resolve(["snd-dash"], root, RELEASE, tmp_path / "cache")  # left.ko not needed: fine
    with pytest.raises(BuildError) as err:
        kmod.resolve(["top"], root, RELEASE, tmp_path / "cache")
    assert str(err.value) == f"left.ko: vermagic '{OTHER}' does not match kernel {RELEASE}"


def test_vermagic_of_other_flags_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    make_tree(root, {**FAKE, "kernel/lib/base.ko": fake_ko("base", vermagic=f"{RELEASE} SMP")})
    with pytest.raises(
        BuildError,
        match=rf"base\.ko: vermagic '{RELEASE} SMP' does not match "
        rf"kernel '{MAGIC}'",
    ):
        kmod.resolve(["top"], root, RELEASE, tmp_path / "cache")


def compressors() -> list[str]:
    return [".ko.xz", ".ko.gz"] + ([".ko.zst"] if shutil.which("zstd") else [])


@pytest.mark.parametrize("suffix", compressors())
def test_compressed_modules_are_packed_plain(tmp_path: Path, suffix: str) -> None:
    def squeeze(data: bytes) -> bytes:
        if suffix == ".ko.xz":
            return lzma.compress(data, check=lzma.CHECK_CRC32)  # what the kernel's kmod uses
        if suffix == ".ko.gz":
            return gzip.compress(data)
        from hostkit.run import run

        return run(["zstd", "-q", "-c"], input=data, capture=True, quiet=True).stdout

    root = tmp_path / "tree"
    make_tree(root, {rel[: -len(".ko")] + suffix: squeeze(data) for rel, data in FAKE.items()})
    got = kmod.resolve(["fs-top"], root, RELEASE, tmp_path / "cache")
    assert plain(got.modules) == [
        "kernel/lib/base.ko",
        "kernel/drivers/right.ko",
        "kernel/drivers/left.ko",
        "kernel/drivers/top.ko",
    ]
    files = dict(kmod.pack(got))
    assert files[f"lib/modules/{RELEASE}/kernel/drivers/top.ko"] == FAKE["kernel/drivers/top.ko"]
    assert suffix not in files[f"lib/modules/{RELEASE}/modules.dep"].decode()
    assert boot_order(got, ["fs-top"], tmp_path / "image") == plain(got.modules)


def test_depmod_files_are_used_when_present(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    folder = make_tree(root, {rel + ".xz": lzma.compress(data) for rel, data in FAKE.items()})
    # modules.dep says only left needs base, whatever .modinfo says: proof it was read.
    (folder / "modules.dep").write_text(
        "kernel/drivers/top.ko.xz: kernel/drivers/left.ko.xz kernel/lib/base.ko.xz\n"
        "kernel/drivers/left.ko.xz: kernel/lib/base.ko.xz\nkernel/lib/base.ko.xz:\n"
    )
    (folder / "modules.alias").write_text("alias fs-top top\n")
    got = kmod.resolve(["fs-top"], root, RELEASE, tmp_path / "cache")
    assert got.modules == (
        "kernel/lib/base.ko.xz",
        "kernel/drivers/left.ko.xz",
        "kernel/drivers/top.ko.xz",
    )
    assert got.vermagic == MAGIC  # read from the three files, not from a cached index
    assert not (tmp_path / "cache").exists()


def test_index_is_cached_and_refreshed_when_the_tree_changes(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = kmod.load_tree(fake, RELEASE, cache)
    assert len(list(cache.glob(f"{RELEASE}-*.json"))) == 1
    real_scan = kmod._index_from_modinfo
    calls: list[int] = []

    def counting(folder: Path, rels: list[str]) -> kmod.Index:
        calls.append(len(rels))
        return real_scan(folder, rels)

    monkeypatch.setattr(kmod, "_index_from_modinfo", counting)
    assert kmod.load_tree(fake, RELEASE, cache) == first
    assert calls == []
    make_tree(fake, {"kernel/extra/new.ko": fake_ko("new")})
    assert "kernel/extra/new.ko" in kmod.load_tree(fake, RELEASE, cache).dep
    assert calls == [len(FAKE) + 1]
    next(cache.glob("*.json")).write_text("{not json")
    kmod.load_tree(fake, RELEASE, cache)  # a damaged cache entry is recomputed, not trusted


def test_pack_is_reproducible(fake: Path, tmp_path: Path) -> None:
    got = kmod.resolve(["top", "snd-dash"], fake, RELEASE, tmp_path / "cache")
    assert kmod.pack(got) == kmod.pack(got)
    paths = [path for path, _ in kmod.pack(got)]
    assert f"lib/modules/{RELEASE}/modules.builtin" in paths


# --- the real Debian arm64 module tree ---------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> tuple[Path, str]:
    from hostkit.cache import cache_dir
    from toolchain.provision import ensure

    if not (cache_dir() / "kernel").is_dir():
        pytest.skip(f"{cache_dir() / 'kernel'} not provisioned; run `invoke toolchain`")
    try:
        tc = ensure(host=False)
    except BuildError as exc:
        pytest.skip(f"the lock's trees cannot be provisioned here: {exc}")
    return tc.kernel, tc.kernel_release


def names(resolved: kmod.Resolved) -> list[str]:
    return [p.rpartition("/")[2] for p in resolved.modules]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (["vfat"], ["fat.ko", "vfat.ko"]),
        (["fs-vfat"], ["fat.ko", "vfat.ko"]),
        (["virtio-net"], ["failover.ko", "net_failover.ko", "virtio_net.ko"]),
        (["virtio_blk"], ["virtio_blk.ko"]),
        (["virtio:d00000002v00001AF4"], ["virtio_blk.ko"]),
        (["dummy"], ["dummy.ko"]),
        (["net-pf-24"], ["slhc.ko", "ppp_generic.ko", "pppox.ko"]),
        (["af_packet", "dummy"], ["dummy.ko"]),
    ],
)
def test_real_closure(real: tuple[Path, str], request_: list[str], expected: list[str]) -> None:
    root, release = real
    got = kmod.resolve(request_, root, release)
    assert names(got) == expected
    assert got.vermagic.startswith(release + " ")


def test_real_unknown_module(real: tuple[Path, str]) -> None:
    root, release = real
    with pytest.raises(BuildError, match=r'no module or alias "vfta" \(did you mean "vfat"\?\)'):
        kmod.resolve(["vfta"], root, release)


def test_real_pack_reads_back_in_the_same_order(real: tuple[Path, str], tmp_path: Path) -> None:
    root, release = real
    request_ = ["vfat", "virtio_net", "dummy", "fs-vfat", "net-pf-17", "virtio_blk"]
    got = kmod.resolve(request_, root, release)
    files = kmod.pack(got)
    assert boot_order(got, request_, tmp_path, release) == list(got.modules)
    dummy = next(p for p in got.modules if p.endswith("/dummy.ko"))
    assert dict(files)[f"lib/modules/{release}/{dummy}"] == (got.folder / dummy).read_bytes()


def copy_real(real: tuple[Path, str], dest: Path, stems: list[str], suffix: str = ".ko") -> Path:
    root, release = real
    source = root / "lib/modules" / release
    folder = dest / "lib/modules" / release
    for stem in stems:
        path = next(source.rglob(f"{stem}.ko"))
        target = folder / path.relative_to(source).with_suffix(suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        target.write_bytes(lzma.compress(data, check=lzma.CHECK_CRC32) if suffix != ".ko" else data)
    return folder


def test_real_module_of_another_release_is_refused(real: tuple[Path, str], tmp_path: Path) -> None:
    _, release = real
    folder = copy_real(real, tmp_path, ["dummy", "fat", "vfat"])
    dummy = next(folder.rglob("dummy.ko"))
    other = release.replace(release.split("-")[1], "99", 1)  # same length: edited in place
    data = dummy.read_bytes()
    assert data.count(f"vermagic={release} ".encode()) == 1
    dummy.write_bytes(data.replace(f"vermagic={release} ".encode(), f"vermagic={other} ".encode()))
    assert names(kmod.resolve(["vfat"], tmp_path, release, tmp_path / "cache")) == [
        "fat.ko",
        "vfat.ko",
    ]
    with pytest.raises(BuildError) as err:
        kmod.resolve(["dummy"], tmp_path, release, tmp_path / "cache")
    assert str(err.value).startswith(f"dummy.ko: vermagic '{other} SMP ")
    assert str(err.value).endswith(f"' does not match kernel {release}")


def test_real_xz_tree(real: tuple[Path, str], tmp_path: Path) -> None:
    _, release = real
    copy_real(
        real, tmp_path / "xz", ["fat", "vfat", "failover", "net_failover", "virtio_net"], ".ko.xz"
    )
    got = kmod.resolve(["vfat", "virtio_net"], tmp_path / "xz", release, tmp_path / "cache")
    assert names(got) == [
        "fat.ko.xz",
        "vfat.ko.xz",
        "failover.ko.xz",
        "net_failover.ko.xz",
        "virtio_net.ko.xz",
    ]
    files = dict(kmod.pack(got))
    original = next((real[0] / "lib/modules" / release).rglob("vfat.ko")).read_bytes()
    assert files[f"lib/modules/{release}/kernel/fs/fat/vfat.ko"] == original


def test_real_firmware_a_module_declares_is_listed(real: tuple[Path, str]) -> None:
    """The Pi's Wi-Fi driver asks for Broadcom firmware the kernel package does not carry."""
    root, release = real
    wanted = kmod.firmware(kmod.resolve(["brcmfmac"], root, release))
    assert any(f.startswith("brcm/brcmfmac43455-sdio") for f in wanted["brcmfmac"]), wanted
    assert wanted["cfg80211"] == ["regulatory.db", "regulatory.db.p7s"]  # its dependency's too
    assert "brcmutil" not in wanted  # modules without firmware are not listed


def test_firmware_is_taken_from_the_provisioned_firmware_packages(tmp_path: Path) -> None:
    """A module's firmware= entry (a glob, as brcmfmac's are) finds the files that the
    configured firmware packages unpacked under lib/firmware."""
    from dataclasses import dataclass

    from builder.image import firmware_files

    (tmp_path / "lib/firmware/brcm").mkdir(parents=True)
    (tmp_path / "lib/firmware/brcm/brcmfmac43455-sdio.bin").write_bytes(b"fw")
    (tmp_path / "lib/firmware/brcm/brcmfmac43455-sdio.txt").write_bytes(b"nvram")

    @dataclass
    class Tc:
        firmware: Path

    got = firmware_files(Tc(tmp_path), "brcm/brcmfmac*-sdio.*.bin")  # type: ignore[arg-type]
    assert [rel for rel, _ in got] == []  # the driver's glob wants a board part: .<board>.bin
    got = firmware_files(Tc(tmp_path), "brcm/brcmfmac43455-sdio.bin")  # type: ignore[arg-type]
    assert [rel for rel, _ in got] == ["brcm/brcmfmac43455-sdio.bin"]
