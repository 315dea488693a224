"""The native runtime: numpy (built with meson-python), orjson (Rust) and pillow, from the
index's aarch64 wheels, in Debian's python3.11. Prints "PKG <name>: ok ..." lines, then powers the board off
once packages.py is done too (it leaves /run/packages-done). Not named numbers.py: the program folder is on the
build's module path, where it would hide the standard library's `numbers`."""

import os
import signal
import sys
import time
import traceback


def check(name, fn):
    try:
        print(f"PKG {name}: ok {fn()}", flush=True)
    except BaseException as exc:  # noqa: BLE001 - every failure is reported
        print(f"PKG {name}: FAIL {type(exc).__name__}: {exc}", flush=True)
        traceback.print_exc()


def _numpy():
    import numpy as np

    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    product = a @ a.T
    assert product.shape == (3, 3) and float(product[2, 2]) == 8.0**2 + 9**2 + 10**2 + 11**2
    return f"{np.__version__} matmul trace={float(np.trace(product))} on {sys.implementation.name}"


def _orjson():
    import orjson

    data = {"sensor": "t1", "values": [20.5, 21.5], "ok": True}
    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    assert orjson.loads(text) == data
    return f"{text.decode()} executable={sys.executable}"


def _pillow():
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 32), "black")
    ImageDraw.Draw(image).rectangle((8, 8, 23, 23), fill=(255, 128, 0))
    for fmt in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        back = Image.open(io.BytesIO(buffer.getvalue()))
        assert back.size == (64, 32), back.size
    assert image.getpixel((10, 10)) == (255, 128, 0)
    return f"PNG and JPEG round trips, {len(buffer.getvalue())} bytes of JPEG"


check("numpy", _numpy)
check("orjson", _orjson)
check("pillow", _pillow)
for _ in range(600):
    if os.path.exists("/run/packages-done"):
        break
    time.sleep(0.5)
os.kill(1, signal.SIGUSR2)
