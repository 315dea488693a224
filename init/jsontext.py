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


# The fast path, for JSON as the builder writes it (no escapes, numbers without exponents): the
# text split at its quotes and cut into tokens by C-level string methods, then one pass over
# about 250 tokens instead of a step per character. What it might read differently from _Reader
# (escapes, exponents, bad syntax, deep nesting) it leaves to _Reader, which then reads the
# whole text and names any error as always.
_SKELETON = frozenset(' \t\n\r{}[]:,"-.0123456789truefalsn')  # all a skeleton may hold
_DEPTH = 100  # deeper than any config; _Reader's own recursion decides beyond


class _NotPlain(Exception):
    pass


def _scalar_word(word: str) -> object:
    if word == "true":
        return True
    if word == "false":
        return False
    if word == "null":
        return None
    whole, dot, fraction = (word[1:] if word[:1] == "-" else word).partition(".")
    # Only ASCII digits get here (_SKELETON); JSON has no leading zeros.
    if not whole.isdigit() or (len(whole) > 1 and whole[0] == "0"):
        raise _NotPlain
    if not dot:
        return int(word)
    if not fraction.isdigit():
        raise _NotPlain
    return float(word)


def _plain(text: str) -> object:
    """`text` read on the fast path, or _NotPlain (also StopIteration, ValueError)."""
    if "\\" in text:
        raise _NotPlain
    parts = text.split('"')
    if not len(parts) % 2:
        raise _NotPlain
    strings = parts[1::2]
    for string in strings:
        if string and min(string) < " ":
            raise _NotPlain
    skeleton = '"'.join(parts[::2])  # each string taken out: one '"' stands for it
    if not _SKELETON.issuperset(skeleton):
        raise _NotPlain
    for char in '{}[]:,"':
        skeleton = skeleton.replace(char, f" {char} ")
    words, texts = iter(skeleton.split()), iter(strings)

    def value(word: str, depth: int) -> object:
        if word == '"':
            return next(texts)
        if word == "{":
            if depth > _DEPTH:
                raise _NotPlain
            obj: dict[str, object] = {}
            word = next(words)
            if word == "}":
                return obj
            while True:
                if word != '"' or next(words) != ":":
                    raise _NotPlain
                key = next(texts)
                obj[key] = value(next(words), depth + 1)
                word = next(words)
                if word == "}":
                    return obj
                if word != ",":
                    raise _NotPlain
                word = next(words)
        if word == "[":
            if depth > _DEPTH:
                raise _NotPlain
            array: list[object] = []
            word = next(words)
            if word == "]":
                return array
            while True:
                array.append(value(word, depth + 1))
                word = next(words)
                if word == "]":
                    return array
                if word != ",":
                    raise _NotPlain
                word = next(words)
        if word in _PUNCTUATION:
            raise _NotPlain
        return _scalar_word(word)

    result = value(next(words), 0)
    if next(words, ""):
        raise _NotPlain
    return result


_PUNCTUATION = frozenset('{}[]:,"')


def loads(data: str | bytes) -> object:
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        return _plain(text)
    except (_NotPlain, StopIteration, ValueError):
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
