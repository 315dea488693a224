"""What the standard library reads from the system, in the image as on Debian: the tz database
and [image] timezone (tzdata), the CA certificates OpenSSL trusts (ca-certificates)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from builder import image
from builder.config import load_build_config
from builder.formats import cpio
from hostkit.errors import BuildError

BERLIN = b"TZif2" + b"\0" * 40 + b"berlin"
PEM = b"-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n"


@pytest.fixture()
def tc(tmp_path: Path) -> object:
    """A toolchain whose runtime holds a small tz database, with a link and right/."""
    zones = tmp_path / "runtime" / image.ZONEINFO
    (zones / "Europe").mkdir(parents=True)
    (zones / "right" / "Europe").mkdir(parents=True)
    (zones / "Europe" / "Berlin").write_bytes(BERLIN)
    (zones / "right" / "Europe" / "Berlin").write_bytes(b"TZif2 leap")
    (zones / "zone1970.tab").write_text("DE\t+5230+01322\tEurope/Berlin\n")
    (zones / "Europe" / "Busingen").symlink_to("Berlin")
    mozilla = tmp_path / "runtime" / "usr/share/ca-certificates/mozilla"
    mozilla.mkdir(parents=True)
    (mozilla / "B_Root.crt").write_bytes(PEM % b"B")
    (mozilla / "A_Root.crt").write_bytes((PEM % b"A").rstrip(b"\n"))  # no last newline
    etc = tmp_path / "runtime" / "etc"
    etc.mkdir()
    for name in ("services", "protocols"):
        (etc / name).write_text(f"{name}\n")

    @dataclasses.dataclass
    class Tc:
        runtime: Path

    return Tc(tmp_path / "runtime")


def _config(tmp_path: Path, zone: str) -> object:
    path = tmp_path / "pinit.toml"
    path.write_text(f'[image]\ntimezone = "{zone}"\n')
    return load_build_config(path)


def test_the_database_ships_with_its_links_and_without_right(tc) -> None:
    by_path = {e.path: e for e in image.zoneinfo_entries(tc)}
    assert by_path["usr/share/zoneinfo/Europe/Berlin"] == cpio.File(
        "usr/share/zoneinfo/Europe/Berlin", BERLIN, 0o644
    )
    assert by_path["usr/share/zoneinfo/Europe/Busingen"] == cpio.Symlink(
        "usr/share/zoneinfo/Europe/Busingen", "Berlin"
    )
    assert "usr/share/zoneinfo/zone1970.tab" in by_path
    assert not [p for p in by_path if "/right" in p]


def test_the_images_zone_is_etc_localtime_itself_and_its_name(tc, tmp_path) -> None:
    files = image.base_files(_config(tmp_path, "Europe/Busingen"), tc)
    assert files["etc/localtime"] == BERLIN  # the data, not a link into the database
    assert files["etc/timezone"] == b"Europe/Busingen\n"
    assert "etc/localtime" not in image.base_files(load_build_config(_empty(tmp_path)), tc)


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.toml"
    path.write_text("")
    return path


@pytest.mark.parametrize("zone", ["Europe/Berlim", "Europe", "right/Europe/Berlin/x"])
def test_a_zone_not_in_the_database_is_an_error_that_says_where(tc, tmp_path, zone) -> None:
    with pytest.raises(BuildError) as caught:
        image.base_files(_config(tmp_path, zone), tc)
    message = str(caught.value)
    assert message.startswith(f'{tmp_path / "pinit.toml"}: [image] timezone = "{zone}": ')
    assert "no such zone in the tz database" in message
    assert "Europe/Berlin" in caught.value.hint


def test_the_cas_are_one_bundle_where_openssl_looks_by_default(tc) -> None:
    by_path = {e.path: e for e in image.ca_entries(tc)}
    bundle = by_path[image.CA_BUNDLE]
    assert isinstance(bundle, cpio.File)
    assert bundle.data == PEM % b"A" + PEM % b"B"  # sorted, each ending in a newline
    assert by_path["usr/lib/ssl/cert.pem"] == cpio.Symlink(
        "usr/lib/ssl/cert.pem", "/etc/ssl/certs/ca-certificates.crt"
    )
    assert by_path["usr/lib/ssl/certs"] == cpio.Symlink("usr/lib/ssl/certs", "/etc/ssl/certs")


def test_no_cas_unpacked_is_an_error_with_a_hint(tc) -> None:
    import shutil

    shutil.rmtree(tc.runtime / "usr/share/ca-certificates")
    with pytest.raises(BuildError) as caught:
        image.ca_entries(tc)
    assert "no CA certificates" in str(caught.value) and "invoke toolchain" in caught.value.hint
