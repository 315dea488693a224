"""Services that cannot take PID 1 down, in real boots: one cgroup per service (leftovers killed,
limits, OOM reported), PID 1 outside every group and out of the OOM killer's reach, and an early
start that neither starves the init nor has file systems mounted over it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from builder.image import build
from builder.qemu import harness

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which(harness.QEMU) is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]
POWER_DOWN = "reboot: Power down"
HEADERS = """
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int second_run(const char *mark) {
    if (access(mark, F_OK) == 0) return 1;
    close(open(mark, O_WRONLY | O_CREAT, 0644));
    return 0;
}
static void show(const char *label, const char *path) {
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    if (fd >= 0) { read(fd, buf, sizeof buf - 1); close(fd); }
    buf[strcspn(buf, "\\n")] = 0;
    printf("%s=%s ", label, buf);
}
"""
STORM = (
    HEADERS
    + """
int main(void) {
    if (second_run("/run/storm-ran")) {
        char cg[256] = {0}, procs[300];
        int fd = open("/proc/self/cgroup", O_RDONLY), n = 0, c;
        read(fd, cg, sizeof cg - 1); close(fd);
        cg[strcspn(cg, "\\n")] = 0;
        snprintf(procs, sizeof procs, "/sys/fs/cgroup%s/cgroup.procs", cg + 3);
        FILE *f = fopen(procs, "r");
        while (f && (c = fgetc(f)) != EOF) n += c == '\\n';
        printf("STORM second run: cgroup=%s members=%d ", cg + 3, n);
        show("pid1-cgroup", "/proc/1/cgroup");
        show("pid1-oom", "/proc/1/oom_score_adj");
        printf("\\n"); fflush(stdout);
        kill(1, SIGUSR2);
        for (;;) pause();
    }
    for (int i = 0; i < 300; i++)
        if (fork() == 0) { signal(SIGTERM, SIG_IGN); setsid(); for (;;) pause(); }
    printf("STORM forked 300\\n"); fflush(stdout);
    return 1;
}
"""
)
HOG = (
    HEADERS
    + """
int main(void) {
    if (second_run("/run/hog-ran")) {
        printf("HOG second run: ");
        show("memory.max", "/sys/fs/cgroup/hog/memory.max");
        show("pids.max", "/sys/fs/cgroup/hog/pids.max");
        show("cpu.weight", "/sys/fs/cgroup/hog/cpu.weight");
        printf("\\n"); fflush(stdout);
        kill(1, SIGUSR2);
        for (;;) pause();
    }
    printf("HOG allocating\\n"); fflush(stdout);
    for (;;) { char *p = malloc(1 << 20); if (p) memset(p, 1, 1 << 20); }
}
"""
)
SPIN = (
    HEADERS
    + """
int main(void) {
    printf("SPIN first line\\n"); fflush(stdout);
    for (;;) { }
}
"""
)


def image(tmp: Path, toml: str, built_init, toolchain) -> Path:
    (tmp / "pinit.toml").write_text(toml)
    return build(tmp / "pinit.toml", tmp / "out", built_init, toolchain).boot


def boot(
    source: Path, expect: list[str], log: Path, icount: bool = False, timeout: float = 60
) -> harness.BootResult:
    extra = ("-icount", "shift=0,align=off,sleep=off") if icount else ()
    # loglevel=7: the kernel prints "Run /init" (KERN_INFO), where the init's time starts.
    with harness.plan(source, extra_append=["loglevel=7"], qemu_args=extra) as plan:
        result = harness.run(plan, expect=expect, fail=["FATAL"], timeout=timeout, log=log)
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    return result


def test_what_a_service_leaves_behind_is_killed_before_its_restart(
    cc, built_init, toolchain, tmp_path
) -> None:
    boot_dir = image(
        tmp_path,
        f"""
[[service]]
name = "storm"
exec = "{cc("storm", STORM)}"
restart = "always"
backoff_start = 0.5
""",
        built_init,
        toolchain,
    )
    result = boot(
        boot_dir,
        [
            "STORM forked 300",
            "pinit: storm: killed 300 leftover processes of its cgroup",
            "pinit: storm exited with status 1; restart 1",
            "STORM second run: cgroup=/storm members=1 pid1-cgroup=0::/ pid1-oom=-1000",
            POWER_DOWN,
        ],
        tmp_path / "console.log",
    )
    assert sum("STORM forked" in line for line in result.lines) == 1


def test_a_service_over_its_memory_max_is_an_oom_kill_and_restarts(
    cc, built_init, toolchain, tmp_path
) -> None:
    boot_dir = image(
        tmp_path,
        f"""
[[service]]
name = "hog"
exec = "{cc("hog", HOG)}"
memory_max = "16MiB"
tasks_max = 77
cpu_weight = 250
restart = "on-failure"
backoff_start = 0.2
""",
        built_init,
        toolchain,
    )
    # The kernel's own line: the memory cgroup's limit, not the whole machine's, killed it.
    boot(
        boot_dir,
        [
            "HOG allocating",
            "Memory cgroup out of memory: Killed process",
            "pinit: hog killed by the OOM killer (memory_max 16MiB); restart 1 in",
            "HOG second run: memory.max=16777216 pids.max=77 cpu.weight=250 ",
            "pinit: got SIGUSR2: poweroff",
            POWER_DOWN,
        ],
        tmp_path / "console.log",
    )


def _setup_time(lines: list[str]) -> float:
    """From the kernel's "Run /init" to the end of the Python init's set-up (its summary)."""
    summary = next(line for line in lines if line.startswith("pinit: boot "))
    end = float(re.match(r"pinit: boot ([0-9.]+) s", summary).group(1))  # type: ignore[union-attr]
    start = harness.kernel_time(lines, "Run /init as init process")
    assert start is not None
    return end - start


def test_an_early_service_that_spins_does_not_starve_the_init(
    cc, built_init, toolchain, tmp_path
) -> None:
    """One CPU, guest time counted in instructions: the init's set-up with a spinning early
    service ends within 1.5 times its time without early start, and the app still speaks first."""
    spin = cc("spin", SPIN)
    ends = {}
    for early in (True, False):
        folder = tmp_path / f"early-{early}"
        folder.mkdir()
        boot_dir = image(
            folder,
            f"""
[init]
early_start = {str(early).lower()}
[[service]]
name = "spin"
exec = "{spin}"
""",
            built_init,
            toolchain,
        )
        expect = (
            ["SPIN first line", "pinit: boot "] if early else ["pinit: boot ", "SPIN first line"]
        )
        result = boot(boot_dir, expect, folder / "console.log", icount=True, timeout=120)
        first = next(i for i, line in enumerate(result.lines) if "SPIN first line" in line)
        init = next(i for i, line in enumerate(result.lines) if "pinit: started as PID 1" in line)
        if early:
            assert first < init, "the early app's first line must come before the init's"
        ends[early] = _setup_time(result.lines)
    assert ends[True] <= 1.5 * ends[False], ends


ORDERED = (
    HEADERS
    + """
int main(int argc, char **argv) {
    printf("ORDER %s\\n", argv[1]); fflush(stdout);
    if (argv[1][0] == 's') { sleep(1); kill(1, SIGUSR2); }
    for (;;) pause();
}
"""
)


def test_services_start_in_the_order_after_gives(cc, built_init, toolchain, tmp_path) -> None:
    app = cc("ordered", ORDERED)
    boot_dir = image(
        tmp_path,
        f"""
[[service]]
name = "second"
exec = "{app}"
args = ["second"]
after = ["first"]
[[service]]
name = "first"
exec = "{app}"
args = ["first"]
""",
        built_init,
        toolchain,
    )
    result = boot(boot_dir, [POWER_DOWN], tmp_path / "console.log")
    starts = [line.split()[2] for line in result.lines if line.startswith("pinit: starting ")]
    assert starts == ["first", "second"], starts


WHOAMI = (
    HEADERS
    + """
#include <grp.h>
#include <pwd.h>
int main(void) {
    gid_t groups[8];
    int n = getgroups(8, groups);
    printf("WHOAMI uid=%d gid=%d groups=", (int)getuid(), (int)getgid());
    for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", (int)groups[i]);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "NoNewPrivs:", 11) == 0) printf(" nonewprivs=%d", atoi(line + 11));
    printf(" write-root=%d\\n", open("/etc/pinit-owned-by-root", O_WRONLY | O_CREAT, 0644) >= 0);
    fflush(stdout);
    return 125;
}
"""
)
LAST = (
    HEADERS
    + """
int main(void) { sleep(2); kill(1, SIGUSR2); for (;;) pause(); }
"""
)


def test_a_named_user_with_a_supplementary_group_and_no_new_privs(
    cc, built_init, toolchain, tmp_path
) -> None:
    boot_dir = image(
        tmp_path,
        f"""
[[group]]
name = "gpio"
gid = 997
[[user]]
name = "app"
uid = 1000
groups = ["gpio"]
[[service]]
name = "whoami"
exec = "{cc("whoami", WHOAMI)}"
user = "app"
[[service]]
name = "last"
exec = "{cc("last", LAST)}"
""",
        built_init,
        toolchain,
    )
    boot(
        boot_dir,
        ["WHOAMI uid=1000 gid=1000 groups=997 nonewprivs=1 write-root=0", POWER_DOWN],
        tmp_path / "console.log",
    )


TALKER = (
    HEADERS
    + """
#include <sys/stat.h>
int main(void) {
    struct stat st;
    if (second_run("/data/talker-ran")) {
        char last[200] = {0}, line[200];
        FILE *f = fopen("/data/log/talker.log", "r");
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "TALK ", 5) == 0) memcpy(last, line, sizeof line);
        last[strcspn(last, "\\n")] = 0;
        stat("/data/log/talker.log", &st);
        long now = (long)st.st_size;
        stat("/data/log/talker.log.1", &st);
        printf("TALKER kept: current<=8KiB=%d older<=8KiB=%d last=%.8s\\n", now <= 8192,
               (long)st.st_size <= 8192 && st.st_size > 0, last);
        fflush(stdout);
        kill(1, SIGUSR2);
        for (;;) pause();
    }
    for (int i = 0; i < 200; i++) printf("TALK %03d %080d\\n", i, 0);
    fflush(stdout);
    sleep(1);
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""
)


def test_service_output_kept_on_the_data_partition_bounded_across_a_reboot(
    cc, built_init, toolchain, tmp_path
) -> None:
    (tmp_path / "pinit.toml").write_text(f"""
[kernel]
modules = ["virtio_mmio", "virtio_blk", "crc32c", "ext4"]
[data]
size = "16MiB"
[[service]]
name = "talker"
exec = "{cc("talker", TALKER)}"
log_to_data = true
log_max = "8KiB"
""")
    card = build(tmp_path / "pinit.toml", tmp_path / "out", built_init, toolchain).image
    boot(card, ["TALK 199", POWER_DOWN], tmp_path / "first.log")
    boot(
        card,
        ["TALKER kept: current<=8KiB=1 older<=8KiB=1 last=TALK 199", POWER_DOWN],
        tmp_path / "second.log",
    )
