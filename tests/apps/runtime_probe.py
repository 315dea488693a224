"""What programs import and do at run time, by names no import statement of theirs shows.

Built by tests/qemu/test_runtime_imports.py as an appliance's service and booted; each check
prints one `RUNTIME <name>: ...` line, a failure included.
"""

import codecs
import encodings.aliases
import socket
import sqlite3
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer


def check(name, fn):
    try:
        print(f"RUNTIME {name}: {fn()}", flush=True)
    except BaseException as exc:  # every failure is a line the test reads, never a dead probe
        print(f"RUNTIME {name} FAILED: {type(exc).__name__}: {exc}", flush=True)


def _getaddrinfo():
    numeric = socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)[0][4]
    named = socket.getaddrinfo("localhost", "http", type=socket.SOCK_STREAM)[0][4]
    return f"ok {numeric} {named} port={socket.getservbyname('ntp', 'udp')}"


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _urlopen():
    server = HTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        with socket.create_connection(("localhost", port), timeout=5):
            pass
        with urllib.request.urlopen(f"http://localhost:{port}/x", timeout=5) as reply:
            return f"ok {reply.status} {reply.read().decode()}"
    finally:
        server.shutdown()


def _codecs():
    names = sorted(set(encodings.aliases.aliases.values()))
    missing = []
    for name in names:
        try:
            codecs.lookup(name)
        except LookupError:
            missing.append(name)
    round_trips = all(
        text.encode(c).decode(c) == text
        for text, names in (
            ("Grüße, 東京", ("utf_8_sig", "utf_16", "utf_32", "utf_7", "gb18030", "iso2022_jp_2")),
            ("東京", ("big5hkscs", "euc_jp", "shift_jis", "euc_kr", "cp950")),
            ("Grüße", ("iso8859_2", "cp1252", "mac_roman")),
            ("Привет", ("koi8_r", "cp1251")),
        )
        for c in names
    )
    binary = (
        codecs.decode(codecs.encode(b"pinit", "hex"), "hex") == b"pinit"
        and codecs.encode("pinit", "rot_13") == "cvavg"
        and codecs.decode(codecs.encode(b"x" * 50, "zlib"), "zlib") == b"x" * 50
        and codecs.decode(codecs.encode(b"y" * 50, "bz2"), "bz2") == b"y" * 50
    )
    idna = "bücher.example".encode("idna")
    return (
        f"ok {len(names) - len(missing)}/{len(names)} missing={missing} "
        f"round_trips={round_trips} binary={binary} idna={idna.decode()}"
    )


def _sysconfig():
    import sysconfig
    import zoneinfo

    return (
        f"ok MULTIARCH={sysconfig.get_config_var('MULTIARCH')} "
        f"SOABI={sysconfig.get_config_vars()['SOABI']} tzpath={bool(zoneinfo.TZPATH)}"
    )


def _computed():
    # Modules the standard library looks up by a name computed at run time: a DOM
    # implementation and a SAX parser by name, dbm's back end by the file's type, a logging
    # handler class named in a dictConfig, concurrent.futures' executors by attribute.
    import concurrent.futures
    import dbm
    import logging.config
    import os
    import tempfile
    import xml.dom
    import xml.sax

    dom = type(xml.dom.getDOMImplementation()).__module__
    sax = type(xml.sax.make_parser()).__module__
    with tempfile.TemporaryDirectory() as tmp:
        with dbm.open(os.path.join(tmp, "db"), "c") as db:
            db[b"k"] = b"v"
        which = dbm.whichdb(os.path.join(tmp, "db"))
    logging.config.dictConfig(
        {
            "version": 1,
            "handlers": {"memory": {"class": "logging.handlers.MemoryHandler", "capacity": 1}},
        }
    )
    handler = type(logging._handlers["memory"])  # 3.11 has no logging.getHandlerByName
    executor = concurrent.futures.ProcessPoolExecutor.__module__
    return f"ok {dom} {sax} {which} {handler.__module__} {executor}"


def _lazy():
    # What the standard library imports inside functions: re's \N{...} (unicodedata),
    # traceback's source lines (linecache), functools.singledispatch (typing, inspect).
    import functools
    import re
    import traceback

    bullet = re.compile(r"\N{BULLET}").pattern
    try:
        raise ValueError("x")
    except ValueError:
        formatted = traceback.format_exc().count("\n")

    @functools.singledispatch
    def kind(x):
        return "object"

    @kind.register
    def _(x: int):
        return "int"

    return f"ok {bullet!a} lines={formatted > 1} dispatch={kind(1)}"


def _sqlite_dump():
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x)")
    db.execute("insert into t values (42)")
    return f"ok {len(list(db.iterdump()))} lines"


def _pythonapi():
    # ctypes reaching the interpreter's own C API: a library's way to stop a thread.
    import ctypes
    import time

    api = ctypes.pythonapi
    api.Py_GetVersion.restype = ctypes.c_char_p
    stopped = threading.Event()

    def spin():
        try:
            while True:
                time.sleep(0.01)
        except KeyboardInterrupt:
            stopped.set()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    raised = api.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt)
    )
    return f"ok {api.Py_GetVersion().decode().split()[0]} async={raised == 1 and stopped.wait(5)}"


def _flags():
    """A docstring, kept as `python3 app.py` keeps it."""
    try:
        assert sys.flags.optimize < 0, "asserts run"
        asserts = False
    except AssertionError:
        asserts = True
    return f"ok optimize={sys.flags.optimize} doc={_flags.__doc__ is not None} asserts={asserts}"


for label, fn in (
    ("getaddrinfo", _getaddrinfo),
    ("urlopen", _urlopen),
    ("codecs", _codecs),
    ("sysconfig", _sysconfig),
    ("computed", _computed),
    ("lazy", _lazy),
    ("sqlite-dump", _sqlite_dump),
    ("pythonapi", _pythonapi),
    ("flags", _flags),
):
    check(label, fn)
print("RUNTIME done", flush=True)
