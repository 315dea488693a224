"""Which appliances get early start, and the record the init's C prologue reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.config import load_build_config
from builder.image import early_start

ELF_AARCH64 = (b"\x7fELF\x02\x01\x01" + b"\0" * 9 + (2).to_bytes(2, "little")
               + (183).to_bytes(2, "little") + b"\0" * 44)


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


def test_record_lists_path_cwd_argv_and_env_nul_separated(tmp_path: Path) -> None:
    record = early_start(config(tmp_path))
    assert record is not None
    fields = record.split(b"\0")
    assert fields[-1] == b"" and fields[0] == b"pinit-early-1"
    assert fields[1:7] == [b"/app/app", b"/", b"3", b"/app/app", b"--fast", b"x y"]
    envc = int(fields[7])
    env = fields[8:8 + envc]
    assert b"GREETING=hi" in env and any(e.startswith(b"PATH=") for e in env)
    assert len(fields) == 8 + envc + 1


@pytest.mark.parametrize("extra, service", [
    ('[kernel]\nmodules = ["dummy"]', ""),              # the app may need the module
    ('[data]\nsize = "16MiB"', ""),                     # ... or the data partition
    ('[init]\nmode = "exec"', ""),                      # exec mode has no supervisor to adopt it
    ('[init]\nearly_start = false', ""),                # turned off
    ("", "user = 1000"),                                # the prologue does not change users
])
def test_apps_that_need_more_than_the_early_file_systems_wait(tmp_path: Path, extra: str,
                                                                  service: str) -> None:
    assert early_start(config(tmp_path, extra, service)) is None
