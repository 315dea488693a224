"""PyPI packages on the -M virt board's real devices: pyserial on the PL011 UART, gpiod (its C
extension built from the sdist) on the PL061 GPIO chip, spidev where there is no SPI."""

import os

import certifi
import gpiod
import serial
import spidev
from gpiod.line import Direction, Value

with serial.Serial(
    "/dev/ttyAMA0",
    115200,
    bytesize=serial.EIGHTBITS,
    parity=serial.PARITY_NONE,
    stopbits=serial.STOPBITS_ONE,
) as port:
    port.write(b"PYPI serial: written by pyserial " + serial.__version__.encode() + b"\r\n")
    port.flush()

with gpiod.Chip("/dev/gpiochip0") as chip:
    info = chip.get_info()
    print(f"PYPI gpiod: {info.name} label={info.label} lines={info.num_lines}", flush=True)
line = 5
settings = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE)
with gpiod.request_lines("/dev/gpiochip0", consumer="pinit-test", config={line: settings}) as req:
    before = req.get_value(line)
    req.set_value(line, Value.ACTIVE)
    after = req.get_value(line)
    print(f"PYPI gpiod: line {line} {before.name} -> {after.name}", flush=True)

# Package data ships beside /init, where the compiled package looks for it.
bundle = certifi.where()
with open(bundle) as f:
    certificates = f.read().count("BEGIN CERTIFICATE")
print(
    f"PYPI certifi: {bundle} exists={os.path.isfile(bundle)} certificates>100={certificates > 100}",
    flush=True,
)

spi = spidev.SpiDev()
try:
    spi.open(0, 0)
    print("PYPI spidev: opened /dev/spidev0.0?!", flush=True)
except FileNotFoundError as exc:
    print(f"PYPI spidev: FileNotFoundError {exc}", flush=True)
