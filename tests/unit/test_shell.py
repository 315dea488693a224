"""init/shell.py: the console's Python shell and traceback lines, against code and traceback."""

from __future__ import annotations

import codeop
import traceback

import pytest

from init import shell


def _raise_chain() -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        raise RuntimeError("while looking") from exc


def _frames_only(lines: list[str]) -> list[str]:
    """traceback's text without its source lines and carets (no source ships with PID 1)."""
    out = []
    for chunk in lines:
        for line in chunk.removesuffix("\n").split("\n"):
            if line.startswith("    "):
                continue
            out.append(line)
    return out


@pytest.mark.parametrize(
    "make",
    [
        lambda: 1 / 0,
        _raise_chain,
        lambda: int("x"),
    ],
)
def test_traceback_lines_are_traceback_s_without_source(make) -> None:
    try:
        make()
    except Exception as exc:  # noqa: BLE001
        error = exc
    assert shell.traceback_lines(error) == _frames_only(traceback.format_exception(error))


def test_an_exception_raised_during_handling_keeps_its_context() -> None:
    try:
        try:
            raise ValueError("first")
        except ValueError:
            raise OSError(2, "second")  # noqa: B904
    except OSError as exc:
        lines = shell.traceback_lines(exc)
    assert "ValueError: first" in lines and shell.CONTEXT in lines
    assert lines[-1] == "FileNotFoundError: [Errno 2] second"


@pytest.mark.parametrize(
    "source",
    [
        "x = 1",
        "if x:",
        "if x:\n    y = 2",
        "if x:\n    y = 2\n",
        "def f(",
        "(1,\n2",
        "# only",
        "",
        "for i in range(3):\n    pass\n\n",
        "1 +",
        "x ==",
        "print('a')",
        "class C:\n  pass\n",
    ],
)
def test_compile_command_agrees_with_codeop(source: str) -> None:
    def outcome(compile_it) -> str:  # type: ignore[no-untyped-def]
        try:
            return "more" if compile_it() is None else "code"
        except SyntaxError:
            return "error"

    ours = outcome(lambda: shell.compile_command(source))
    assert ours == outcome(lambda: codeop.compile_command(source, "<console>", "single"))


def test_a_bad_line_is_a_syntax_error_like_codeop_s() -> None:
    with pytest.raises(SyntaxError):
        shell.compile_command("1 +* 2")
    with pytest.raises(SyntaxError):
        codeop.compile_command("1 +* 2", "<console>", "single")


def test_interact_runs_statements_blocks_and_shows_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    inputs = iter(
        [
            "x = 6 * 7",
            "x",
            "if x:",
            "    print('block', x)",
            "",
            "1 / 0",
            "1 +* 2",
            "print('still here')",
        ]
    )
    written: list[str] = []

    def read(prompt: str) -> str:
        written.append(prompt)
        try:
            return next(inputs)
        except StopIteration:
            raise EOFError from None

    namespace: dict[str, object] = {}
    shell.interact(namespace, "banner", read=read, write=written.append)
    out = capsys.readouterr().out
    assert out.splitlines() == ["42", "block 42", "still here"]
    assert namespace["x"] == 42
    assert written[0] == "banner" and "... " in written
    assert any("ZeroDivisionError: division by zero" in w for w in written)
    assert any("SyntaxError" in w for w in written)


def test_exit_leaves_the_shell() -> None:
    lines = iter(["raise SystemExit(3)", "print('never')"])
    with pytest.raises(SystemExit):
        shell.interact({}, "", read=lambda _p: next(lines), write=lambda _t: None)
