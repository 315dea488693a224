"""The console's Python shell and the traceback lines of a failure, without `code` and
`traceback`: those two bring tokenize, re, enum, collections, functools and more, about 0.45 MB
of the init binary, for paths that run only when something already went wrong.

interact() follows codeop's rule for when a statement is complete (compile with the flags the
interactive interpreter uses; "incomplete input" means read another line), and prints values
and errors as the interactive interpreter does.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType

PyCF_DONT_IMPLY_DEDENT = 0x200  # CPython's compile flags, as codeop uses them
PyCF_ALLOW_INCOMPLETE_INPUT = 0x4000
CAUSE = "The above exception was the direct cause of the following exception:"
CONTEXT = "During handling of the above exception, another exception occurred:"


def traceback_lines(exc: BaseException) -> list[str]:
    """traceback.format_exception(exc) without source lines (none ship): the chain of causes
    and contexts, each "Traceback (most recent call last):", its frames, its "Type: message"."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    note = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, note))
        if current.__cause__ is not None:
            current, note = current.__cause__, CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, note = current.__context__, CONTEXT
        else:
            current = None
    lines: list[str] = []
    for error, note_after in reversed(chain):
        tb = error.__traceback__
        if tb is not None:
            lines.append("Traceback (most recent call last):")
        while tb is not None:
            code = tb.tb_frame.f_code
            lines.append(f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}')
            tb = tb.tb_next
        text = str(error)
        name = type(error).__qualname__
        module = type(error).__module__
        if module not in ("builtins", "__main__"):
            name = f"{module}.{name}"
        lines.append(f"{name}: {text}" if text else name)
        if note_after:
            lines += ["", note_after, ""]
    return lines


def compile_command(source: str) -> CodeType | None:
    """codeop.compile_command(source, "<console>", "single"): a code object, None while the
    input is incomplete; SyntaxError (and the like) when it is wrong."""
    flags = PyCF_DONT_IMPLY_DEDENT | PyCF_ALLOW_INCOMPLETE_INPUT
    if all(not line.strip() or line.strip().startswith("#") for line in source.split("\n")):
        source = "pass"
    try:
        compile(source, "<console>", "single", flags, True)
    except SyntaxError:
        try:
            compile(source + "\n", "<console>", "single", flags, True)
            return None
        except SyntaxError as exc:
            if "incomplete input" in str(exc):
                return None
    return compile(source, "<console>", "single", PyCF_DONT_IMPLY_DEDENT, True)


def interact(
    namespace: dict[str, object],
    banner: str,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
) -> None:
    """Read, compile, run until end of input; SystemExit (exit()) ends it by propagating."""
    write(banner)
    lines: list[str] = []
    while True:
        try:
            line = read("... " if lines else ">>> ")
        except EOFError:
            write("")
            return
        except KeyboardInterrupt:
            write("\nKeyboardInterrupt")
            lines = []
            continue
        lines.append(line)
        try:
            code = compile_command("\n".join(lines))
        except (SyntaxError, ValueError, OverflowError) as exc:
            lines = []
            write("\n".join(traceback_lines(exc)))
            continue
        if code is None:
            continue
        lines = []
        try:
            exec(code, namespace)
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - the shell shows every error and goes on
            write("\n".join(traceback_lines(exc)))
