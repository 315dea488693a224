"""Each classic /init of tests/corpus, booted twice in QEMU: as it is (busybox, the script) and
converted by `invoke image --from` (pinit, no shell). Both boots must show the same console
lines, which the script lists in its `# expect:` comments: the probe program's output, its
arguments, environment, working directory, host name, the dummy interfaces its modules made,
and how often it was restarted. The conversion's report is checked against a golden file by
tests/unit/test_convert_corpus.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_convert_boot import classic_folder

from builder.convert import rebuild
from builder.convert.sh import parse
from builder.formats import cpio
from builder.qemu import harness
from hostkit.paths import REPO
from tests.shcases import INVALID, VALID
from toolchain.provision import Toolchain

pytestmark = pytest.mark.qemu

CORPUS = REPO / "tests" / "corpus"
CASES = sorted(p.stem for p in CORPUS.glob("*.sh"))

# Prints one line of what it sees; exits 1 while it has run at most $PROBE_CRASHES times
# (counted in /tmp, which outlives a restart), then stays up.
PROBE_C = r"""
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
int main(int argc, char **argv) {
    const char *tag = argc > 1 ? argv[1] : "app";
    char path[160], cwd[256] = "?";
    int runs = 0, dummies = 0;
    snprintf(path, sizeof path, "/tmp/probe-%s.runs", tag);
    FILE *f = fopen(path, "r");
    if (f) { if (fscanf(f, "%d", &runs) != 1) runs = 0; fclose(f); }
    runs++;
    if ((f = fopen(path, "w"))) { fprintf(f, "%d\n", runs); fclose(f); }
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
    DIR *d = opendir("/sys/class/net");
    struct dirent *e;
    if (d) { while ((e = readdir(d))) if (!strncmp(e->d_name, "dummy", 5)) dummies++; closedir(d); }
    struct utsname u;
    uname(&u);
    const char *mode = getenv("APP_MODE");
    printf("PROBE %s run=%d cwd=%s mode=%s dummies=%d args=", tag, runs, cwd, mode ? mode : "-",
           dummies);
    for (int i = 2; i < argc; i++) printf("%s%s", i > 2 ? "," : "", argv[i]);
    printf(" host=%s\n", u.nodename);
    fflush(stdout);
    const char *crashes = getenv("PROBE_CRASHES");
    if (crashes && runs <= atoi(crashes)) { printf("PROBE %s exits\n", tag); fflush(stdout); return 1; }
    printf("PROBE %s up\n", tag);
    fflush(stdout);
    for (;;) pause();
}
"""


def expected(case: str) -> list[str]:
    lines = (CORPUS / f"{case}.sh").read_text().splitlines()
    return [line.split("# expect: ", 1)[1].rstrip() for line in lines if "# expect: " in line]


@pytest.fixture(scope="module")
def probe(cc) -> Path:
    return cc("probe", PROBE_C)


# Runs `busybox sh -n` on every snippet and says what it thought of each.
SYNTAX_INIT = """#!/bin/sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
for f in /cases/*.sh; do
    if /bin/busybox sh -n "$f" 2>/dev/null; then echo "SH-N $f accepted"; else echo "SH-N $f refused"; fi
done
echo SH-N-DONE
/bin/busybox poweroff -f
"""


def test_the_parser_accepts_and_refuses_what_busybox_sh_does(
    toolchain: Toolchain, probe: Path, tmp_path: Path
) -> None:
    texts = [*VALID, *INVALID, *(p.read_text() for p in sorted(CORPUS.glob("*.sh")))]
    folder = classic_folder(
        toolchain,
        probe,
        tmp_path / "classic",
        SYNTAX_INIT,
        tuple(cpio.File(f"cases/{i:03d}.sh", text.encode()) for i, text in enumerate(texts)),
    )
    with harness.plan(folder, machine="virt") as plan:
        result = harness.run(plan, expect=["SH-N-DONE"], timeout=60, log=tmp_path / "boot.log")
    assert result.ok, result.reason + "\n" + "\n".join(result.lines[-20:])
    busybox = {
        int(line.split("/cases/")[1][:3]): line.split()[-1] == "accepted"
        for line in result.lines
        if line.startswith("SH-N /cases/")
    }
    assert len(busybox) == len(texts)
    for i, text in enumerate(texts):
        try:
            parse.parse(text)
            ours = True
        except parse.ParseError:
            ours = False
        assert ours == busybox[i], f"busybox sh {'accepts' if busybox[i] else 'refuses'}: {text!r}"


def boot(folder: Path, case: str, log: Path) -> harness.BootResult:
    with harness.plan(folder, machine="virt") as plan:
        return harness.run(plan, expect=expected(case), timeout=90, log=log)


@pytest.mark.parametrize("case", CASES)
def test_corpus_boots_the_same_before_and_after(
    case: str, toolchain: Toolchain, built_init: Path, probe: Path, tmp_path: Path
) -> None:
    assert expected(case), f"tests/corpus/{case}.sh lists no `# expect:` line"
    folder = classic_folder(
        toolchain,
        probe,
        tmp_path / "classic",
        (CORPUS / f"{case}.sh").read_text(),
        (
            cpio.File.from_host("app/probe", probe, 0o755),
            cpio.File.from_host("opt/probe", probe, 0o755),
            cpio.Dir("tmp"),
            cpio.Dir("sbin"),
            cpio.Dir("usr"),
            cpio.Dir("usr/bin"),
            cpio.Dir("usr/sbin"),
        ),
    )
    before = boot(folder, case, tmp_path / "busybox.log")
    assert before.ok, "under busybox: " + before.reason + "\n" + "\n".join(before.lines[-25:])

    built = rebuild.build_from(folder, None, tmp_path / "out", built_init, toolchain)
    entries = {e.path for e in cpio.read_initramfs(built.initramfs.read_bytes())}
    assert "bin/busybox" not in entries and "bin/sh" not in entries
    after = boot(built.boot, case, tmp_path / "pinit.log")
    assert after.ok, "under pinit: " + after.reason + "\n" + "\n".join(after.lines[-25:])
    config = next(
        e for e in cpio.read_initramfs(built.initramfs.read_bytes()) if e.path == "etc/pinit.json"
    )
    if b'"required": false' in config.data:  # a guarded mount: there is no such disk here
        assert any("going on without it" in line for line in after.lines)
