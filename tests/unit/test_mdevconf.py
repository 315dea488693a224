"""/etc/mdev.conf lines → [[device]] rules, notes, or listed reasons."""

from __future__ import annotations

import pytest

from builder.convert.mdev import glob_of, translate
from init.config import Device


@pytest.mark.parametrize(
    "regex, glob",
    [
        ("ttyUSB[0-9]*", "ttyUSB*"),
        ("null", "null"),
        ("sd[a-z].*", "sd[a-z]*"),
        ("gpiochip[0-9]+", "gpiochip*"),
        ("i2c-[0-9]", "i2c-[0-9]"),
        ("(tty|pts)[0-9]", None),
    ],
)
def test_simple_regexes_become_globs(regex: str, glob: str | None) -> None:
    assert glob_of(regex) == glob


def test_a_classic_mdev_conf() -> None:
    conf = """
# the usual
null        root:root 666
ttyUSB[0-9]* root:dialout 660 >modem
sd[a-z][0-9] root:disk 660 */sbin/automount.sh
(tty|pts).* root:tty 620
hwrng       nobody:rng 640
"""
    rules, report = translate(conf, group="dialout:x:20:\ndisk:x:6:\nrng:x:990:\n")
    assert rules == [
        Device(kernel="null", mode=0o666),
        Device(kernel="ttyUSB*", gid=20, mode=0o660, symlink="modem"),
        Device(kernel="sd[a-z][0-9]", gid=6, mode=0o660),
    ]
    text = "\n".join(report)
    assert "line 5 `sd[a-z][0-9] root:disk 660 */sbin/automount.sh`: noted: its mount" in text
    assert "line 6 `(tty|pts).* root:tty 620`: NOT translated: the regex" in text
    assert "line 7 `hwrng       nobody:rng 640`: NOT translated: nobody:rng is not in" in text
