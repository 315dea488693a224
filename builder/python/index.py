"""The machine's pip index, read the way pip reads it, for what pip's commands cannot give.

`pip download` of an sdist first prepares its metadata, which runs the package's build backend
on this machine: that needs its build requirements, and for meson-python (numpy) a whole build.
pinit needs only the file. Here pip's own PackageFinder, configured by pip's own option parser
(pip.conf, PIP_* variables, extra indexes, find-links, certificates), lists a release's files,
and pip's own session downloads one. pip is the virtualenv's (Debian's python3.11-venv).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from hostkit.errors import BuildError
from hostkit.run import run

SCRIPT = r"""
import json, sys
from pip._internal.commands import create_command

cmd = create_command("download")
options, _ = cmd.parse_args(["--no-deps", "--disable-pip-version-check", "pinit"])
with cmd.main_context():
    session = cmd.get_default_session(options)
    if sys.argv[1] == "find":
        target = None
        if len(sys.argv) > 4:   # the Pi's CPython 3.11 on glibc 2.36: its wheels, not ours
            from pip._internal.models.target_python import TargetPython
            platforms = [f"manylinux_2_{n}_{sys.argv[4]}" for n in range(36, 16, -1)]
            target = TargetPython(platforms=[*platforms, f"manylinux2014_{sys.argv[4]}"],
                                  py_version_info=(3, 11), abis=["cp311", "abi3", "none"],
                                  implementation="cp")
        finder = cmd._build_package_finder(options=options, session=session,
                                           target_python=target)
        files = {}
        for c in finder.find_all_candidates(sys.argv[2]):
            if str(c.version) == sys.argv[3] and c.link.hash_name == "sha256":
                files.setdefault(c.link.filename, {"filename": c.link.filename,
                                                   "url": c.link.url, "sha256": c.link.hash})
        json.dump(list(files.values()), sys.stdout)
    else:
        url, dest = sys.argv[2:4]
        if url.startswith("file://"):
            from pip._internal.utils.urls import url_to_path
            with open(url_to_path(url), "rb") as src, open(dest, "wb") as out:
                out.write(src.read())
        else:
            response = session.get(url, stream=True)
            response.raise_for_status()
            with open(dest, "wb") as out:
                for chunk in response.iter_content(1 << 16):
                    out.write(chunk)
"""


@dataclass(frozen=True)
class File:
    filename: str
    url: str
    sha256: str

    @property
    def is_sdist(self) -> bool:
        return self.filename.endswith((".tar.gz", ".zip"))

    def is_for(self, machine: str) -> bool:
        """A binary wheel for `machine` (aarch64, armv7l: its platform tags' machine)."""
        return self.filename.endswith(f"_{machine}.whl")


def _pip(args: list[str], what: str) -> bytes:
    proc = run([sys.executable, "-c", SCRIPT, *args], capture=True, quiet=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise BuildError(
            f"{what}: the pip index could not be read: {last}",
            hint="check the machine's pip settings (pip config list)",
        )
    return proc.stdout


def files(name: str, version: str, machine: str = "") -> list[File]:
    """The files of `name==version` on the index that this machine can take (pure wheels,
    host wheels, and the sdist), or with `machine` (a wheel platform tag's machine: "aarch64")
    that the Pi's CPython 3.11 on Debian 12 can, each with its sha256."""
    args = ["find", name, version, *([machine] if machine else [])]
    return [File(**f) for f in json.loads(_pip(args, f"{name} {version}"))]


def download(file: File, dest: Path) -> None:
    _pip(["get", file.url, str(dest)], file.filename)
