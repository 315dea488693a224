"""The network client's real syscalls (ioctl, rtnetlink, link events) in a network namespace
of its own: a veth pair, a static address and route set through the real Kernel, then the
peer taken down and up again. Nothing outside the namespace is touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from hostkit.paths import REPO

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network and mount namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs ip(8) to make the veth pair"),
    pytest.mark.timeout(60),
]

SCRIPT = """
import subprocess, sys
from init.config import Network
from init.console import Log
from init.kernel import Kernel
from init.network import Interface, write_resolv
from init.timeline import Timeline

root = sys.argv[1]
sh = lambda *a: subprocess.run(a, check=True, capture_output=True, text=True).stdout
subprocess.run(["mount", "-t", "sysfs", "sysfs", root + "/sys"], check=True)   # this netns's
sh("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
sh("ip", "link", "set", "veth1", "up")
kernel = Kernel()
config = Network(interface="veth0", address="10.1.0.2/24", gateway="10.1.0.1", dns=("10.1.0.1",))
net = Interface(kernel, root, config, "probe", Log(kernel), Timeline(kernel.clock))
net.on_lease = lambda: write_resolv(kernel, root, [net], Log(kernel))
net.start()

def settle(seconds):
    end = kernel.clock() + seconds
    while kernel.clock() < end:
        for fd in kernel.select(net.fds(), end - kernel.clock()):
            net.ready(fd)

settle(0.5)   # the carrier comes up a moment after IFF_UP
print("UP", net.up, flush=True)
print("ADDR", sh("ip", "-4", "-o", "addr", "show", "veth0").split()[3], flush=True)
print("ROUTE", sh("ip", "route", "show", "default").strip(), flush=True)
sh("ip", "link", "set", "veth1", "down")
settle(0.5)
print("AFTER DOWN", net.up, flush=True)
"""


def test_static_address_route_and_link_events_through_real_rtnetlink(host_sys, tmp_path) -> None:
    (tmp_path / "sys").mkdir()
    (tmp_path / "etc").mkdir()
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{host_sys}"}
    out = subprocess.run(
        [
            "unshare",
            "--net",
            "--mount",
            "--propagation",
            "private",
            sys.executable,
            "-c",
            textwrap.dedent(SCRIPT),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=50,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "pinit: network: veth0: 10.1.0.2/24 (static, gateway 10.1.0.1)" in lines, lines
    assert "UP True" in lines and "ADDR 10.1.0.2/24" in lines
    assert any(
        line.startswith("ROUTE default via 10.1.0.1 dev veth0 proto static") for line in lines
    ), lines
    assert "pinit: network: veth0: link down" in lines and "AFTER DOWN True" in lines
    assert (tmp_path / "etc" / "resolv.conf").read_text() == "nameserver 10.1.0.1\n"


TCP = """
import errno, subprocess
from init.kernel import Kernel

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
kernel = Kernel()
server = kernel.tcp_listen(8080)
try:
    kernel.tcp_accept(server)
except BlockingIOError:
    print("NONE WAITING", flush=True)
try:
    kernel.tcp_listen(8080)
except OSError as exc:
    print("TAKEN", errno.errorcode[exc.errno], flush=True)
client = kernel.tcp_socket(bytes([127, 0, 0, 1]), 8080)
assert kernel.select([server], 2.0) == [server]
accepted, address = kernel.tcp_accept(server)
print("FROM", ".".join(map(str, address)), flush=True)
kernel.write(client, b"PUT /update HTTP/1.1")
assert kernel.select([accepted], 2.0) == [accepted]
print("GOT", kernel.read(accepted, 100).decode(), flush=True)
"""


def test_the_listening_and_connecting_tcp_sockets_through_the_real_kernel(host_sys) -> None:
    """PID 1's TCP seam (init/sysdefs.py): a socket listening on every address, a client
    connecting over loopback, accepted with its address; in a network namespace of its own."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{host_sys}"}
    out = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", textwrap.dedent(TCP)],
        capture_output=True,
        text=True,
        env=env,
        timeout=50,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "NONE WAITING",
        "TAKEN EADDRINUSE",
        "FROM 127.0.0.1",
        "GOT PUT /update HTTP/1.1",
    ]
