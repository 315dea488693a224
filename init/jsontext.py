"""JSON for PID 1 without `json`: a reader for /etc/pinit.json and a writer for what it reports.

The stdlib's `json` imports `re` and compiles its patterns at import time; Debian's static
libpython has no `_json` accelerator either. Together that is about 0.25 s of the init's start
under QEMU, for a file of about a kilobyte. This reader handles all of RFC 8259 (the builder
writes it with `json.dumps`, and tests compare it with `json.loads` on many inputs) and reports
errors with line and column like `json` does. The writer is json.dumps for the init's plain
data (tests compare the two); with neither, the init carries no `json` and no `re`.
"""

from __future__ import annotations

# Names for type checkers only: _collections_abc is 25 ABCs to build at boot.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_WS = " \t\n\r"
_NUMBER_CHARS = frozenset("0123456789+-.eE")
_LITERALS = (("true", True), ("false", False), ("null", None))


class JSONError(ValueError):
    pass


class _Reader:
    __slots__ = ("text", "pos")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str, pos: int | None = None) -> JSONError:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        column = pos - self.text.rfind("\n", 0, pos)
        return JSONError(f"{what}: line {line} column {column} (char {pos})")

    def skip(self) -> str:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _WS:
            pos += 1
        self.pos = pos
        return text[pos] if pos < len(text) else ""

    def value(self) -> object:
        c = self.skip()
        if c == "{":
            return self.obj()
        if c == "[":
            return self.array()
        if c == '"':
            return self.string()
        if c and (c in "-0123456789"):
            return self.number()
        for word, result in _LITERALS:
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return result
        raise self.fail("Expecting value")

    def obj(self) -> dict[str, object]:
        self.pos += 1
        out: dict[str, object] = {}
        if self.skip() == "}":
            self.pos += 1
            return out
        while True:
            if self.skip() != '"':
                raise self.fail("Expecting property name enclosed in double quotes")
            key = self.string()
            if self.skip() != ":":
                raise self.fail("Expecting ':' delimiter")
            self.pos += 1
            out[key] = self.value()
            c = self.skip()
            self.pos += 1
            if c == "}":
                return out
            if c != ",":
                raise self.fail("Expecting ',' delimiter", self.pos - 1)

    def array(self) -> list[object]:
        self.pos += 1
        out: list[object] = []
        if self.skip() == "]":
            self.pos += 1
            return out
        while True:
            out.append(self.value())
            c = self.skip()
            self.pos += 1
            if c == "]":
                return out
            if c != ",":
                raise self.fail("Expecting ',' delimiter", self.pos - 1)

    def string(self) -> str:
        text = self.text
        start = self.pos + 1
        parts: list[str] = []
        pos = start
        while True:
            end = pos
            while end < len(text) and text[end] not in '"\\' and text[end] >= " ":
                end += 1
            parts.append(text[pos:end])
            if end >= len(text):
                raise self.fail("Unterminated string starting at", start - 1)
            c = text[end]
            if c == '"':
                self.pos = end + 1
                return "".join(parts)
            if c != "\\":
                raise self.fail("Invalid control character at", end)
            esc = text[end + 1 : end + 2]
            if esc == "u":
                parts.append(self.unicode_escape(end))
                pos = end + 6
                if 0xD800 <= ord(parts[-1]) <= 0xDBFF and text.startswith("\\u", pos):
                    low = self.unicode_escape(pos)
                    if 0xDC00 <= ord(low) <= 0xDFFF:
                        high = parts.pop()
                        parts.append(
                            chr(0x10000 + ((ord(high) - 0xD800) << 10) + ord(low) - 0xDC00)
                        )
                        pos += 6
            elif esc in _ESCAPES:
                parts.append(_ESCAPES[esc])
                pos = end + 2
            else:
                raise self.fail("Invalid \\escape", end)

    def unicode_escape(self, pos: int) -> str:
        digits = self.text[pos + 2 : pos + 6]
        if len(digits) != 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
            raise self.fail("Invalid \\uXXXX escape", pos)
        return chr(int(digits, 16))

    def number(self) -> int | float:
        text, start = self.text, self.pos
        end = start
        while end < len(text) and text[end] in _NUMBER_CHARS:
            end += 1
        word = text[start:end]
        digits = word.lstrip("-")
        integer = digits.split(".")[0].split("e")[0].split("E")[0]
        if (
            not integer
            or (len(integer) > 1 and integer[0] == "0")
            or word.count("-") > 1 + ("e-" in word.lower())
        ):
            raise self.fail("Expecting value", start)
        self.pos = end
        try:
            if any(c in word for c in ".eE"):
                if word.endswith((".", "e", "E", "+", "-")) or ".e" in word.lower():
                    raise ValueError(word)
                return float(word)
            return int(word)
        except ValueError:
            raise self.fail("Expecting value", start) from None


def loads(data: str | bytes) -> object:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    reader = _Reader(text)
    result = reader.value()
    if reader.skip():
        raise reader.fail("Extra data")
    return result


_QUOTE = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _quote(text: str) -> str:
    out = []
    for char in text:
        if char in _QUOTE:
            out.append(_QUOTE[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _scalar(value: object) -> str | None:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return None


def dumps(
    value: object,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    default: Callable[[object], object] = str,
) -> str:
    """json.dumps(value, ensure_ascii=False, indent=..., separators=..., default=...)."""
    item_sep, key_sep = separators or ((",", ": ") if indent is not None else (", ", ": "))

    def block(opening: str, closing: str, items: list[str], level: int) -> str:
        if not items:
            return opening + closing
        if indent is None:
            return opening + item_sep.join(items) + closing
        inner = "\n" + " " * (indent * (level + 1))
        return (
            opening
            + inner
            + (item_sep + inner).join(items)
            + "\n"
            + " " * (indent * level)
            + closing
        )

    def encode(item: object, level: int) -> str:
        text = _scalar(item)
        if text is not None:
            return text
        if isinstance(item, (list, tuple)):
            return block("[", "]", [encode(x, level + 1) for x in item], level)
        if isinstance(item, dict):
            pairs = []
            for key, x in item.items():
                name = key if isinstance(key, str) else _scalar(key)
                if name is None:
                    raise TypeError(
                        f"keys must be str, int, float, bool or None, not {type(key).__name__}"
                    )
                pairs.append(
                    (_quote(name) if isinstance(key, str) else f'"{name}"')
                    + key_sep
                    + encode(x, level + 1)
                )
            return block("{", "}", pairs, level)
        return encode(default(item), level)

    return encode(value, 0)
