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
