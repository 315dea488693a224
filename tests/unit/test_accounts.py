"""[[user]]/[[group]]: names resolved to numbers for the init, /etc/passwd and /etc/group."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.config import load_build_config
from hostkit.errors import BuildError

ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + (2).to_bytes(2, "little") + (183).to_bytes(2, "little")


def config(tmp_path: Path, text: str):
    (tmp_path / "app").write_bytes(ELF + b"\0" * 44)
    (tmp_path / "pinit.toml").write_text(
        text + '\n[[service]]\nname = "s"\nexec = "app"\nuser = "app"\n'
    )
    return load_build_config(tmp_path / "pinit.toml")


def test_a_named_user_brings_its_groups_and_the_files_list_them(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        '[[group]]\nname = "gpio"\ngid = 997\n'
        '[[user]]\nname = "app"\nuid = 1000\ngroups = ["gpio"]\n',
    )
    (service,) = cfg.init.services
    assert (service.user, service.group, service.groups) == (1000, 1000, (997,))
    assert cfg.accounts.passwd() == b"root:x:0:0:root:/:/bin/false\napp:x:1000:1000::/:/bin/false\n"
    assert cfg.accounts.group() == b"root:x:0:\ngpio:x:997:app\napp:x:1000:\n"


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '[[user]]\nname = "app"\nuid = 1000\ngroups = ["gpoi"]\n'
            '[[group]]\nname = "gpio"\ngid = 997\n',
            r'groups = "gpoi": no such \[\[group\]\] \(did you mean "gpio"',
        ),
        ('[[user]]\nname = "apx"\nuid = 1000\n', r'user = "app": no such \[\[user\]\]'),
        ('[[user]]\nname = "app"\nuid = 0\n', r"uid = 0: expected a number from 1"),
        ('[[user]]\nname = "App"\nuid = 5\n', r'name = "App": expected a lower-case name'),
        ('[[user]]\nname = "app"\nuid = 5\nhome = "/"\n', r"home: unknown key"),
    ],
)
def test_bad_accounts_are_build_errors_that_say_where(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(BuildError, match=message):
        config(tmp_path, text)
