"""builder/python/compile.py's checks that need no compiler."""

from __future__ import annotations

import pytest

from hostkit.errors import BuildError


def test_a_service_folder_file_named_like_a_stdlib_module_is_refused(tmp_path) -> None:
    from builder.python.compile import check_no_shadowing

    (tmp_path / "app.py").write_text("")
    (tmp_path / "sensors.py").write_text("")
    check_no_shadowing((tmp_path,))
    (tmp_path / "numbers.py").write_text("")
    with pytest.raises(
        BuildError,
        match=r"numbers.py: named like the standard library's "
        r"`numbers` module",
    ) as err:
        check_no_shadowing((tmp_path,))
    assert "rename" in err.value.hint


@pytest.mark.parametrize("triplet", ["aarch64-linux-gnu", "arm-linux-gnueabihf"])
def test_sysconfigs_data_is_the_targets_own_debians_or_made_from_its_sysroot(
    tmp_path, triplet
) -> None:
    import runpy
    from dataclasses import fields, replace

    from builder.python.compile import target_sysconfigdata
    from toolchain.provision import Toolchain
    from toolchain.target import ARMHF

    target = replace(ARMHF, name=triplet, triplet=triplet)
    paths = {f.name: tmp_path / f.name for f in fields(Toolchain) if f.name != "target"}
    tc = Toolchain(**paths, target=target)  # type: ignore[arg-type]
    config = tc.sysroot / f"usr/lib/python3.11/config-3.11-{triplet}"
    config.mkdir(parents=True)
    (config / "Makefile").write_text(f"MULTIARCH=\t{triplet}\nSOABI=\tcpython-311-$(MULTIARCH)\n")
    include = tc.sysroot / "usr/include" / triplet / "python3.11"
    include.mkdir(parents=True)
    (include / "pyconfig.h").write_text("#define SIZEOF_VOID_P 4\n/* #undef HAVE_FORK1 */\n")
    name, text = target_sysconfigdata(tc)
    assert name == f"_sysconfigdata__{triplet}"
    (tmp_path / "data.py").write_bytes(text)
    data = runpy.run_path(str(tmp_path / "data.py"))["build_time_vars"]
    assert data["MULTIARCH"] == triplet and data["SOABI"] == f"cpython-311-{triplet}"
    assert data["SIZEOF_VOID_P"] == 4 and data["HAVE_FORK1"] == 0
    debian = tc.runtime / "usr/lib/python3.11" / f"{name}.py"
    debian.parent.mkdir(parents=True)
    debian.write_text("build_time_vars = {'MULTIARCH': 'Debian'}\n")
    assert target_sysconfigdata(tc) == (name, debian.read_bytes())  # the locked runtime's own
    (config / "Makefile").unlink()
    debian.unlink()
    with pytest.raises(BuildError, match="Makefile: missing, so sysconfig's data for"):
        target_sysconfigdata(tc)
