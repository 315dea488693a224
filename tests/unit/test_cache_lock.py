"""hostkit.cache.exclusive: builds sharing a work folder take turns."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from hostkit.cache import exclusive


def test_a_second_holder_waits_for_the_first(tmp_path: Path) -> None:
    lock = tmp_path / "work" / "appliance.lock"
    events: list[str] = []
    held = threading.Event()

    def first() -> None:
        with exclusive(lock):
            events.append("first in")
            held.set()
            time.sleep(0.3)
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(5)
    with exclusive(lock):
        events.append("second in")
    thread.join()
    assert events == ["first in", "first out", "second in"]
