"""One way to run a host tool: logged, with a pinned environment, failing with one error type."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from hostkit.errors import BuildError

# Fixed default so two builds on different days give the same bytes (2024-01-01T00:00:00Z).
DEFAULT_SOURCE_DATE_EPOCH = 1704067200


def source_date_epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_SOURCE_DATE_EPOCH))


def pinned_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "SOURCE_DATE_EPOCH": str(source_date_epoch()),
        }
    )
    if extra:
        env.update(extra)
    return env


def log(message: str) -> None:
    print(f"pinit: {message}", file=sys.stderr, flush=True)


def run(
    cmd: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    capture: bool = False,
    quiet: bool = False,
    input: bytes | None = None,
    output: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run `cmd`; raise BuildError naming the command and its exit status if it fails.

    `capture`: keep stdout and stderr (in the result); `output`: send both to that file (a
    long tool's log); `check=False`: return the result whatever the exit status."""
    argv = [str(c) for c in cmd]
    if not quiet:
        log("$ " + shlex.join(argv))
    try:
        if output is not None:
            with output.open("wb") as sink:
                proc = subprocess.run(
                    argv,
                    env=pinned_env(env),
                    cwd=cwd,
                    input=input,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
        else:
            proc = subprocess.run(
                argv,
                env=pinned_env(env),
                cwd=cwd,
                input=input,
                stdout=subprocess.PIPE if capture else None,
                stderr=subprocess.PIPE if capture else None,
            )
    except FileNotFoundError as exc:
        raise BuildError(
            f"{argv[0]}: command not found", hint="run `invoke toolchain` to install the host tools"
        ) from exc
    if proc.returncode != 0 and check:
        detail = ""
        if capture and proc.stderr:
            lines = proc.stderr.decode(errors="replace").strip().splitlines() or [""]
            # A compiler's last line ("compilation terminated.") says less than its error.
            errors = [ln for ln in lines if "error" in ln.lower()]
            detail = ": " + (errors[0] if errors else lines[-1])
        raise BuildError(f"{shlex.join(argv)} exited with status {proc.returncode}{detail}")
    return proc


@contextmanager
def step(what: str) -> Iterator[None]:
    """Print what a long step does and how long it took."""
    log(f"{what} ...")
    start = time.monotonic()
    yield
    log(f"{what}: done in {time.monotonic() - start:.1f} s")
