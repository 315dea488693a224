"""An asyncio service with two requirements: crashes on its first run, and its second run (a
restart by the supervisor) still has both packages; then it powers the board off."""

import asyncio
import os
import signal

import gpiod
import serial

MARK = "/run/looper-ran"


async def tick(n: int) -> int:
    await asyncio.sleep(0.05)
    return n


async def main() -> None:
    results = await asyncio.gather(*(tick(i) for i in range(3)))
    run = 2 if os.path.exists(MARK) else 1
    print(
        f"PYPI looper run {run}: ticks={sum(results)} serial={serial.__version__} "
        f"gpiod={gpiod.__version__}",
        flush=True,
    )
    if run == 1:
        open(MARK, "w").close()
        raise RuntimeError("first run crashes on purpose")
    await asyncio.sleep(1)
    os.kill(1, signal.SIGUSR2)
    await asyncio.sleep(3600)


asyncio.run(main())
