"""init/cmdline.py: /proc/cmdline split the way the kernel splits it."""

from __future__ import annotations

import pytest

from init.cmdline import console_from_cmdline, parse, pinit_words

PI = (
    "coherent_pool=1M 8250.nr_uarts=1 console=ttyS0,115200 console=tty1 "
    "root=PARTUUID=1234-02 rootfstype=ext4 fsck.repair=yes rootwait quiet "
    "pinit.debug pinit.hostname=kiosk\n"
)


def test_plain_words_and_bare_words() -> None:
    words = parse(PI)
    assert words["root"] == "PARTUUID=1234-02"  # only the first "=" splits
    assert words["8250.nr_uarts"] == "1"
    assert words["rootwait"] == "" and words["pinit.debug"] == ""
    assert words["pinit.hostname"] == "kiosk"  # the trailing newline is not part of it
    assert "" not in words


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('foo="a b"', "foo", "a b"),
        ('foo="a b" bar', "foo", "a b"),
        ('"foo=a b"', "foo", "a b"),  # a quote before the name, as next_arg() allows
        ('foo=a" "b', "foo", 'a" "b'),  # quotes inside the value stay
        ('dyndbg="file x.c +p"  next=1', "dyndbg", "file x.c +p"),
        ('foo=""', "foo", ""),
        ("tab\tfoo=1", "foo", "1"),
    ],
)
def test_quotes_group_spaces(text: str, key: str, value: str) -> None:
    assert parse(text)[key] == value


def test_repeated_word_keeps_the_last_value() -> None:
    words = parse("a=1 b=2 a=3")
    assert words == {"b": "2", "a": "3"}
    assert list(words) == ["b", "a"]


def test_double_dash_is_skipped_and_later_words_kept() -> None:
    assert parse("quiet -- pinit.shell=1 extra") == {"quiet": "", "pinit.shell": "1", "extra": ""}


def test_empty_cmdline() -> None:
    assert parse("") == {} and parse(" \n") == {}


def test_pinit_words_keep_their_prefix() -> None:
    assert pinit_words(parse(PI)) == {"pinit.debug": "", "pinit.hostname": "kiosk"}
    assert pinit_words({"pinitx": "1", "xpinit.a": "2"}) == {}


@pytest.mark.parametrize(
    ("text", "device"),
    [
        (PI, "tty1"),
        ("console=tty1 console=ttyAMA0,115200n8", "ttyAMA0"),
        ("console=/dev/ttyS1", "ttyS1"),
        ("quiet", ""),
    ],
)
def test_console_is_the_last_one_without_options(text: str, device: str) -> None:
    assert console_from_cmdline(parse(text)) == device


def test_a_build_only_setting_on_the_command_line_is_ignored_with_the_reason() -> None:
    from init.cmdline import apply_cmdline
    from init.config import Config

    config, warnings = apply_cmdline(Config(), {"pinit.early_start": "0"})
    assert config == Config()
    assert warnings == [
        "kernel command line: pinit.early_start: decided when the image is "
        "built (pinit.toml [init] early_start); pinit.shell or pinit.mode on the "
        "command line turn it off; ignored"
    ]
