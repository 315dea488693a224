"""The benchmark's baseline: the classic busybox /init of the post pinit started from.

`invoke bench` boots it beside pinit; the conversion tests (`invoke image --from`) use it as the
shape a classic image has.
"""

from __future__ import annotations

# The classic /init of the post pinit started from (shared/seed), verbatim up to its `exec`:
# the shape `invoke image --from` translates, and what `invoke bench` runs as the baseline.
SEED_INIT_HEAD = """#!/bin/sh
# Install Busybox (places symlinks from /bin and others to the central /bin/busybox executable)
/bin/busybox --install -s

# Mount basic directories
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o size=64k,mode=0755 tmpfs /dev
mkdir /dev/pts
mount -t devpts devpts /dev/pts
# Create elementary device nodes (the numbers can be found by stat'ing on a Raspbian install)
echo "Creating basic devices..."
mknod /dev/null c 1 3
mknod /dev/tty c 5 0
"""


def seed_init(app: str = "/rust-program", before_exec: tuple[str, ...] = ()) -> str:
    """The seed's script, its last line `exec <app>`, with `before_exec` lines added before it."""
    return SEED_INIT_HEAD + "".join(f"{line}\n" for line in before_exec) + f"\nexec {app}\n"
