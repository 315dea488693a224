"""The kernel command line (/proc/cmdline) as words, split the way the kernel splits it."""

from __future__ import annotations

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
