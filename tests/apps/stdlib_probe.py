"""A service that uses the standard library the way appliances do; each check prints one line.

Built by tests/qemu/test_stdlib.py into an image with a data partition and booted twice.
"""

import asyncio
import bz2
import ctypes
import decimal
import fcntl
import importlib
import linecache
import lzma
import mmap
import os
import queue
import signal
import sqlite3
import ssl
import termios
import threading
import time
import zlib
import zoneinfo
from datetime import UTC, datetime

import fallback_import

# The same kind of import in the main script, which Nuitka compiles to C rather than embeds:
# its ImportError branch must be in the binary too.
try:
    import importlib_metadata as main_chosen
except ImportError:
    import graphlib as main_chosen


def _read(folder):
    with open(os.path.join(folder, "greeting.txt")) as f:
        return "ok " + f.read().strip()


def _plugin_name():
    with open(os.path.join(os.path.dirname(__file__), "probe-data", "module.txt")) as f:
        return f.read().strip()


def check(name, fn):
    try:
        print(f"STDLIB {name}: {fn()}", flush=True)
    except Exception as exc:  # every failure is a line the test reads, never a dead probe
        print(f"STDLIB {name} FAILED: {type(exc).__name__}: {exc}", flush=True)


async def _gather():
    async def square(i):
        await asyncio.sleep(0.01 * (5 - i))
        return i * i

    tasks = [asyncio.create_task(square(i)) for i in range(5)]
    return sum(await asyncio.gather(*tasks))


def _asyncio():
    return f"ok sum={asyncio.run(_gather())}"


def _termios():
    fd = os.open("/dev/ttyAMA0", os.O_RDWR | os.O_NOCTTY)
    try:
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = termios.B115200
        attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB | termios.CSTOPB)) | termios.CS8
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        back = termios.tcgetattr(fd)
        speed = 115200 if back[5] == termios.B115200 else back[5]
        return f"ok speed={speed} 8N1={back[2] & termios.CSIZE == termios.CS8}"
    finally:
        os.close(fd)


def _mmap():
    path = "/tmp/mmap-probe"
    with open(path, "wb") as f:
        f.write(b"." * 4096)
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 4096) as m:
        m[0:5] = b"hello"
        m.flush()
    with open(path, "rb") as f:
        on_disk = f.read(5)
    anon = mmap.mmap(-1, 8192)
    anon[4096:4101] = b"world"
    return f"ok file={on_disk.decode()} anon={anon[4096:4101].decode()}"


class Winsize(ctypes.Structure):
    _fields_ = [
        ("rows", ctypes.c_ushort),
        ("cols", ctypes.c_ushort),
        ("xpixel", ctypes.c_ushort),
        ("ypixel", ctypes.c_ushort),
    ]


def _ctypes_ioctl():
    fd = os.open("/dev/ttyAMA0", os.O_RDWR | os.O_NOCTTY)
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, Winsize(rows=24, cols=80))
        got = Winsize()
        fcntl.ioctl(fd, termios.TIOCGWINSZ, got)
        return f"ok rows={got.rows} cols={got.cols} sizeof={ctypes.sizeof(Winsize)}"
    finally:
        os.close(fd)


def _dlopen():
    try:
        ctypes.CDLL("libm.so.6")
    except OSError as exc:
        return f"refused: OSError: {exc}"
    return "loaded?!"


def _sqlite():
    db = sqlite3.connect("/data/probe.db")
    with db:
        db.execute("CREATE TABLE IF NOT EXISTS boots (at REAL)")
        db.execute("INSERT INTO boots VALUES (?)", (time.time(),))
    (count,) = db.execute("SELECT count(*) FROM boots").fetchone()
    db.close()
    return f"ok boots={count} sqlite={sqlite3.sqlite_version}"


def _ssl():
    ctx = ssl.create_default_context()
    return f"ok verify={ctx.verify_mode.name} {ssl.OPENSSL_VERSION.split()[0]}"


def _compression():
    data = b"pinit " * 1000
    same = all(mod.decompress(mod.compress(data)) == data for mod in (lzma, bz2, zlib))
    return f"ok roundtrips={same}"


def _decimal():
    decimal.getcontext().prec = 30
    return f"ok {decimal.Decimal('1.1') + decimal.Decimal('2.2')} {decimal.Decimal(1) / 7}"


def _threading():
    counter = [0]
    lock = threading.Lock()
    done: queue.Queue[str] = queue.Queue()

    def work(name):
        for _ in range(1000):
            with lock:
                counter[0] += 1
        done.put(name)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return f"ok count={counter[0]} finished={done.qsize()}"


def _zones():
    # Any zone of the tz database, as on Debian; and the image's own ([image] timezone), which
    # the C library's local time follows: a summer and a winter instant, offsets in hours.
    summer, winter = 1782907200, 1797595200  # 2026-07-01 and 2026-12-18, 12:00 UTC
    tokyo = datetime.fromtimestamp(summer, zoneinfo.ZoneInfo("Asia/Tokyo"))
    york = datetime.fromtimestamp(winter, zoneinfo.ZoneInfo("America/New_York"))
    local = [time.localtime(t).tm_gmtoff // 3600 for t in (summer, winter)]
    aware = datetime.fromtimestamp(summer, UTC).astimezone()
    return (
        f"ok tokyo={tokyo.utcoffset()} new_york={york.tzname()} local={local} "
        f"{aware.tzname()} {open('/etc/timezone').read().strip()}"
    )


def _accounts():
    import getpass
    import grp
    import pwd

    return f"ok {getpass.getuser()} {pwd.getpwuid(0).pw_dir} {grp.getgrgid(0).gr_name}"


def _square(n):
    return n * n


def _processes():
    # Worker processes, as appliances fan work out: Linux's default start method (fork).
    import concurrent.futures
    import multiprocessing

    with multiprocessing.Pool(2) as pool:
        squares = pool.map(_square, range(5))
    with concurrent.futures.ProcessPoolExecutor(2) as executor:
        total = sum(executor.map(_square, range(4)))
    queue_ = multiprocessing.Queue()
    child = multiprocessing.Process(target=queue_.put, args=("child",))
    child.start()
    got = queue_.get(timeout=30)
    child.join()
    return f"ok pool={squares} executor={total} process={got} exit={child.exitcode}"


def _trusted():
    # The CAs OpenSSL trusts by default, as on Debian (ca-certificates): what urllib's HTTPS,
    # asyncio's and paho-mqtt's TLS verify servers against.
    context = ssl.create_default_context()
    cafile = ssl.get_default_verify_paths().cafile
    with open(cafile) as f:
        bundled = f.read().count("BEGIN CERTIFICATE")
    loaded = context.cert_store_stats()["x509_ca"]
    return f"ok {cafile} all={loaded == bundled > 100}"


def _not_static():
    try:
        import nis  # noqa: F401
    except ImportError as exc:
        return f"refused: ImportError: {exc}"
    return "imported?!"


def _left_out():
    # re imports unicodedata inside a function (for \N{...} escapes); the probe's pinit.toml
    # excludes it: it is not in the binary, and importing it says so.
    import re

    try:
        re.compile(r"\N{DIGIT ONE}")
    except ImportError as exc:
        return f"refused: {type(exc).__name__}: {exc}"
    return "compiled?!"


for name, fn in (
    ("asyncio", _asyncio),
    ("termios", _termios),
    ("mmap", _mmap),
    ("ctypes-ioctl", _ctypes_ioctl),
    ("dlopen", _dlopen),
    ("sqlite3", _sqlite),
    ("ssl", _ssl),
    ("compression", _compression),
    ("decimal", _decimal),
    ("threading", _threading),
    ("zones", _zones),
    ("accounts", _accounts),
    ("processes", _processes),
    ("trusted", _trusted),
    ("nis", _not_static),
    ("left-out", _left_out),
    ("fallback", lambda: f"ok {fallback_import.NAME}"),
    ("fallback in main", lambda: f"ok {main_chosen.__name__}"),
    # The program's folder comes with it (probe-data/ beside this file), found as under
    # `python3 app.py`: by __file__, and from the working directory.
    ("data beside", lambda: _read(os.path.join(os.path.dirname(__file__), "probe-data"))),
    ("data from cwd", lambda: _read("probe-data")),
    # __file__ and tracebacks name this file, whose source is there too.
    ("file", lambda: f"ok {__file__}"),
    ("source", lambda: "ok " + linecache.getline(__file__, 1).split(" that ")[0]),
    # A module named in a data file (a plugin a config names): nothing compiles it in.
    ("by name", lambda: "ok " + importlib.import_module(_plugin_name()).WHERE),
):
    check(name, fn)
print("STDLIB done", flush=True)
os.kill(1, signal.SIGUSR2)
while True:
    time.sleep(60)
