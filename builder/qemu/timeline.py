"""The init's boot timeline as an SVG chart, read the way people read `systemd-analyze plot`.

The init keeps /run/pinit/timeline.json; with `pinit.timeline=1` on the kernel command line it
also prints it on the console as one line, `pinit: timeline {...}`, which `invoke boot
--timeline` picks up. Time runs left to right from the kernel's start (CLOCK_BOOTTIME); one bar
per step, coloured by phase, and a line where the first service started.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from hostkit.errors import BuildError
from hostkit.output import write_atomic

MARKER = "pinit: timeline "
COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
ROW, LEFT, WIDTH = 22, 220, 900


def from_console(lines: Sequence[str]) -> dict:
    for line in lines:
        if MARKER in line:
            try:
                return json.loads(line.split(MARKER, 1)[1])
            except ValueError as exc:
                raise BuildError(f"console timeline line is not JSON: {exc}") from exc
    raise BuildError(
        "the console shows no `pinit: timeline` line",
        hint="boot with pinit.timeline=1 on the kernel command line "
        "(invoke boot --timeline adds it)",
    )


def render(timeline: dict) -> str:
    steps = timeline["steps"]
    if not steps:
        raise BuildError("the timeline has no steps")
    end = max([s["end"] for s in steps] + [timeline.get("app_started") or 0])
    start = min([s["start"] for s in steps] + [timeline.get("main") or end])
    span = max(end - start, 1e-6)
    scale = (WIDTH - LEFT - 40) / span
    phases: dict[str, str] = {}
    height = ROW * (len(steps) + 3)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        f'<text x="8" y="16" font-weight="bold">pinit boot timeline (CLOCK_BOOTTIME, '
        f"{start:.3f} s → {end:.3f} s)</text>",
    ]
    for i, s in enumerate(steps):
        colour = phases.setdefault(s["phase"], COLOURS[len(phases) % len(COLOURS)])
        y = ROW * (i + 1) + 8
        x = LEFT + (s["start"] - start) * scale
        w = max((s["end"] - s["start"]) * scale, 1.0)
        label = escape(f"{s['phase']}: {s['name']}")
        ms = (s["end"] - s["start"]) * 1000
        out.append(f'<text x="8" y="{y + 13}">{label}</text>')
        out.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW - 6}" fill="{colour}">'
            f"<title>{label}: {ms:.1f} ms</title></rect>"
        )
        out.append(f'<text x="{x + w + 4:.1f}" y="{y + 13}" fill="#555">{ms:.1f} ms</text>')
    main = timeline.get("main")
    if main is not None and main >= start:
        x = LEFT + (main - start) * scale
        out.append(
            f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 10}" stroke="#888" '
            'stroke-dasharray="2,3"/>'
        )
        out.append(f'<text x="{x + 4:.1f}" y="32" fill="#555">Python main {main:.3f} s</text>')
    app = timeline.get("app_started")
    if app is not None:
        x = LEFT + (app - start) * scale
        out.append(
            f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 10}" stroke="black" '
            'stroke-dasharray="4,3"/>'
        )
        out.append(
            f'<text x="{min(x + 4, WIDTH - 150):.1f}" y="{height - 12}">app started '
            f"{app:.3f} s</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_from_console(lines: Sequence[str], out: Path) -> Path:
    write_atomic(out, render(from_console(lines)).encode())
    return out
