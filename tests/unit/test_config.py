"""init/config.py: defaults, the dict round trip, every kind of error, cmdline overrides."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hostkit.paths import REPO
from init.cmdline import apply_cmdline
from init.config import (
    Config,
    CrashLoop,
    Data,
    Device,
    Module,
    Network,
    Service,
    Time,
    Watchdog,
    failure_policy,
)
from init.configfile import parse
from init.errors import ConfigError, InitError
from init.validate import from_dict, to_dict

APP = {"name": "app", "exec": "/app/app"}


def full_config() -> Config:
    return Config(
        mode="supervise",
        hostname="kiosk",
        console="ttyAMA0",
        on_failure="halt",
        failure_delay=2.5,
        debug=True,
        shell=False,
        shutdown_grace=3.0,
        modules=(Module("dummy", "numdummies=2"), Module("fs-ext4")),
        module_failure="fatal",
        watchdog=Watchdog("/dev/watchdog", 10, 2.0),
        data=Data("LABEL=pinit-data", "/data", "ext4", "noatime", 4.0),
        services=(
            Service(
                "app",
                "/app/app",
                args=("--port", "80"),
                env=(("A", "1"), ("B", "x y")),
                cwd="/data",
                user=1000,
                group=1000,
                restart="on-failure",
                backoff_start=1.0,
                backoff_max=8.0,
                backoff_reset=30.0,
                crash_loop=CrashLoop(3, 20.0, "shell"),
                log_lines=50,
            ),
            Service("web", "/app/web"),
        ),
    )


def error_of(data: object, source: str = "pinit.json") -> str:
    with pytest.raises(ConfigError) as caught:
        from_dict(data, source)  # type: ignore[arg-type]
    assert isinstance(caught.value, InitError)
    return str(caught.value)


def test_empty_dict_gives_the_defaults() -> None:
    config = from_dict({}, "pinit.json")
    assert config == Config()
    assert (config.mode, config.on_failure, config.hostname) == ("supervise", "reboot", "pinit")
    assert config.watchdog.device == "" and config.data.mountpoint == "/data"


def test_service_defaults() -> None:
    service = from_dict({"services": [APP]}, "pinit.json").services[0]
    assert service == Service("app", "/app/app")
    assert service.restart == "always" and service.crash_loop == CrashLoop(5, 60.0, "reboot")


def test_round_trip_through_json() -> None:
    config = full_config()
    data = json.loads(json.dumps(to_dict(config)))
    assert data["services"][0]["env"] == {"A": "1", "B": "x y"}
    assert data["modules"][0] == {"name": "dummy", "params": "numdummies=2"}
    assert from_dict(data, "pinit.json") == config


def test_values_stay_hashable_and_env_sorted() -> None:
    config = from_dict({"services": [{**APP, "args": ["a"], "env": {"Z": "1", "A": "2"}}]}, "x")
    assert config.services[0].env == (("A", "2"), ("Z", "1"))
    assert config.services[0].args == ("a",)
    hash(config)


def test_int_accepted_where_float_expected() -> None:
    config = from_dict({"failure_delay": 3, "watchdog": {"interval": 1}}, "x")
    assert config.failure_delay == 3.0 and isinstance(config.failure_delay, float)
    assert isinstance(config.watchdog.interval, float)


def test_value_not_in_choices_is_quoted_with_source_and_section() -> None:
    message = error_of({"services": [{**APP, "restart": "sometimes"}]}, "pinit.toml")
    assert message == (
        'pinit.toml: [service.app] restart = "sometimes": expected one of always, on-failure, never'
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"mode": "daemon"}, 'pinit.json: mode = "daemon": expected one of supervise, exec'),
        (
            {"on_failure": "panic"},
            'pinit.json: on_failure = "panic": expected one of reboot, poweroff, halt, shell',
        ),
        ({"module_failure": "ignore"}, 'module_failure = "ignore": expected one of warn, fatal'),
        (
            {"services": [{**APP, "crash_loop": {"action": "explode"}}]},
            '[service.app.crash_loop] action = "explode": expected one of reboot',
        ),
    ],
)
def test_every_choice_is_checked(data: dict, expected: str) -> None:
    assert expected in error_of(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"debug": 1}, "debug = 1: expected true or false"),
        ({"hostname": 5}, "hostname = 5: expected a string"),
        ({"failure_delay": "5"}, 'failure_delay = "5": expected a number'),
        ({"failure_delay": True}, "failure_delay = true: expected a number"),
        ({"watchdog": {"timeout": 1.5}}, "[watchdog] timeout = 1.5: expected an integer"),
        ({"watchdog": {"timeout": 0}}, "[watchdog] timeout = 0: expected at least 1"),
        ({"shutdown_grace": -1}, "shutdown_grace = -1: expected at least 0"),
        ({"failure_delay": float("inf")}, "failure_delay = Infinity: expected a finite number"),
        ({"watchdog": "on"}, 'watchdog = "on": expected a table'),
        ({"services": {"app": APP}}, "services = {"),
        ({"services": ["app"]}, 'services[0] = "app": expected a table'),
        ({"services": [{**APP, "args": "--x"}]}, '[service.app] args = "--x": expected a list of'),
        ({"services": [{**APP, "args": ["a", 1]}]}, "expected a string"),
        ({"services": [{**APP, "env": ["A=1"]}]}, 'env = ["A=1"]: expected a table of strings'),
        ({"services": [{**APP, "env": {"A=B": "1"}}]}, "cannot be an environment variable name"),
        ({"services": [{**APP, "user": -1}]}, "[service.app] user = -1: expected at least 0"),
    ],
)
def test_wrong_types_are_quoted(data: dict, expected: str) -> None:
    assert expected in error_of(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"services": [{**APP, "name": "a/b"}]}, '[service.a/b] name = "a/b": expected a name of'),
        ({"services": [{**APP, "name": ".hidden"}]}, "not starting with '.'"),
        ({"services": [{**APP, "exec": "app"}]}, 'exec = "app": expected an absolute path'),
        ({"services": [{**APP, "cwd": "data"}]}, "expected an absolute path"),
        ({"hostname": ""}, 'hostname = "": expected 1 to 64 characters'),
        ({"hostname": "x" * 65}, "expected 1 to 64 characters"),
        ({"data": {"device": "sda1"}}, '[data] device = "sda1": expected "", /dev/NAME, LABEL='),
        ({"watchdog": {"device": "watchdog"}}, "expected an absolute path or"),
        ({"modules": [{"name": "a b"}]}, '[module.a b] name = "a b": expected a module name'),
    ],
)
def test_value_checks(data: dict, expected: str) -> None:
    assert expected in error_of(data)


def test_missing_required_keys() -> None:
    assert (
        error_of({"services": [{"name": "app"}]})
        == 'pinit.json: [service.app] missing required key "exec"'
    )
    assert (
        error_of({"services": [APP, {"exec": "/app/x"}]})
        == 'pinit.json: [service #2] missing required key "name"'
    )


def test_unknown_key_suggests_the_close_one() -> None:
    message = error_of({"services": [{**APP, "restrat": "always"}]}, "pinit.toml")
    assert message == (
        'pinit.toml: [service.app] restrat = "always": unknown key (did you mean "restart"?)'
    )
    assert 'did you mean "interval"' in error_of({"watchdog": {"intervall": 1}})
    assert error_of({"zzzzzz": 1}) == "pinit.json: zzzzzz = 1: unknown key"


def test_rules_across_fields() -> None:
    assert '[service.app] name = "app": another service has this name' in error_of(
        {"services": [APP, APP]}
    )
    assert 'mode = "exec": needs exactly one service, found 2' in error_of(
        {"mode": "exec", "services": [APP, {**APP, "name": "b"}]}
    )
    assert "[watchdog] interval = 20.0: must be shorter than timeout (15)" in error_of(
        {"watchdog": {"device": "/dev/watchdog", "interval": 20}}
    )
    assert "backoff_max = 0.1: must not be below backoff_start (0.5)" in error_of(
        {"services": [{**APP, "backoff_max": 0.1}]}
    )
    assert "listed twice" in error_of({"modules": [{"name": "a-b"}, {"name": "a_b"}]})


def test_top_level_must_be_a_table() -> None:
    assert "expected a table" in error_of([1, 2])


def test_load_reads_json(tmp_path) -> None:
    path = tmp_path / "pinit.json"
    path.write_text(json.dumps(to_dict(full_config())))
    assert parse(path.read_bytes(), str(path)) == full_config()


def test_parse_errors_name_the_file() -> None:
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON: .*line 2"):
        parse(b'{"mode": "exec",\n}', "bad.json")
    with pytest.raises(ConfigError, match=r'wrong\.json: mode = "sometimes"'):
        parse(b'{"mode": "sometimes"}', "wrong.json")


def test_failure_policy_is_shell_in_debug() -> None:
    assert failure_policy(Config(on_failure="poweroff")) == "poweroff"
    assert failure_policy(Config(on_failure="poweroff", debug=True)) == "shell"


def test_cmdline_overrides_top_level_settings() -> None:
    config, warnings = apply_cmdline(
        Config(services=(Service("app", "/app/app"),)),
        {
            "pinit.debug": "",
            "pinit.shell": "yes",
            "pinit.mode": "exec",
            "pinit.on_failure": "shell",
            "pinit.hostname": "box",
            "pinit.console": "ttyAMA0",
            "pinit.failure_delay": "3",
            "pinit.shutdown_grace": "0.5",
            "quiet": "",
            "console": "ttyS0",
        },
    )
    assert warnings == []
    assert (config.debug, config.shell, config.mode, config.on_failure) == (
        True,
        True,
        "exec",
        "shell",
    )
    assert (config.hostname, config.console, config.failure_delay, config.shutdown_grace) == (
        "box",
        "ttyAMA0",
        3.0,
        0.5,
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("", True),
        ("0", False),
        ("no", False),
        ("False", False),
    ],
)
def test_cmdline_bools(text: str, value: bool) -> None:
    config, warnings = apply_cmdline(Config(debug=not value), {"pinit.debug": text})
    assert warnings == [] and config.debug is value


def test_cmdline_problems_are_warnings_not_errors() -> None:
    base = Config()
    config, warnings = apply_cmdline(
        base,
        {
            "pinit.debgu": "1",
            "pinit.debug": "maybe",
            "pinit.failure_delay": "soon",
            "pinit.mode": "exec",
            "pinit.on_failure": "panic",
            "pinit.services": "x",
            "pinit.hostname": "",
        },
    )
    assert config == base
    assert warnings == [
        'kernel command line: pinit.debgu: unknown setting (did you mean "pinit.debug"?); ignored',
        "kernel command line: pinit.debug=maybe: expected 1 or 0 (or yes/no, true/false); ignored",
        "kernel command line: pinit.failure_delay=soon: expected a number; ignored",
        'kernel command line: mode = "exec": needs exactly one service, found 0; ignored',
        "kernel command line: pinit.on_failure=panic: expected one of reboot, poweroff, halt, "
        "shell; ignored",
        "kernel command line: pinit.services: unknown setting; ignored",
        "kernel command line: pinit.hostname=: expected 1 to 64 characters without spaces or '/'; "
        "ignored",
    ]


def test_cmdline_keeps_good_words_beside_bad_ones() -> None:
    config, warnings = apply_cmdline(Config(), {"pinit.debug": "1", "pinit.nope": "1"})
    assert config.debug and len(warnings) == 1


def test_importing_the_init_stays_cheap() -> None:
    # PID 1 start-up (every import is paid under emulation before the app can start): no
    # difflib unless an error message needs it, never typing or ctypes, and none of the modules
    # that pull in re/inspect/enum. -S: the init runs without site, as the compiled binary does.
    heavy = (
        "difflib",
        "typing",
        "ctypes",
        "pathlib",
        "fnmatch",
        "dataclasses",
        "inspect",
        "json",
        "re",
        "enum",
        "signal",
        "collections",
        "subprocess",
        "threading",
    )
    code = (
        "import sys, init.main, init.config, init.cmdline, init.modules; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


def test_docs_describe_every_key() -> None:
    from init.frozen import fields

    docs = (REPO / "docs" / "config.md").read_text()
    from init.config import Update

    for cls in (Config, Service, CrashLoop, Watchdog, Data, Device, Network, Time, Update):
        for f in fields(cls):
            if f.name not in (
                "modules",
                "services",
                "watchdog",
                "data",
                "crash_loop",
                "devices",
                "network",
                "time",
                "update",
            ):
                assert f"| `{f.name}` |" in docs or f"`{f.name}`" in docs, f.name
    assert "125" in docs


def test_services_start_after_those_they_name_and_cycles_or_unknown_names_are_errors() -> None:
    from init.config import start_order

    def svc(name: str, *after: str) -> dict:
        return {"name": name, "exec": f"/app/{name}", "after": list(after)}

    config = from_dict(
        {"services": [svc("ui", "api"), svc("api", "db"), svc("db"), svc("log")]}, "t"
    )
    assert [s.name for s in start_order(config.services)] == ["db", "api", "ui", "log"]
    assert "a cycle: a after b after a" in error_of({"services": [svc("a", "b"), svc("b", "a")]})
    assert 'no service named "dbb"' in error_of({"services": [svc("db"), svc("ui", "dbb")]})
    assert '"data" needs a data partition' in error_of({"services": [svc("ui", "data")]})
