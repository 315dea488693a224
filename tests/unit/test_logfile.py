"""init/logfile.py with the real kernel seam on a temporary folder: whole lines, a bound, one
rotation that never rewrites the older file."""

from __future__ import annotations

from pathlib import Path


def test_lines_are_kept_bounded_and_rotated(host_sys, tmp_path: Path) -> None:
    from init.kernel import Kernel
    from init.logfile import LogFile

    said: list[str] = []
    log = LogFile(Kernel(), str(tmp_path / "log"), "talker", 4096, said.append)  # type: ignore[arg-type]
    for i in range(100):
        log.append(f"line {i:03d} ".encode() + b"x" * 80 + b"\n")
    log.close()
    current = (tmp_path / "log/talker.log").read_bytes()
    older = (tmp_path / "log/talker.log.1").read_bytes()
    assert len(current) <= 4096 and len(older) <= 4096 and not said
    assert current.endswith(b"\n") and older.endswith(b"\n")
    assert current.splitlines()[-1].startswith(b"line 099 ")
    # The older file ends where the current one begins: nothing lost between them.
    last_old = int(older.splitlines()[-1][5:8])
    first_new = int(current.splitlines()[0][5:8])
    assert first_new == last_old + 1


def test_an_unwritable_folder_is_said_once_and_the_service_goes_on(host_sys, tmp_path) -> None:
    from init.kernel import Kernel
    from init.logfile import LogFile

    (tmp_path / "log").write_text("a file, not a folder")
    said: list[str] = []
    log = LogFile(Kernel(), str(tmp_path / "log"), "talker", 4096, said.append)  # type: ignore[arg-type]
    log.append(b"one\n")
    log.append(b"two\n")
    assert len(said) == 1 and "cannot write" in said[0]
