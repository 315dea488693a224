"""The kernel command line (/proc/cmdline) as words, split the way the kernel splits it."""

from __future__ import annotations

from init.config import Config
from init.errors import ConfigError, did_you_mean
from init.frozen import fields, replace
from init.validate import CMDLINE, SCALARS, BadValue, check, convert

# The kernel's isspace() for command-line parsing (lib/ctype.c).
SPACE = " \t\n\v\f\r"


def _words(text: str) -> list[str]:
    """Split like the kernel's next_arg(): double quotes group spaces and may sit anywhere."""
    words: list[str] = []
    i = 0
    while i < len(text):
        if text[i] in SPACE:
            i += 1
            continue
        start, quoted = i, False
        while i < len(text) and (quoted or text[i] not in SPACE):
            if text[i] == '"':
                quoted = not quoted
            i += 1
        words.append(text[start:i])
    return words


def _split(word: str) -> tuple[str, str]:
    # next_arg() drops a leading quote of the whole word, the quote opening the value and a
    # closing quote at the very end; quotes elsewhere stay.
    if word.startswith('"'):
        word = word[1:]
        if word.endswith('"'):
            word = word[:-1]
    key, equals, value = word.partition("=")
    if not equals:
        return key, ""
    if value.startswith('"'):
        value = value[1:]
        if value.endswith('"'):
            value = value[:-1]
    return key, value


def parse(text: str) -> dict[str, str]:
    """Map each word's name to its value; a bare word maps to "", a repeated name keeps the last.

    `foo="a b"` gives {"foo": "a b"}. The lone `--` that separates kernel parameters from init's
    arguments is skipped; words after it are kept, since /proc/cmdline shows them too.
    """
    words: dict[str, str] = {}
    for word in _words(text):
        if word == "--":
            continue
        key, value = _split(word)
        words.pop(key, None)  # re-insert so iteration order follows the last occurrence
        words[key] = value
    return words


def pinit_words(words: dict[str, str]) -> dict[str, str]:
    """The `pinit.*` words, names unchanged (as config.apply_cmdline expects them)."""
    return {key: value for key, value in words.items() if key.startswith("pinit.")}


def console_from_cmdline(words: dict[str, str]) -> str:
    """The last console= device name ("ttyAMA0" from "console=ttyAMA0,115200n8"), or ""."""
    device = words.get("console", "").partition(",")[0]
    return device.removeprefix("/dev/")


# ---- Overrides: `pinit.NAME=VALUE` words on top of the configuration.

TRUE_WORDS = ("", "1", "yes", "true", "on", "y")  # "" is a bare word: `pinit.debug`
FALSE_WORDS = ("0", "no", "false", "off", "n")


def _from_text(kind: str, text: str) -> object:
    if kind == "bool":
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise BadValue("expected 1 or 0 (or yes/no, true/false)")
    try:
        return int(text) if kind == "int" else float(text) if kind == "float" else text
    except ValueError:
        raise BadValue("expected an integer" if kind == "int" else "expected a number") from None


# Settings that take effect when the image is built, not at boot: the command line cannot
# change them (the reason is the warning).
# Facts, not settings: the boot slot and the tryboot flag, as a harness that plays the Pi's
# firmware passes them (the firmware itself puts them in the device tree; init/update.py).
FIRMWARE_WORDS = ("boot_partition", "tryboot")
BUILD_ONLY = {
    "early_start": "decided when the image is built (pinit.toml [init] early_start); "
    "pinit.shell or pinit.mode on the command line turn it off"
}


def apply_cmdline(config: Config, words: dict[str, str]) -> tuple[Config, list[str]]:
    """Apply `pinit.NAME=VALUE` words (other words are skipped) to top-level scalar settings.

    Never raises: a word that is unknown or has a bad value is left out and explained in the
    returned warnings, because a typo on the command line must not stop the boot.
    """
    settable = {
        f.name: str(f.type)
        for f in fields(Config)
        if f.type in SCALARS and f.name not in BUILD_ONLY
    }
    warnings: list[str] = []
    for word, text in words.items():
        if not word.startswith("pinit."):
            continue
        name = word[len("pinit.") :]
        if name in FIRMWARE_WORDS:
            continue
        if name in BUILD_ONLY:
            warnings.append(f"{CMDLINE}: {word}: {BUILD_ONLY[name]}; ignored")
            continue
        if name not in settable:
            hint = did_you_mean(name, settable, prefix="pinit.")
            warnings.append(f"{CMDLINE}: {word}: unknown setting{hint}; ignored")
            continue
        try:
            value = convert(
                Config, name, settable[name], _from_text(settable[name], text), CMDLINE, ""
            )
            changed = replace(config, **{name: value})  # type: ignore[arg-type]
            check(changed, CMDLINE)
        except BadValue as bad:
            warnings.append(f"{CMDLINE}: {word}={text}: {bad}; ignored")
            continue
        except ConfigError as err:
            warnings.append(f"{err}; ignored")
            continue
        config = changed
    return config, warnings
