"""The boot timeline chart: from the init's console line to an SVG that XML tools accept."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from builder.qemu.timeline import from_console, render
from hostkit.errors import BuildError

TIMELINE = {
    "clock": "CLOCK_BOOTTIME",
    "main": 2.0,
    "app_started": 2.5,
    "steps": [
        {"phase": "mounts", "name": "mount proc on /proc", "start": 2.01, "end": 2.02},
        {"phase": "modules", "name": "dummy", "start": 2.1, "end": 2.4, "error": "ENOENT"},
    ],
}


def test_console_line_is_found_and_drawn() -> None:
    lines = ["[    1.0] Run /init as init process", "pinit: timeline " + json.dumps(TIMELINE)]
    svg = render(from_console(lines))
    root = ET.fromstring(svg)
    bars = [
        e
        for e in root.iter("{http://www.w3.org/2000/svg}rect")
        if e.find("{http://www.w3.org/2000/svg}title") is not None
    ]
    assert len(bars) == 2
    # The module step (0.3 s) is drawn 30 times wider than the mount (0.01 s).
    widths = [float(b.get("width")) for b in bars]
    assert widths[1] / widths[0] == pytest.approx(30, rel=0.01)
    assert "app started 2.500 s" in svg and "Python main 2.000 s" in svg


def test_missing_timeline_line_says_how_to_get_one() -> None:
    with pytest.raises(BuildError, match="no `pinit: timeline` line") as err:
        from_console(["pinit: boot 1.0 s"])
    assert "pinit.timeline=1" in err.value.hint
