"""Imports a pure-Python package and two C extensions built from their sdists, and prints
what the C computes, and what sysconfig says of the machine it runs on
(tests/qemu/test_raspi2b.py)."""

import platform
import sysconfig

import serial
from markupsafe import _speedups  # the C module itself: no pure-Python fallback here
from msgpack import _cmsgpack

packed = _cmsgpack.Packer().pack({"pi": 2, "bits": [32, -1, 2**40]})
print(f"PYPI32 pyserial {serial.__version__} on {platform.machine()}", flush=True)
print(f"PYPI32 markupsafe C: {_speedups.escape('<pi & 2>')}", flush=True)
print(f"PYPI32 msgpack C: {packed.hex()} -> {_cmsgpack.unpackb(packed)}", flush=True)
print(f"PYPI32 builtin: {_speedups.__spec__.origin} {_cmsgpack.__spec__.origin}", flush=True)
print(
    f"PYPI32 sysconfig: {sysconfig.get_config_var('MULTIARCH')} "
    f"{sysconfig.get_config_var('SIZEOF_VOID_P')} {sysconfig.get_config_var('EXT_SUFFIX')}",
    flush=True,
)
