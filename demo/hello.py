"""pinit's demo appliance: greets, shows what the init set up, then keeps running.

Compiled by the same toolchain as the init into a static aarch64 program; `invoke image`
packs it as the service "hello".
"""

import os
import time

print("Hello world!", flush=True)
uname = os.uname()
print(f"hello: pid {os.getpid()} on {uname.machine}, kernel {uname.release}, host {uname.nodename}")
try:
    modules = sorted(os.listdir("/sys/module"))
    print(f"hello: dummy module loaded: {'dummy' in modules}")
except OSError as exc:
    print(f"hello: cannot read /sys/module: {exc}")
while True:
    time.sleep(3600)
