"""The hardware watchdog: armed at boot, petted from the main loop, disarmed on clean shutdown.

If PID 1 hangs, nobody pets the device and the board resets after `timeout` seconds.
"""

from __future__ import annotations

import posix
import struct

from init.config import Watchdog as WatchdogConfig
from init.kernel import Kernel

# linux/watchdog.h: _IOR('W', 5, int) and _IOWR('W', 6, int); the generic ioctl encoding,
# identical on arm64 and x86.
WDIOC_KEEPALIVE = 0x80045705
WDIOC_SETTIMEOUT = 0xC0045706
INT = struct.Struct("i")


class Watchdog:
    def __init__(self, kernel: Kernel, fd: int, timeout: int, interval: float, now: float) -> None:
        self._kernel = kernel
        self._fd = fd
        self.timeout = timeout
        self.interval = interval
        self.next_pet = now + interval

    @classmethod
    def open(cls, kernel: Kernel, root: str, config: WatchdogConfig) -> Watchdog:
        """Open (which arms it), set the timeout; the driver may round it, so read it back."""
        fd = kernel.open(root.rstrip("/") + config.device, posix.O_WRONLY | posix.O_CLOEXEC)
        try:
            reply = kernel.ioctl(fd, WDIOC_SETTIMEOUT, INT.pack(config.timeout))
        except OSError:
            kernel.close(fd)
            raise
        (timeout,) = INT.unpack(reply)
        # Pet well inside the timeout even if the configured interval is too long for it.
        interval = min(config.interval, max(timeout / 2, 0.5))
        return cls(kernel, fd, timeout, interval, kernel.clock())

    def pet_if_due(self, now: float) -> None:
        if now >= self.next_pet:
            self._kernel.ioctl(self._fd, WDIOC_KEEPALIVE, INT.pack(0))
            self.next_pet = now + self.interval

    def disarm(self) -> None:
        """The magic close: writing 'V' before close tells the driver this is no hang."""
        try:
            self._kernel.write(self._fd, b"V")
        finally:
            self._kernel.close(self._fd)
