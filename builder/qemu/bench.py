"""`invoke bench`: build time and size of the init, and boots against the classic busybox init.

Everything is compared in the same run against Debian's busybox-static doing the classic job
(the seed's shell script), because this machine is shared and noisy: ratios travel, seconds do
not. The boot benchmark alternates the two variants, same kernel, same QEMU flags, same app:
a tiny static C program that prints its CLOCK_BOOTTIME, PID 1's VmRSS, then powers off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gzip
import json
import os
import shutil
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.formats import bootfs, compress, cpio
from builder.image import Platform
from builder.qemu import harness
from builder.qemu.seed import seed_init
from hostkit.errors import BuildError
from hostkit.output import write_atomic
from hostkit.paths import REPO
from hostkit.run import log, run, step
from toolchain.provision import Toolchain

BENCH_APP_C = r"""
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/reboot.h>

int main(void) {
    struct timespec t;
    char line[256];
    clock_gettime(CLOCK_BOOTTIME, &t);
    printf("BENCH-APP %ld.%09ld\n", (long)t.tv_sec, t.tv_nsec);
    fflush(stdout);
    sleep(2);   /* PID 1's memory once it has finished starting (early start overlaps it) */
    FILE *f = fopen("/proc/1/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            printf("BENCH-PID1-RSS %s", line + 6);
        else if (strncmp(line, "RssAnon:", 8) == 0)
            printf("BENCH-PID1-ANON %s", line + 8);
    if (f) fclose(f);
    printf("BENCH-DONE\n");
    fflush(stdout);
    if (getpid() == 1) {        /* busybox exec'd us: we are PID 1 */
        sync();
        reboot(RB_POWER_OFF);
    } else {                    /* pinit supervises us: ask it (it forwards our output first) */
        kill(1, SIGUSR2);
    }
    for (;;) pause();
}
"""

PINIT_TOML = """
[init]
mode = "supervise"
early_start = {early}
[kernel]
modules = {modules}
available = {available}
[[service]]
name = "bench"
exec = "{app}"
restart = "never"
[image]
compression = "{compression}"
"""


def sizes(path: Path) -> dict[str, int]:
    data = path.read_bytes()
    out = {"raw": len(data), "gzip-9": len(gzip.compress(data, 9, mtime=0))}
    for name, cmd in (
        ("xz-9", ["xz", "-9", "-c", "-T1"]),
        ("zstd-19", ["zstd", "-19", "-c", "-q"]),
    ):
        out[name] = len(run([*cmd, str(path)], capture=True, quiet=True).stdout)
    return out


@contextlib.contextmanager
def fresh_caches(work: Path) -> Iterator[None]:
    """Builds with nothing compiled before them: empty Nuitka and ccache caches in `work`. The
    first build in them is the cold one; a build after it, the warm one."""
    saved = {k: os.environ.get(k) for k in ("CCACHE_DIR", "NUITKA_CACHE_DIR")}
    try:
        os.environ["CCACHE_DIR"] = str(work / "ccache")
        os.environ["NUITKA_CACHE_DIR"] = str(work / "nuitka-cache")
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def edit(source: Path) -> None:
    """The warm build's one change: a line appended to `source`."""
    with source.open("a") as f:
        f.write(f"\n_BENCH_EDIT = {time.time_ns()}\n")


def build_times(tc: Toolchain, work: Path) -> dict[str, float]:
    """Cold (empty Nuitka cache, ccache off) then warm after editing one init file."""
    from builder.python.compile import INIT_ENTRY, compile_python

    src = work / "src"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(REPO / "init", src / "init", ignore=shutil.ignore_patterns("__pycache__"))
    entry = work / "pinit_init.py"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(INIT_ENTRY)
    out = work / "init"
    with fresh_caches(work):
        start = time.monotonic()
        compile_python(entry, out, tc, name="init", pythonpath=(src,), work=work / "nuitka")
        cold_s = time.monotonic() - start
        edit(src / "init" / "main.py")
        start = time.monotonic()
        compile_python(entry, out, tc, name="init", pythonpath=(src,), work=work / "nuitka")
        warm_s = time.monotonic() - start
    return {"cold_s": round(cold_s, 1), "warm_after_edit_s": round(warm_s, 1)}


# The requests appliance: requests and its dependencies from the pip index, and a GET to a
# server the service starts in the guest.
REQUESTS_APP = """\
import time

print(f"BENCH-APP {time.clock_gettime(time.CLOCK_BOOTTIME):.6f}", flush=True)

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"pinit")


server = HTTPServer(("127.0.0.1", 0), Hello)
threading.Thread(target=server.serve_forever, daemon=True).start()
reply = requests.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=10)
print(f"BENCH GET {reply.status_code} {reply.text} at", time.clock_gettime(time.CLOCK_BOOTTIME))
"""


def requests_appliance(tc: Toolchain, init: Path, work: Path, icount: bool) -> dict[str, object]:
    """Size, cold and warm build time of the requests appliance, and its whole boot in QEMU in
    every compression (kernel start to the app's first line, and to its GET's answer). Cold:
    no compiled appliance, built site, Nuitka or ccache cache (the pip index's downloads and
    the toolchain, with the standard library's C modules, stay: a machine that has built any
    appliance before); warm: after it and one edit of the app."""
    from builder import image
    from builder.python import pyext

    shutil.rmtree(work, ignore_errors=True)
    folder = work / "app"
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(REQUESTS_APP)
    (folder / "requirements.txt").write_text(REQUESTS + "\n")
    toml = (
        '[init]\non_failure = "poweroff"\n[[service]]\nname = "get"\nexec = "app.py"\n'
        'requirements = "requirements.txt"\nrestart = "never"\n[image]\ncompression = "{}"\n'
    )
    (folder / "pinit.toml").write_text(toml.format("gzip"))
    pyext.ensure(tc)  # the toolchain's part, built once for every appliance
    cache = work / "cache"  # the toolchain's cache less what an appliance's build makes
    cache.mkdir()
    for entry in tc.cache.iterdir():
        if not entry.name.startswith(("apps", "site-", "native-")):
            (cache / entry.name).symlink_to(entry)
    fresh = dataclasses.replace(tc, cache=cache)
    with fresh_caches(work):
        start = time.monotonic()
        built = image.build(folder / "pinit.toml", work / "out", init, fresh)
        cold_s = time.monotonic() - start
        edit(folder / "app.py")
        start = time.monotonic()
        built = image.build(folder / "pinit.toml", work / "out", init, fresh)
        warm_s = time.monotonic() - start
    whole: dict[str, dict[str, float]] = {}
    for method in COMPRESSIONS:  # deterministic under -icount: one boot each
        (folder / "pinit.toml").write_text(toml.format(method))
        built = image.build(folder / "pinit.toml", work / method, init, fresh)
        result = boot_result(built.boot, f"requests-{method}", work / "logs", icount, "BENCH GET")
        get = next(line for line in result.lines if "BENCH GET 200 pinit at" in line)
        whole[method] = {
            "bytes": built.initramfs_size,
            "boot_to_app_s": round(app_time(result.lines), 4),
            "boot_to_get_s": round(float(get.split(" at ")[1].split()[0]), 4),
        }
    return {
        "gzip": whole["gzip"]["bytes"],
        "cold_s": round(cold_s, 1),
        "warm_after_edit_s": round(warm_s, 1),
        "whole_boot": whole,
    }


def bench_app(tc: Toolchain, work: Path) -> Path:
    """The bench app, static, for `tc`'s target."""
    c_file = work / "bench.c"
    c_file.parent.mkdir(parents=True, exist_ok=True)
    c_file.write_text(BENCH_APP_C)
    app = work / f"bench-app-{tc.target.name}"
    run(
        [
            f"{tc.target.cross}gcc",
            f"--sysroot={tc.sysroot}",
            "-static",
            "-O2",
            "-s",
            "-o",
            app,
            c_file,
        ],
        quiet=True,
    )
    return app


# The seed's job loads one kernel module with insmod before the app: so do both seed variants.
SEED_MODULE = "dummy"
# What the coldplug variant ships for coldplug: -M virt always has virtio-mmio transports.
COLDPLUG_AVAILABLE = ("virtio_mmio", "virtio-rng")
# The initramfs compressions whose whole boot is measured (the kernel unpacks each).
COMPRESSIONS = ("gzip", "zstd", "lz4", "xz")


@dataclass(frozen=True)
class Board:
    """Where a bench boot runs: the QEMU machine, the card's board, its kernel and busybox."""

    machine: str  # builder/qemu/harness.py MACHINES
    board: str  # builder/boards.py BOARDS, "all" for virt
    platform: Platform  # the kernel, its modules, the boot files
    busybox: Path  # busybox-static for the board's architecture


def virt_board(tc: Toolchain) -> Board:
    from builder import image

    return Board("virt", "all", image.debian_platform(tc), tc.busybox)


def raspi0_board(tc: Toolchain) -> Board:
    """The Pi Zero (armel): Debian's rpi kernel and busybox-static armel, from the lock."""
    from builder import image
    from toolchain.provision import ensure_kernel, ensure_runtime
    from toolchain.target import ARMEL

    platform = image.kernel_platform(ensure_kernel(ARMEL), tc.firmware, ARMEL)
    return Board("raspi0", "pi-zero", platform, ensure_runtime(ARMEL) / "bin" / "busybox")


def busybox_boot(
    tc: Toolchain, app: Path, out: Path, modules: tuple[str, ...] = (), on: Board | None = None
) -> Path:
    from builder import boards, image, kmod

    on = on or virt_board(tc)
    platform = on.platform
    module_files = (
        [
            (path, data)
            for path, data in kmod.pack(
                kmod.resolve(modules, platform.modules_root, platform.release)
            )
            if path.endswith(".ko")
        ]
        if modules
        else []
    )
    insmods = tuple(f"insmod /{path}" for path, _ in module_files)
    entries: list[cpio.Entry] = [
        cpio.File("bin/busybox", on.busybox.read_bytes(), 0o755),
        cpio.Symlink("bin/sh", "busybox"),
        cpio.Dir("proc"),
        cpio.Dir("sys"),
        cpio.Dir("dev"),
        cpio.CharDev("dev/console", 5, 1),
        cpio.File("init", seed_init("/app/bench", insmods).encode(), 0o755),
        cpio.File("app/bench", app.read_bytes(), 0o755),
        *(cpio.File(path, data, 0o644) for path, data in module_files),
    ]
    files: dict[str, Path | bytes] = {
        name: path for name, path in platform.boot_files.items() if name.endswith(".dtb")
    }
    if on.board != boards.ALL:
        files = {n: p for n, p in files.items() if boards.keeps(on.board, n)}
    files[platform.kernel_name] = platform.kernel
    files["initramfs.gz"] = compress.compress(cpio.write(entries), "gzip")
    files.update(image.boot_texts(on.board, platform.kernel_name, "initramfs.gz"))
    bootfs.make_boot_folder(out, files)
    return out


def pinit_boot(
    tc: Toolchain,
    app: Path,
    init: Path,
    out: Path,
    early: bool,
    modules: tuple[str, ...] = (),
    available: tuple[str, ...] = (),
    compression: str = "gzip",
    board: str = "all",
) -> Path:
    from builder import image

    toml = out.parent / f"bench-{out.name}.toml"
    toml.write_text(
        PINIT_TOML.format(
            app=app,
            early=str(early).lower(),
            modules=json.dumps(list(modules)),
            available=json.dumps(list(available)),
            compression=compression,
        )
        + f'board = "{board}"\n'
    )
    built = image.build(toml, out, init, tc)
    return built.boot


@dataclass
class Sample:
    init_to_app: float
    boot_to_app: float  # the whole boot: the kernel's start to the app's first line
    wall_to_app: float
    pid1_rss_kb: int
    pid1_anon_kb: int
    coldplug_work: float  # the init's own coldplug steps (scans, matching), not module loads
    coldplug_span: float  # from its first coldplug step to its last, module loads included


def boot_result(
    boot: Path,
    label: str,
    log_dir: Path,
    icount: bool,
    last: str = "BENCH-DONE",
    machine: str = "virt",
) -> harness.BootResult:
    """One boot to the app's first line and `last`; pinit prints its timeline on the way."""
    extra = ("-icount", "shift=0,align=off,sleep=off") if icount else ()
    # loglevel=7: the kernel prints "Run /init" (KERN_INFO), the start of what we measure.
    plan = harness.plan(
        boot, machine=machine, extra_append=["loglevel=7", "pinit.timeline=1"], qemu_args=extra
    )
    result = harness.run(
        plan, expect=["BENCH-APP ", last], timeout=120, log=log_dir / f"{label}.log"
    )
    if not result.ok:
        raise BuildError(
            f"bench boot of {label} failed: {result.reason}",
            hint=f"console log: {log_dir / f'{label}.log'}",
        )
    return result


def app_time(lines: list[str]) -> float:
    """The app's first line's CLOCK_BOOTTIME, as it printed it."""
    line = next(line for line in lines if "BENCH-APP " in line)
    return float(line.split("BENCH-APP ")[1].split()[0])


def coldplug_times(lines: list[str]) -> tuple[float, float]:
    """(the init's own coldplug work, the span of its coldplug steps) from its timeline line."""
    line = next((x for x in lines if "pinit: timeline {" in x), "")
    if not line:
        return 0.0, 0.0
    steps = [
        s
        for s in json.loads(line.split("pinit: timeline ", 1)[1])["steps"]
        if s["phase"] == "coldplug"
    ]
    if not steps:
        return 0.0, 0.0
    work = sum(s["end"] - s["start"] for s in steps if s["name"] in ("scan", "match"))
    return work, max(s["end"] for s in steps) - min(s["start"] for s in steps)


def boot_once(boot: Path, label: str, log_dir: Path, icount: bool, machine: str = "virt") -> Sample:
    result = boot_result(boot, label, log_dir, icount, machine=machine)
    run_init = harness.kernel_time(result.lines, "Run /init as init process")
    rss = next((line for line in result.lines if "BENCH-PID1-RSS" in line), "BENCH-PID1-RSS 0 kB")
    anon = next((line for line in result.lines if "BENCH-PID1-ANON" in line), "BENCH-PID1-ANON 0")
    if run_init is None:
        raise BuildError(f"bench boot of {label}: no 'Run /init' line in the console log")
    app_t = app_time(result.lines)
    work, span = coldplug_times(result.lines)
    return Sample(
        app_t - run_init,
        app_t,
        result.first_seen["BENCH-APP "],
        int(rss.split("BENCH-PID1-RSS")[1].split()[0]),
        int(anon.split("BENCH-PID1-ANON")[1].split()[0]),
        work,
        span,
    )


def summarize(samples: list[Sample]) -> dict[str, dict[str, float]]:
    def stats(values: list[float]) -> dict[str, float]:
        return {
            "median": round(statistics.median(values), 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        }

    return {
        "init_to_app_s": stats([s.init_to_app for s in samples]),
        "boot_to_app_s": stats([s.boot_to_app for s in samples]),
        "coldplug_work_s": stats([s.coldplug_work for s in samples]),
        "coldplug_span_s": stats([s.coldplug_span for s in samples]),
        "wall_to_app_s": stats([s.wall_to_app for s in samples]),
        "pid1_rss_kb": stats([float(s.pid1_rss_kb) for s in samples]),
        "pid1_anon_kb": stats([float(s.pid1_anon_kb) for s in samples]),
    }


RASPI0_BUSYBOX = "busybox-seed-raspi0"
RASPI0_PINIT = "pinit-seed-raspi0"


def boots(tc: Toolchain, init: Path, work: Path, n: int, icount: bool) -> dict[str, object]:
    app = bench_app(tc, work)
    # "pinit": as built by default (early start applies: the app needs no modules);
    # "pinit-late": early_start = false, what the Python init itself costs before the app;
    # "*-seed": the seed's whole job, one module loaded before the app (no early start then).
    seed = (SEED_MODULE,)
    variants = {
        "busybox": busybox_boot(tc, app, work / "busybox" / "boot"),
        "pinit": pinit_boot(tc, app, init, work / "pinit", early=True),
        "pinit-late": pinit_boot(tc, app, init, work / "pinit-late", early=False),
        "busybox-seed": busybox_boot(tc, app, work / "busybox-seed" / "boot", seed),
        "pinit-seed": pinit_boot(tc, app, init, work / "pinit-seed", early=True, modules=seed),
        # ... with coldplug: every device's modalias read, virtio_mmio found and loaded.
        "pinit-seed-coldplug": pinit_boot(
            tc,
            app,
            init,
            work / "pinit-seed-coldplug",
            early=True,
            modules=seed,
            available=COLDPLUG_AVAILABLE,
        ),
        # The seed's job in every other compression: the kernel unpacks the initramfs.
        **{
            seed_variant(method): pinit_boot(
                tc,
                app,
                init,
                work / f"pinit-seed-{method}",
                early=True,
                modules=seed,
                compression=method,
            )
            for method in COMPRESSIONS
            if method != "gzip"
        },
    }
    # The seed's job on the Pi Zero (armel, -M raspi0): pinit's armel init beside busybox armel.
    from builder.python.compile import build_init
    from hostkit.paths import BUILD
    from toolchain.provision import for_target
    from toolchain.target import ARMEL

    tc0 = for_target(tc, ARMEL)
    app0 = bench_app(tc0, work)
    init0 = build_init(tc0, BUILD / "init-armel")
    zero = raspi0_board(tc)
    variants[RASPI0_BUSYBOX] = busybox_boot(tc, app0, work / RASPI0_BUSYBOX / "boot", seed, zero)
    variants[RASPI0_PINIT] = pinit_boot(
        tc, app0, init0, work / RASPI0_PINIT, early=True, modules=seed, board=zero.board
    )
    samples: dict[str, list[Sample]] = {k: [] for k in variants}
    with step(f"{n} boots of each variant, alternating"):
        for i in range(n):
            for name, boot in variants.items():
                machine = zero.machine if name in (RASPI0_BUSYBOX, RASPI0_PINIT) else "virt"
                samples[name].append(boot_once(boot, f"{name}-{i}", work / "logs", icount, machine))
    result: dict[str, object] = {name: summarize(s) for name, s in samples.items()}
    for name, boot in variants.items():
        initramfs = next(boot.glob("initramfs.*"))
        result[name]["initramfs_bytes"] = initramfs.stat().st_size  # type: ignore[index]
    return result


def seed_variant(method: str) -> str:
    return "pinit-seed" if method == "gzip" else f"pinit-seed-{method}"


def table(report: dict) -> str:
    boot = report["boot"]
    names = [
        n
        for n in boot
        if not n.startswith("pinit-seed-") or n in ("pinit-seed-coldplug", RASPI0_PINIT)
    ]
    size = report["size"]

    def row(label: str, pick) -> str:  # type: ignore[no-untyped-def]
        return f"| {label} | " + " | ".join(str(pick(boot[n], n)) for n in names) + " |"

    def binary(key: str):  # type: ignore[no-untyped-def]
        def pick(_v, n):  # type: ignore[no-untyped-def]
            which = "busybox" if n.startswith("busybox") else "init"
            return size[f"{which}-armel" if n.endswith("-raspi0") else which][key]

        return pick

    lines = [
        "| figure | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
        row("Run /init → app's first line (s, median)", lambda v, _n: v["init_to_app_s"]["median"]),
        row(
            "  spread (min–max)",
            lambda v, _n: f"{v['init_to_app_s']['min']}–{v['init_to_app_s']['max']}",
        ),
        row(
            "whole boot: kernel start → app's first line (s)",
            lambda v, _n: v["boot_to_app_s"]["median"],
        ),
        row("wall time to the app's line (s, median)", lambda v, _n: v["wall_to_app_s"]["median"]),
        row("PID 1 VmRSS after boot (kB, median)", lambda v, _n: v["pid1_rss_kb"]["median"]),
        row("  of which anonymous (kB)", lambda v, _n: v["pid1_anon_kb"]["median"]),
        row("initramfs (bytes, gzip)", lambda v, _n: v["initramfs_bytes"]),
        row("init binary raw (bytes)", binary("raw")),
        row("init binary zstd -19 (bytes)", binary("zstd-19")),
    ]
    lines.append(
        f"\n**seed_init_to_app_ratio** (the seed's job, one module loaded: pinit-seed / "
        f"busybox-seed): {report['seed_init_to_app_ratio']}"
    )
    lines.append(
        f"\n**whole_boot_ratio** (kernel start → app's first line, pinit-seed / busybox-seed): "
        f"{report['whole_boot_ratio']}"
    )
    lines.append(
        f"\n**raspi0_seed_init_to_app_ratio** (the seed's job on the Pi Zero, -M raspi0, armel: "
        f"{RASPI0_PINIT} / {RASPI0_BUSYBOX}): {report['raspi0_seed_init_to_app_ratio']}"
    )
    cold = boot["pinit-seed-coldplug"]
    lines.append(
        f"\ncoldplug (pinit-seed-coldplug): the init's own work (device scans, alias matching) "
        f"{cold['coldplug_work_s']['median']} s; from its first step to its last, module loads "
        f"included, {cold['coldplug_span_s']['median']} s; it delays the app's first line by "
        f"{report['coldplug_cost_s']} s (pinit-seed-coldplug − pinit-seed: coldplug runs beside "
        f"an early-started app)"
    )
    lines.append(
        "\nwhole boot of the seed's job (pinit-seed) by initramfs compression, s (bytes): "
        + ", ".join(
            f"{m} {boot[seed_variant(m)]['boot_to_app_s']['median']} "
            f"({boot[seed_variant(m)]['initramfs_bytes']})"
            for m in COMPRESSIONS
        )
    )
    lines.append(
        f"\n**init_to_app_ratio** (pinit / busybox): {report['init_to_app_ratio']}; "
        f"without early start (pinit-late / busybox): {report['init_to_app_ratio_late']}"
    )
    added = size["packages_added_gzip"]
    lines.append(
        "\nadded to the demo's initramfs (gzip bytes) by a service importing: "
        + ", ".join(f"{k} +{v}" for k, v in added.items() if k != "demo_gzip")
    )
    demo = size["demo_initramfs"]
    lines.append(
        "\ndemo initramfs (`invoke image` with the default pinit.toml), bytes: "
        + ", ".join(f"{k} {v}" for k, v in demo.items())
    )
    if "build" in report:
        lines.append(
            f"\nbuild-init: cold {report['build']['cold_s']} s, warm after editing one "
            f"init file {report['build']['warm_after_edit_s']} s"
        )
    if "requests_appliance" in report:
        r = report["requests_appliance"]
        whole = r["whole_boot"]
        lines.append(
            f"\nthe requests appliance ({REQUESTS}, a GET in the guest): {r['gzip']} bytes gzip, "
            f"cold build {r['cold_s']} s, warm after editing the app {r['warm_after_edit_s']} s"
        )
        lines.append(
            "\n**the requests appliance's whole boot** (kernel start → its first line; → the "
            "GET's answer), s, by compression: "
            + ", ".join(
                f"{m} {w['boot_to_app_s']}; {w['boot_to_get_s']} ({w['bytes']} bytes)"
                for m, w in whole.items()
            )
            + f"; its first line against busybox-seed's: {report['requests_whole_boot_ratio']}"
        )
    return "\n".join(lines)


def demo_initramfs_sizes(tc: Toolchain, init: Path) -> dict[str, int]:
    """The default pinit.toml's initramfs in every compression the kernel can unpack."""
    from builder.config import load_build_config
    from builder.formats import compress
    from builder.image import debian_platform, default_config, initramfs_entries

    cfg = load_build_config(default_config())
    archive = cpio.write(initramfs_entries(cfg, debian_platform(tc), init, tc, tc.cache / "apps"))
    return {method: len(compress.compress(archive, method)) for method in compress.METHODS}


# What a package from the pip index adds to the demo's initramfs when a service imports it.
REQUESTS = "requests==2.32.3"
PACKAGES = {
    "pyserial==3.5": "serial",
    "gpiod==2.5.0": "gpiod",
    "spidev==3.8": "spidev",
    REQUESTS: "requests",
    "paho-mqtt==2.1.0": "paho.mqtt.client",
    "flask==3.0.3": "flask",
    "pyyaml==6.0.2": "yaml",
    "msgpack==1.1.0": "msgpack",
    "websockets==13.1": "websockets",
    "sqlalchemy==2.0.36": "sqlalchemy",
    "psutil==6.1.0": "psutil",
    "python-dateutil==2.9.0.post0": "dateutil.parser",
    "gpiozero==2.0.1": "gpiozero",
    "smbus2==0.5.0": "smbus2",
}


def package_sizes(tc: Toolchain, init: Path, work: Path) -> dict[str, int]:
    """gzip bytes each package adds to the demo appliance's initramfs (and the demo's own)."""
    from builder import image

    hello = (REPO / "demo" / "hello.py").read_text()
    sizes_: dict[str, int] = {}
    for requirement, module in {"": "", **PACKAGES}.items():
        folder = work / "packages" / (module or "demo")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "app.py").write_text((f"import {module}\n" if module else "") + hello)
        # gzip, as in every earlier run of this figure (the images' default is lz4 now).
        toml = '[image]\ncompression = "gzip"\n[[service]]\nname = "hello"\nexec = "app.py"\n'
        if requirement:
            (folder / "requirements.txt").write_text(requirement + "\n")
            toml += 'requirements = "requirements.txt"\n'
        (folder / "pinit.toml").write_text(toml)
        sizes_[requirement or "demo"] = image.build(
            folder / "pinit.toml", folder / "out", init, tc
        ).initramfs_size
    return {"demo_gzip": sizes_["demo"], **{req: sizes_[req] - sizes_["demo"] for req in PACKAGES}}


def bench(
    tc: Toolchain, init: Path, out: Path, n: int = 5, builds: bool = True, icount: bool = True
) -> dict:
    work = out / "bench"
    # The figure that matters most first: the seed's job, which most appliances do.
    report: dict = {
        "seed_init_to_app_ratio": None,
        "date": datetime.date.today().isoformat(),
        "boots_per_variant": n,
        "icount": icount,
    }
    if builds:
        with step("cold and warm build-init"):
            report["build"] = build_times(tc, work / "build")
    report["size"] = {
        "init": sizes(init),
        "busybox": sizes(tc.busybox),
        "demo_initramfs": demo_initramfs_sizes(tc, init),
    }
    with step("what each package adds to the demo's initramfs"):
        report["size"]["packages_added_gzip"] = package_sizes(tc, init, work)
    if builds:
        with step("the requests appliance: cold and warm build, its whole boot in QEMU"):
            report["requests_appliance"] = requests_appliance(tc, init, work / "requests", icount)
    report["boot"] = boots(tc, init, work, n, icount)
    from toolchain.provision import ensure_runtime
    from toolchain.target import ARMEL

    report["size"]["init-armel"] = sizes(REPO / "build" / "init-armel")
    report["size"]["busybox-armel"] = sizes(ensure_runtime(ARMEL) / "bin" / "busybox")
    b = report["boot"]["busybox"]["init_to_app_s"]["median"]
    p = report["boot"]["pinit"]["init_to_app_s"]["median"]
    late = report["boot"]["pinit-late"]["init_to_app_s"]["median"]
    seed_b = report["boot"]["busybox-seed"]["init_to_app_s"]["median"]
    seed_p = report["boot"]["pinit-seed"]["init_to_app_s"]["median"]
    report["seed_init_to_app_ratio"] = round(seed_p / seed_b, 2) if seed_b > 0 else None
    coldplug = report["boot"]["pinit-seed-coldplug"]["init_to_app_s"]["median"]
    report["coldplug_cost_s"] = round(coldplug - seed_p, 4)
    report["init_to_app_ratio"] = round(p / b, 2) if b > 0 else None
    report["init_to_app_ratio_late"] = round(late / b, 2) if b > 0 else None
    whole_b = report["boot"]["busybox-seed"]["boot_to_app_s"]["median"]
    whole_p = report["boot"]["pinit-seed"]["boot_to_app_s"]["median"]
    report["whole_boot_ratio"] = round(whole_p / whole_b, 2)
    zero_b = report["boot"][RASPI0_BUSYBOX]["init_to_app_s"]["median"]
    zero_p = report["boot"][RASPI0_PINIT]["init_to_app_s"]["median"]
    report["raspi0_seed_init_to_app_ratio"] = round(zero_p / zero_b, 2) if zero_b > 0 else None
    if "requests_appliance" in report:
        whole_r = report["requests_appliance"]["whole_boot"]["gzip"]["boot_to_app_s"]
        report["requests_whole_boot_ratio"] = round(whole_r / whole_b, 2)
    write_atomic(out / "bench.json", (json.dumps(report, indent=1) + "\n").encode())
    text = table(report)
    print(text)
    docs = REPO / "docs" / "benchmarks.md"
    header = (
        "# Benchmarks\n\nWritten by `invoke bench`; newest first. QEMU `-M virt`, cortex-a53, "
        "1 CPU, the Debian arm64 kernel; the same app (a static C program) in every variant.\n"
        "Guest times run under `-icount shift=0` (one instruction = 1 ns of guest time: they "
        "repeat exactly, like a ~1 GHz in-order core); wall times are the host's, noisy.\n"
    )
    previous = docs.read_text() if docs.is_file() else ""
    old = previous[previous.find("\n## ") + 1 :] if "\n## " in previous else ""
    write_atomic(docs, f"{header}\n## {report['date']}\n\n{text}\n\n{old}".encode())
    log(f"wrote {out / 'bench.json'} and {docs}")
    return report
