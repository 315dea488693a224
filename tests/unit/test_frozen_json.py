"""init/frozen.py and init/jsontext.py: the boot-time stand-ins for dataclasses and json."""

from __future__ import annotations

import json
import random

import pytest

from init import jsontext
from init.frozen import FrozenInstanceError, field, fields, frozen, replace


@frozen
class Inner:
    x: int
    y: str = "a"


@frozen
class Outer:
    inner: Inner = field(default_factory=lambda: Inner(1))
    items: tuple[int, ...] = ()


def test_frozen_values_behave_like_frozen_dataclasses() -> None:
    a = Outer()
    assert a == Outer(Inner(1), ()) and hash(a) == hash(Outer())
    assert a != Outer(items=(1,))
    assert repr(Inner(2)) == "Inner(x=2, y='a')"
    assert [f.name for f in fields(Outer)] == ["inner", "items"]
    assert replace(a, items=(3,)).items == (3,) and a.items == ()
    with pytest.raises(FrozenInstanceError):
        a.items = (1,)  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing argument 'x'"):
        Inner()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected"):
        Inner(1, z=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="no field"):
        replace(a, nope=1)


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kinds = ["int", "float", "str", "bool", "null"] + (["list", "dict"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.randint(-(10**12), 10**12)
    if kind == "float":
        return rng.uniform(-1e6, 1e6) * rng.choice([1, 1e-9, 1e20])
    if kind == "str":
        alphabet = 'ab "\\/\n\t\x01é€😀\u2028'
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        str(_random_value(rng, 5)): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))
    }


@pytest.mark.parametrize("seed", range(200))
def test_reader_agrees_with_json_on_random_documents(seed: int) -> None:
    rng = random.Random(seed)
    doc = _random_value(rng)
    for text in (json.dumps(doc), json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True)):
        assert jsontext.loads(text) == json.loads(text)
        assert jsontext._Reader(text).value() == json.loads(text)  # what names the errors


@pytest.mark.parametrize(
    "bad",
    [
        '{"a": 1,}',
        "[1 2]",
        '{"a" 1}',
        '"abc',
        "01",
        "1.",
        "-",
        '{"a": tru}',
        "[1] x",
        '"\\x"',
        '"\\u12"',
        '"a\nb"',
        "",
    ],
)
def test_reader_rejects_what_json_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(jsontext.JSONError, match="line 1 column"):
        jsontext.loads(bad)


def test_the_scanner_reads_what_the_builder_writes() -> None:
    from init.config import Config, Service
    from init.validate import to_dict

    config = Config(services=(Service(name="app", exec="/app/app", env=(("A", "b c"),)),))
    text = json.dumps(to_dict(config), indent=1, sort_keys=True)
    assert jsontext._scan(text, 0)[0] == json.loads(text)


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', '"a\tb"', "[1]]"])
def test_what_the_scanner_refuses_the_reader_names(text: str) -> None:
    """The scanner is strict (no NaN, no raw control character) and the reader agrees."""
    with pytest.raises(jsontext.JSONError, match="line 1 column"):
        jsontext.loads(text)


def test_white_space_around_a_document_is_read() -> None:
    assert jsontext.loads(' \n\t{"a": [1, 2.5, "x"]}\r\n ') == {"a": [1, 2.5, "x"]}


def test_error_names_line_and_column() -> None:
    with pytest.raises(jsontext.JSONError, match="line 3 column 7"):
        jsontext.loads('{\n "a": 1,\n "b": ?\n}')


def test_config_file_that_is_not_an_object_is_a_config_error(tmp_path) -> None:
    from init.configfile import parse
    from init.errors import ConfigError

    with pytest.raises(ConfigError, match="expected a JSON object, found list"):
        parse(b"[1, 2]", str(tmp_path / "pinit.json"))


WRITTEN = [
    None,
    True,
    False,
    0,
    -7,
    2**70,
    1.5,
    -0.0,
    1e300,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    "plain",
    'quote " and \\ backslash',
    "tab\tnew\nline\r\b\f",
    "\x00\x1f\x7f",
    "ünïcødé ✓",
    [],
    {},
    [1, [2, [3, {}]]],
    {"a": 1, "b": [True, None], "c": {"d": "e"}},
    {2: "int key", True: "bool key", None: "none key", 2.5: "float key"},
    ("tuple", "too"),
    {"nested": [{"x": []}, {"y": {}}]},
]


@pytest.mark.parametrize("value", WRITTEN, ids=repr)
@pytest.mark.parametrize("style", [{}, {"indent": 1}, {"indent": 2}, {"separators": (",", ":")}])
def test_the_writer_is_json_dumps(value: object, style: dict) -> None:
    assert jsontext.dumps(value, **style) == json.dumps(value, ensure_ascii=False, **style)


def test_the_writer_shows_other_values_as_text_and_refuses_bad_keys() -> None:
    import datetime

    day = datetime.date(2026, 12, 1)
    assert jsontext.dumps({"when": day}) == json.dumps({"when": day}, default=str)
    with pytest.raises(TypeError, match="keys must be"):
        jsontext.dumps({(1, 2): "x"})
