"""Each package an appliance is commonly built from, doing one real thing on the device.

One line per package: "PKG <name>: ok <what it did>" or "PKG <name>: FAIL <error>"; then
"PKG done: <n> ok, <m> failed" and /run/packages-done (tests/qemu/test_packages_boot.py).
Everything talks to servers this program starts itself, on 127.0.0.1.
"""

import asyncio
import os
import socket
import sys
import threading
import traceback

RESULTS: dict[str, bool] = {}


def check(name):
    def run(fn):
        try:
            detail = fn()
            RESULTS[name] = True
            print(f"PKG {name}: ok {detail}", flush=True)
        except BaseException as exc:  # noqa: BLE001 - every failure is reported, then counted
            RESULTS[name] = False
            print(f"PKG {name}: FAIL {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc()
        return fn

    return run


@check("flask+requests")
def _():
    import flask
    import markupsafe
    import requests
    from werkzeug.serving import make_server

    app = flask.Flask("appliance")

    @app.get("/status/<name>")
    def status(name):
        return flask.jsonify(name=name, escaped=str(markupsafe.escape("<b>")))

    server = make_server("127.0.0.1", 8081, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    reply = requests.get("http://127.0.0.1:8081/status/pump", timeout=10)
    server.shutdown()
    assert reply.json() == {"name": "pump", "escaped": "&lt;b&gt;"}, reply.text
    from importlib.metadata import version

    return f"GET {reply.status_code} {reply.json()['name']} flask {version('flask')}"


@check("markupsafe")
def _():
    from importlib.metadata import version

    import markupsafe

    assert markupsafe.escape("<a href='x'>") == "&lt;a href=&#39;x&#39;&gt;"
    # Built from its sdist: its metadata is pinit's, read where importlib.metadata looks.
    return f"{version('markupsafe')} speedups=" + (
        "C" if "markupsafe._speedups" in sys.modules else "pure"
    )


@check("pyyaml")
def _():
    import yaml

    data = yaml.safe_load("pins: [17, 27]\nname: pump\n")
    assert data == {"pins": [17, 27], "name": "pump"}, data
    text = yaml.safe_dump(data, sort_keys=True)
    return f"round trip {len(text)} bytes libyaml={yaml.__with_libyaml__}"


@check("msgpack")
def _():
    import msgpack

    packed = msgpack.packb({"t": 21.5, "pins": [1, 2, 3]})
    assert msgpack.unpackb(packed) == {"t": 21.5, "pins": [1, 2, 3]}
    return f"{len(packed)} bytes impl={msgpack.Packer.__module__}"


@check("websockets")
def _():
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message.upper())

    async def main():
        async with serve(echo, "127.0.0.1", 8765):
            async with connect("ws://127.0.0.1:8765") as ws:
                await ws.send("ping")
                return await ws.recv()

    got = asyncio.run(main())
    assert got == "PING", got
    return f"echo {got}"


@check("aiohttp")
def _():
    import aiohttp
    from aiohttp import web

    async def hello(request):
        return web.json_response({"sensor": request.match_info["name"], "ok": True})

    async def main():
        app = web.Application()
        app.router.add_get("/sensors/{name}", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 8082).start()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get("http://127.0.0.1:8082/sensors/t1") as reply:
                    return reply.status, await reply.json()
        finally:
            await runner.cleanup()

    status, body = asyncio.run(main())
    assert status == 200 and body == {"sensor": "t1", "ok": True}, (status, body)
    from aiohttp import http_parser

    parser = "C" if http_parser.HttpResponseParser.__module__ == "aiohttp._http_parser" else "pure"
    return f"GET {status} {body['sensor']} parser={parser}"


@check("paho-mqtt")
def _():
    import paho.mqtt.client as mqtt

    listener = socket.create_server(("127.0.0.1", 1883))
    received = []

    def broker():
        """Enough of MQTT 3.1.1 for one client: CONNACK, then each PUBLISH until DISCONNECT."""
        conn, _ = listener.accept()
        with conn:
            while True:
                head = conn.recv(1)
                if not head:
                    return
                length, shift = 0, 0
                while True:
                    byte = conn.recv(1)[0]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                body = b""
                while len(body) < length:
                    body += conn.recv(length - len(body))
                kind = head[0] >> 4
                if kind == 1:
                    conn.sendall(b"\x20\x02\x00\x00")
                elif kind == 3:
                    size = int.from_bytes(body[:2], "big")
                    received.append((body[2 : 2 + size].decode(), body[2 + size :]))
                elif kind == 14:
                    return

    thread = threading.Thread(target=broker, daemon=True)
    thread.start()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pinit")
    client.connect("localhost", 1883)
    client.loop_start()
    info = client.publish("pinit/temperature", b"21.5", qos=0)
    info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
    thread.join(10)
    listener.close()
    assert received == [("pinit/temperature", b"21.5")], received
    return f"published {received[0][0]}"


@check("sqlalchemy")
def _():
    from sqlalchemy import String, create_engine, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Reading(Base):
        __tablename__ = "readings"
        id: Mapped[int] = mapped_column(primary_key=True)
        sensor: Mapped[str] = mapped_column(String(20))
        value: Mapped[float]

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Reading(sensor="t1", value=20.5), Reading(sensor="t1", value=21.5)])
        session.commit()
        values = session.scalars(select(Reading.value).where(Reading.sensor == "t1")).all()
    assert sorted(values) == [20.5, 21.5], values
    return f"{len(values)} rows through the ORM"


@check("python-dateutil")
def _():
    from datetime import datetime

    from dateutil import parser, tz
    from dateutil.relativedelta import relativedelta

    when = parser.parse("2026-07-01T12:00:00Z") + relativedelta(months=+1, days=-1)
    berlin = tz.gettz("Europe/Berlin")
    assert berlin is not None, "no Europe/Berlin"
    offset = datetime(2026, 7, 31, 12, tzinfo=berlin).utcoffset()
    assert when.isoformat() == "2026-07-31T12:00:00+00:00", when
    assert offset is not None and offset.total_seconds() == 7200, offset
    return f"{when.date()} Europe/Berlin UTC+{int(offset.total_seconds()) // 3600}"


@check("six+typing_extensions")
def _():
    import six
    import typing_extensions
    from six.moves.urllib.parse import quote

    class Point(typing_extensions.TypedDict):
        x: int

    assert quote("a b") == "a%20b" and six.PY3
    assert typing_extensions.get_type_hints(Point) == {"x": int}
    return "six.moves and TypedDict"


@check("psutil")
def _():
    import psutil

    memory = psutil.virtual_memory().total
    rss = psutil.Process().memory_info().rss
    assert memory > 0 and rss > 0 and psutil.cpu_count() >= 1
    return f"cpus={psutil.cpu_count()} memory={memory >> 20} MiB rss={rss >> 20} MiB"


@check("smbus2")
def _():
    from smbus2 import SMBus, i2c_msg

    msg = i2c_msg.write(0x40, [0x01, 0x02, 0x03])
    assert list(msg) == [1, 2, 3] and len(msg) == 3
    try:
        SMBus(1)
        bus = "/dev/i2c-1 opened"
    except FileNotFoundError:
        bus = "no /dev/i2c-1 (QEMU has no I2C)"
    return f"i2c_msg of {len(msg)} bytes; {bus}"


@check("gpiozero")
def _():
    from gpiozero import LED, Button, Device
    from gpiozero.pins.mock import MockFactory

    Device.pin_factory = MockFactory()
    led, button = LED(17), Button(27)
    led.on()
    assert led.is_lit and Device.pin_factory.pin(17).state
    Device.pin_factory.pin(27).drive_low()
    assert button.is_pressed
    return f"mock LED on, button pressed; /dev/gpiochip0 {os.path.exists('/dev/gpiochip0')}"


@check("evdev")
def _():
    import evdev
    from evdev import ecodes

    devices = [evdev.InputDevice(path) for path in evdev.list_devices()]
    keys = {d.name: d for d in devices}
    assert "gpio-keys" in keys, sorted(keys)
    device = keys["gpio-keys"]
    capabilities = device.capabilities()
    assert ecodes.KEY_POWER in capabilities[ecodes.EV_KEY], capabilities
    device.close()
    return f"{device.path} {device.name}: EV_KEY KEY_POWER"


failed = [name for name, ok in RESULTS.items() if not ok]
print(
    f"PKG done: {len(RESULTS) - len(failed)} ok, {len(failed)} failed {' '.join(failed)}",
    flush=True,
)
open("/run/packages-done", "w").close()  # arrays.py powers the board off
