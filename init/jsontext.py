"""JSON for PID 1 without `json`: a reader for /etc/pinit.json and a writer for what it reports.

The stdlib's `json` imports `re` and compiles its patterns at import time: about 0.25 s of the
init's start under QEMU, for a file of a few kilobytes. Here a document is read by CPython's
own C scanner (`_json`, built from Debian's source like the other C modules), strict: RFC 8259,
no NaN. What it does not take, a reader in Python reads again to name the error with line and
column like `json` does; it handles all of RFC 8259 too (tests compare both with `json.loads`
on many inputs). The writer is json.dumps for the init's plain data (tests compare the two);
with neither, the init carries no `json` and no `re`.
"""

from __future__ import annotations

import _json

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


def _no_constant(word: str) -> object:
    raise ValueError(f"{word} is not JSON")  # NaN and Infinity: json.loads takes them, RFC 8259 not


class _Strict:
    """What _json's scanner reads its options from: RFC 8259, plain dicts, exact numbers."""

    strict = True  # no control characters in strings
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_no_constant)


_scan = _json.make_scanner(_Strict)  # type: ignore[arg-type]  # it reads only these attributes


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
        c = text[pos : pos + 1]
        if c not in _WS:  # most often: no white space ("" is in _WS: the end is below)
            return c
        while True:  # a line's indentation at once, by C-level stripping
            chunk = text[pos : pos + 64]
            rest = chunk.lstrip(_WS)
            pos += len(chunk) - len(rest)
            if rest or len(chunk) < 64:
                break
        self.pos = pos
        return text[pos : pos + 1]

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
        # Most strings have neither escapes nor control characters: found by C-level searches
        # rather than a loop over their characters (the builder's file is ~100 of them).
        end = text.find('"', start)
        if end >= 0:
            plain = text[start:end]
            if "\\" not in plain and (not plain or min(plain) >= " "):
                self.pos = end + 1
                return plain
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
            if "." in word or "e" in word or "E" in word:
                if word.endswith((".", "e", "E", "+", "-")) or ".e" in word.lower():
                    raise ValueError(word)
                return float(word)
            return int(word)
        except ValueError:
            raise self.fail("Expecting value", start) from None


def loads(data: str | bytes) -> object:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    # CPython's own scanner reads a valid document; anything it does not take (bad syntax,
    # NaN, control characters, deep nesting) _Reader reads again and names, as always. Its
    # errors are not used: it raises them from `json.decoder`, which PID 1 does not carry.
    start = len(text) - len(text.lstrip(_WS))
    try:
        result, end = _scan(text, start)
        if not text[end:].strip(_WS):
            return result
    except Exception:  # noqa: BLE001 - any failure: the reader below reads and names it
        pass
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
