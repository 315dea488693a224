"""builder/config.py: pinit.toml -> BuildConfig, and every error naming file, key and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.config import BuildConfig, load_build_config, parse_size, to_init_json
from hostkit.errors import BuildError
from init.config import CrashLoop, Module
from init.validate import from_dict


def elf(machine: int) -> bytes:
    # e_ident (64-bit, little-endian, version 1), e_type ET_EXEC, e_machine.
    return (
        b"\x7fELF\x02\x01\x01"
        + bytes(9)
        + (2).to_bytes(2, "little")
        + machine.to_bytes(2, "little")
        + bytes(44)
    )


FULL = """\
[init]
mode = "supervise"
hostname = "kiosk"
console = "ttyAMA0"
on_failure = "halt"
failure_delay = 2
debug = false
shutdown_grace = 3.5

[kernel]
modules = ["dummy", "fs-ext4"]
params = { dummy = "numdummies=2" }
module_failure = "fatal"
source = "debian"

[watchdog]
device = "/dev/watchdog"
timeout = 10
interval = 2

[data]
size = "64MiB"
options = "noatime"

[[service]]
name = "app"
exec = "bin/app"
args = ["--port", "80"]
env = { B = "2", A = "1" }
restart = "on-failure"
crash_loop = { count = 3, window = 30, action = "shell" }

[[service]]
name = "tool"
exec = "tool.py"

[image]
compression = "zstd"
files = { "/etc/motd" = "files/motd" }
config_txt = ["dtparam=audio=on"]
cmdline = ["quiet"]
size = "256MiB"
"""


def project(tmp_path: Path, text: str) -> Path:
    (tmp_path / "bin").mkdir(exist_ok=True)
    (tmp_path / "bin" / "app").write_bytes(elf(183))
    (tmp_path / "bin" / "x86").write_bytes(elf(62))
    (tmp_path / "tool.py").write_text("print('hi')\n")
    (tmp_path / "pkg").mkdir(exist_ok=True)
    (tmp_path / "pkg" / "__main__.py").write_text("")
    (tmp_path / "nopkg").mkdir(exist_ok=True)
    (tmp_path / "script.sh").write_text("#!/bin/sh\n")
    (tmp_path / "files").mkdir(exist_ok=True)
    (tmp_path / "files" / "motd").write_text("hello\n")
    path = tmp_path / "pinit.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> BuildError:
    path = project(tmp_path, text)
    with pytest.raises(BuildError) as caught:
        load_build_config(path)
    assert str(caught.value).startswith(str(path)), "the message names the file"
    return caught.value


SERVICE = '[[service]]\nname = "app"\nexec = "bin/app"\n'


def test_full_example(tmp_path: Path) -> None:
    build = load_build_config(project(tmp_path, FULL))
    assert isinstance(build, BuildConfig)
    init = build.init
    assert (init.hostname, init.console, init.on_failure, init.failure_delay) == (
        "kiosk",
        "ttyAMA0",
        "halt",
        2.0,
    )
    assert init.modules == (Module("dummy", "numdummies=2"), Module("fs-ext4", ""))
    assert init.module_failure == "fatal"
    assert (init.watchdog.device, init.watchdog.timeout, init.watchdog.interval) == (
        "/dev/watchdog",
        10,
        2.0,
    )
    assert init.data.device == "LABEL=pinit-data" and init.data.options == "noatime"
    app, tool = init.services
    assert (app.exec, tool.exec) == ("/app/app", "/app/tool")
    assert app.env == (("A", "1"), ("B", "2")) and app.args == ("--port", "80")
    assert app.crash_loop == CrashLoop(3, 30.0, "shell")
    assert build.host_exec == {"app": tmp_path / "bin" / "app", "tool": tmp_path / "tool.py"}
    assert build.kernel_source == "debian"
    assert (build.data_size, build.data_label) == (64 << 20, "pinit-data")
    assert build.image.compression == "zstd"
    assert build.image.files == (("/etc/motd", tmp_path / "files" / "motd"),)
    assert build.image.config_txt == ("dtparam=audio=on",) and build.image.cmdline == ("quiet",)
    assert build.image.size == 256 << 20


def test_minimal_file_uses_the_init_defaults(tmp_path: Path) -> None:
    build = load_build_config(project(tmp_path, '[[service]]\nname = "p"\nexec = "pkg"\n'))
    assert build.init.mode == "supervise" and build.init.data.device == ""
    assert build.host_exec == {"p": tmp_path / "pkg"}
    assert (build.data_size, build.image.size, build.image.compression) == (0, 0, "lz4")


def test_init_json_is_stable_and_reads_back(tmp_path: Path) -> None:
    path = project(tmp_path, FULL)
    first = to_init_json(load_build_config(path))
    assert first == to_init_json(load_build_config(path))
    data = json.loads(first)
    assert list(data) == sorted(data)
    assert "host_exec" not in first.decode() and str(tmp_path) not in first.decode()
    assert from_dict(data, "pinit.json") == load_build_config(path).init


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1048576", 1 << 20),
        (4096, 4096),
        ("64MiB", 64 << 20),
        ("64M", 64 << 20),
        ("512KiB", 512 << 10),
        ("1GiB", 1 << 30),
        (" 2 GiB ", 2 << 30),
    ],
)
def test_parse_size(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["64MB", "MiB", "-1", "1.5GiB", True, -5, ""])
def test_parse_size_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"nothere\.toml: not found") as caught:
        load_build_config(tmp_path / "nothere.toml")
    assert "docs/config.md" in caught.value.hint


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[init]\nmode = "exec"\nhostname = \n')
    assert "not valid TOML" in str(err) and "line 3" in str(err)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[servce]\n", '[servce]: unknown section (did you mean "service"?)'),
        ('mode = "exec"\n', 'mode = "exec": belongs in the [init] section'),
        ('[init]\nhostnme = "x"\n', '[init] hostnme = "x": unknown key (did you mean "hostname"?)'),
        (
            '[init]\nmodule_failure = "warn"\n',
            '[init] module_failure = "warn": belongs in the [kernel] section',
        ),
        (
            '[kernel]\nmodule = ["dummy"]\n',
            '[kernel] module = ["dummy"]: unknown key (did you mean "modules"?)',
        ),
        ('[data]\nsise = "1MiB"\n', 'unknown key (did you mean "size"?)'),
        ('[image]\ncompresion = "xz"\n', 'unknown key (did you mean "compression"?)'),
        (
            SERVICE + 'restrat = "never"\n',
            '[service.app] restrat = "never": unknown key (did you mean "restart"?)',
        ),
        (
            SERVICE + "crash_loop = { cuont = 3 }\n",
            '[service.app.crash_loop] cuont = 3: unknown key (did you mean "count"?)',
        ),
    ],
)
def test_unknown_names_suggest_close_ones(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in str(error_of(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[init]\nmode = "daemon"\n', '[init] mode = "daemon": expected one of supervise, exec'),
        (
            SERVICE + 'restart = "sometimes"\n',
            '[service.app] restart = "sometimes": expected one of always, on-failure, never',
        ),
        ('[init]\ndebug = "yes"\n', '[init] debug = "yes": expected true or false'),
        ("[watchdog]\ntimeout = 1.5\n", "[watchdog] timeout = 1.5: expected an integer"),
        (
            '[kernel]\nmodule_failure = "ignore"\n',
            '[kernel] module_failure = "ignore": expected one',
        ),
        ("init = 3\n", "init = 3: expected a [init] table"),
        ('[service]\nname = "app"\n', 'service = {"name": "app"}: expected [[service]] tables'),
        ('[kernel]\nmodules = "dummy"\n', 'modules = "dummy": expected a list of module names'),
        ('[kernel]\nmodules = ["a", "a"]\n', '"a" is listed twice'),
        (
            '[kernel]\nmodules = ["dummy"]\nparams = { dumy = "x=1" }\n',
            '[kernel] params.dumy = "x=1": not in modules (did you mean "dummy"?)',
        ),
        ("[kernel]\nparams = { dummy = 2 }\n", "params.dummy = 2: expected a one-line string"),
        ('[kernel]\nsource = "no/such/boot"\n', '[kernel] source = "no/such/boot": '),
        ('[data]\nsize = "lots"\n', '[data] size = "lots": expected a size such as "64MiB"'),
        ('[data]\nlabel = "a-label-much-too-long"\n', "expected 1 to 16 characters"),
        ('[data]\ndevice = "sda1"\n', '[data] device = "sda1": expected'),
        ('[image]\ncompression = "bzip2"\n', "expected one of gzip, zstd, xz, lz4, none"),
        ('[image]\nconfig_txt = "x"\n', 'config_txt = "x": expected a list of one-line strings'),
        ('[image]\nfiles = { "/init" = "files/motd" }\n', "/init is written by the builder"),
        ('[image]\nfiles = { "/app/app" = "files/motd" }\n', "is written by the builder"),
        ('[image]\nfiles = { "etc/motd" = "files/motd" }\n', "must be an absolute file path"),
        ('[image]\nfiles = { "/etc/x" = "files/none" }\n', 'files."/etc/x" = "files/none": '),
        ('[image]\nsize = "big"\n', '[image] size = "big": expected a size'),
        ('[image]\ntimezone = "../etc/passwd"\n', 'expected a tz database name, e.g. "Europe/'),
        ('[image]\ntimezone = "/etc/localtime"\n', "expected a tz database name"),
        ('[image]\ntimezone = "Europe/Ber lin"\n', "expected a tz database name"),
    ],
)
def test_bad_values_name_section_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in str(error_of(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[service]]\nname = "app"\n', '[service.app] missing required key "exec"'),
        ('[[service]]\nexec = "bin/app"\n', '[service #1] missing required key "name"'),
        (
            '[[service]]\nname = "a/b"\nexec = "bin/app"\n',
            '[service.a/b] name = "a/b": expected a name',
        ),
        (SERVICE + SERVICE, '[service.app] name = "app": another service has this name'),
        (
            '[init]\nmode = "exec"\n' + SERVICE + '[[service]]\nname = "b"\nexec = "tool.py"\n',
            '[init] mode = "exec": needs exactly one service, found 2',
        ),
        ('[[service]]\nname = "app"\nexec = "bin/nope"\n', 'bin/nope": '),
        ('[[service]]\nname = "app"\nexec = "bin/x86"\n', "is a x86-64 ELF, not aarch64"),
        ('[[service]]\nname = "app"\nexec = "script.sh"\n', "is not an ELF executable, a .py file"),
        ('[[service]]\nname = "app"\nexec = "nopkg"\n', "has no __main__.py"),
        ('[[service]]\nname = "app"\nexec = 5\n', "exec = 5: expected a path on this machine"),
    ],
)
def test_service_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in str(error_of(tmp_path, text))


def test_missing_exec_says_where_paths_are_relative_to(tmp_path: Path) -> None:
    err = error_of(tmp_path, '[[service]]\nname = "app"\nexec = "bin/nope"\n')
    assert f"{tmp_path / 'bin' / 'nope'} does not exist" in str(err)
    assert "relative to the folder of" in err.hint


def test_data_device_given_is_kept(tmp_path: Path) -> None:
    path = project(tmp_path, '[data]\nsize = "8MiB"\ndevice = "/dev/mmcblk0p3"\nlabel = "d"\n')
    build = load_build_config(path)
    assert build.init.data.device == "/dev/mmcblk0p3" and build.data_label == "d"


def test_service_limits_take_sizes_and_bad_ones_are_quoted(tmp_path: Path) -> None:
    from builder.config import load_build_config

    app = tmp_path / "app.py"
    app.write_text("print('hi')\n")
    toml = tmp_path / "pinit.toml"
    toml.write_text(
        '[[service]]\nname = "a"\nexec = "app.py"\nmemory_max = "64MiB"\n'
        "tasks_max = 50\ncpu_weight = 200\n"
    )
    (service,) = load_build_config(toml).init.services
    assert (service.memory_max, service.tasks_max, service.cpu_weight) == (64 << 20, 50, 200)
    toml.write_text('[[service]]\nname = "a"\nexec = "app.py"\nmemory_max = "lots"\n')
    with pytest.raises(BuildError, match=r'\[service.a\] memory_max = "lots": expected a size'):
        load_build_config(toml)
    toml.write_text('[[service]]\nname = "a"\nexec = "app.py"\ncpu_weight = 0\n')
    with pytest.raises(BuildError, match=r"cpu_weight = 0"):
        load_build_config(toml)


def test_network_and_time_tables_turn_them_on_with_defaults(tmp_path: Path) -> None:
    cfg = load_build_config(
        project(tmp_path, f'[network]\n[time]\n{SERVICE}after = ["network", "time"]\n')
    )
    assert [n.interface for n in cfg.init.network] == ["ethernet"]
    assert cfg.init.time.servers == ("dhcp",)
    assert cfg.init.coldplug  # the card's driver is found like any other hardware
    plain = load_build_config(project(tmp_path, SERVICE))
    assert not plain.init.network and not plain.init.time.servers
    two = load_build_config(
        project(
            tmp_path,
            '[[network]]\ninterface = "eth0"\n'
            '[[network]]\ninterface = "eth1"\n'
            'address = "10.0.0.2/24"\n' + SERVICE,
        )
    )
    assert [(n.interface, n.address) for n in two.init.network] == [
        ("eth0", ""),
        ("eth1", "10.0.0.2/24"),
    ]
    assert from_dict(json.loads(to_init_json(two)), "x") == two.init


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[network]\naddress = "10.0.0.5"\n',
            '[network] address = "10.0.0.5": expected "" (DHCP) or an address with its prefix length',
        ),
        (
            '[network]\ninterfce = "eth0"\n',
            '[network] interfce = "eth0": unknown key (did you mean',
        ),
        (
            '[network]\naddress = "10.0.0.5/24"\ngateway = "10.0.1.1"\n',
            '[network] gateway = "10.0.1.1": not in the network of 10.0.0.5/24',
        ),
        ('[time]\nservers = ["pool.example"]\n', "needs a name server"),
        (f'{SERVICE}after = ["network"]\n', '"network" needs a network interface ([network])'),
        (
            '[[network]]\naddress = "10.0.0.2/24"\n[[network]]\naddress = "10.0.0.3/24"\n',
            '[network #2] interface = "ethernet": another [network] names this interface',
        ),
    ],
)
def test_network_and_time_errors_are_one_line_with_where(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in str(error_of(tmp_path, text))


def test_python_table_names_modules_and_distributions(tmp_path: Path) -> None:
    cfg = load_build_config(
        project(
            tmp_path,
            SERVICE + "[python]\noptimize = 2\n"
            'exclude = ["unicodedata"]\ncompiled = ["json.decoder"]\n'
            'wheels = ["pillow", "Pillow-SIMD"]\n',
        )
    )
    assert cfg.python.optimize == 2 and cfg.python.exclude == ("unicodedata",)
    assert cfg.python.compiled == ("json.decoder",)
    assert cfg.python.wheels == ("pillow", "Pillow-SIMD")
    err = error_of(tmp_path, SERVICE + '[python]\nwheels = ["pillow>=11"]\n')
    assert "[python]" in str(err) and "expected a distribution name" in str(err)
    err = error_of(tmp_path, SERVICE + '[python]\nexclude = ["not a module"]\n')
    assert "expected a dotted module name" in str(err)


WIFI = """[network]
country = "GB"
[[network.wifi]]
ssid = "IEEE"
passphrase = "password"
[[network.wifi]]
ssid = "ThisIsASSID"
passphrase = "ThisIsAPassword"
hidden = true
[[network.wifi]]
ssid = "cafe"
"""


def test_wifi_passphrases_become_their_keys_and_the_interface_wireless(tmp_path: Path) -> None:
    cfg = load_build_config(project(tmp_path, WIFI + SERVICE))
    (net,) = cfg.init.network
    assert net.interface == "wireless" and net.country == "GB"
    # IEEE 802.11's own examples of the passphrase-to-PSK mapping (Annex J.4).
    assert [(w.ssid, w.psk, w.hidden) for w in net.wifi] == [
        ("IEEE", "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e", False),
        ("ThisIsASSID", "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af", True),
        ("cafe", "", False),
    ]
    written = to_init_json(cfg)
    assert b"password" not in written and b"ThisIsAPassword" not in written
    assert from_dict(json.loads(written), "x") == cfg.init


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[network]\n[[network.wifi]]\nssid = "home"\npassphrase = "short"\n',
            '[network.wifi #1] passphrase = "...": expected 8 to 63 printable ASCII characters',
        ),
        (
            '[network]\n[[network.wifi]]\nssid = "home"\npassphrase = "long enough"\npsk = "00"\n',
            "give a passphrase or a psk, not both",
        ),
        (
            '[network]\n[[network.wifi]]\nssid = "home"\npsk = "00"\n',
            '[wifi #1] psk = "00": expected 64 hex digits',
        ),
        (
            '[network]\ninterface = "ethernet"\n[[network.wifi]]\nssid = "home"\n',
            "Wi-Fi networks need a wireless interface",
        ),
        ('[network]\ninterface = "wireless"\n', "needs the networks to join"),
        ('[network]\ncountry = "GB"\n', "goes with Wi-Fi"),
        (
            '[network]\ncountry = "gb"\n[[network.wifi]]\nssid = "home"\n',
            'country = "gb": expected a two-letter country code',
        ),
        (
            '[network]\n[[network.wifi]]\nssid = "home"\n[[network.wifi]]\nssid = "home"\n',
            "this network is in the list twice",
        ),
        ('[network]\n[[network.wifi]]\nssid = ""\n', "expected a network name of 1 to 32 bytes"),
        ('[network]\nwifi = "home"\n', "expected [[network.wifi]] tables"),
    ],
)
def test_wifi_errors_are_one_line_and_never_quote_a_passphrase(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = str(error_of(tmp_path, text + SERVICE))
    assert expected in message
    assert "short" not in message and "long enough" not in message


def test_a_board_is_checked(tmp_path: Path) -> None:
    cfg = load_build_config(project(tmp_path, '[image]\nboard = "pi-4"\n' + SERVICE))
    assert cfg.image.board == "pi-4"
    assert load_build_config(project(tmp_path, SERVICE)).image.board == "all"
    message = str(error_of(tmp_path, '[image]\nboard = "pi-zero-w"\n' + SERVICE))
    assert "is a aarch64 ELF, not armel" in message  # the Zero W is an armel board
    assert "expected one of all, aarch64, pi-3" in str(
        error_of(tmp_path, '[image]\nboard = "pi5"\n')
    )


PI_2 = '[image]\nboard = "pi-2"\n'


def test_a_pi_2_card_takes_armhf_services_and_refuses_what_it_does_not_have_yet(
    tmp_path: Path,
) -> None:
    """board = "pi-2": the services' ELFs are armhf ones; [data] and [network] are built as on
    aarch64; [update] is refused for the firmware's sake (no autoboot.txt before the Pi 4),
    requirements are built from sdists; [python] wheels (the native runtime) is refused:
    one-line errors naming the key."""
    arm = PI_2 + '[[service]]\nname = "app"\nexec = "bin/arm"\n'
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "arm").write_bytes(elf(40))
    cfg = load_build_config(project(tmp_path, arm))
    assert cfg.image.board == "pi-2" and cfg.host_exec["app"] == tmp_path / "bin" / "arm"
    load_build_config(project(tmp_path, PI_2 + '[[service]]\nname = "t"\nexec = "tool.py"\n'))
    message = str(error_of(tmp_path, PI_2 + SERVICE))  # bin/app is aarch64
    assert "bin/app is a aarch64 ELF, not armhf" in message
    assert "is a 32-bit ARM ELF, not aarch64" in str(error_of(tmp_path, arm.replace(PI_2, "")))
    (tmp_path / "update.pub").write_bytes(bytes(32))
    (tmp_path / "req.txt").write_text("six\n")
    cfg = load_build_config(
        project(tmp_path, arm + '[data]\nsize = "8MiB"\n[network]\ninterface = "eth0"\n')
    )
    assert cfg.data_size == 8 << 20 and cfg.init.data.device == "LABEL=pinit-data"
    assert [n.interface for n in cfg.init.network] == ["eth0"]
    for text, expected in (
        (
            '[update]\nkey = "update.pub"\n',
            "the pi-2's firmware (bootcode.bin) reads no autoboot.txt, so a card with two "
            "boot slots would not boot",
        ),
        ('[python]\nwheels = ["numpy"]\n', "[python] wheels = "),
    ):
        message = str(error_of(tmp_path, arm + text))
        assert expected in message and "\n" not in message, message
    # Requirements are built from their sdists for armhf; binary wheels are refused, with why.
    cfg = load_build_config(
        project(
            tmp_path,
            PI_2 + '[[service]]\nname = "t"\nexec = "tool.py"\nrequirements = "req.txt"\n',
        )
    )
    assert cfg.requirements == {"t": tmp_path / "req.txt"}
    message = str(error_of(tmp_path, arm + '[python]\nwheels = ["numpy"]\n'))
    assert "has no native runtime for binary wheels" in message and "sdists" in message
    # The 64-bit boards as before.
    cfg = load_build_config(project(tmp_path, SERVICE + '[data]\nsize = "8MiB"\n'))
    assert cfg.data_size == 8 << 20


def test_an_update_url_is_http_to_a_name_or_an_address_and_listen_is_a_port(
    tmp_path: Path,
) -> None:
    (tmp_path / "update.pub").write_bytes(bytes(32))
    update = '[update]\nkey = "update.pub"\n'
    cfg = load_build_config(
        project(
            tmp_path,
            SERVICE + update + 'url = "http://updates.test:8080/a.bundle"\nlisten = 8080\n'
            "[network]\n",
        )
    )
    assert (cfg.init.update.url, cfg.init.update.listen) == (
        "http://updates.test:8080/a.bundle",
        8080,
    )
    assert load_build_config(project(tmp_path, SERVICE + update)).init.update.listen == 0
    https = error_of(tmp_path, SERVICE + update + 'url = "https://updates.test/a"\n[network]\n')
    assert '[update] url = "https://updates.test/a": https is not fetched' in str(https)
    assert https.hint is not None and "signed" in https.hint
    for text, expected in [
        ('url = "http://up_dates/a"\n[network]\n', "neither an IPv4 address nor a host name"),
        ('url = "http://10.0.0.2:99999/a"\n[network]\n', "port 99999 is out of range"),
        ('url = "http://10.0.0.2/a"\n', "needs a network interface ([network])"),
        (
            'url = "http://updates.test/a"\n[network]\naddress = "10.0.0.5/24"\n',
            '"updates.test" is a name: it needs a name server',
        ),
        ("listen = 70000\n[network]\n", "[update] listen = 70000: expected a TCP port"),
        ("listen = -1\n[network]\n", "[update] listen = -1: expected at least 0"),
        ('listen = "http"\n[network]\n', '[update] listen = "http": expected an integer'),
        ("listen = 8080\n", "[update] listen = 8080: needs a network interface"),
    ]:
        assert expected in str(error_of(tmp_path, SERVICE + update + text)), text
    static = '[network]\naddress = "10.0.0.5/24"\n'
    named = load_build_config(
        project(tmp_path, SERVICE + update + 'url = "http://10.0.0.2/a"\n' + static)
    )
    assert named.init.update.url == "http://10.0.0.2/a"  # an address needs no name server


def test_updates_need_a_board_whose_bootloader_reads_autoboot_txt(tmp_path: Path) -> None:
    (tmp_path / "update.pub").write_bytes(bytes(32))
    update = '[update]\nkey = "update.pub"\n'
    for board in ("pi-4", "cm4", "all"):
        cfg = load_build_config(project(tmp_path, f'[image]\nboard = "{board}"\n{SERVICE}{update}'))
        assert cfg.image.board == board
    error = error_of(tmp_path, f'[image]\nboard = "pi-3"\n{SERVICE}{update}')
    assert '[update] key = "update.pub": the pi-3\'s firmware (bootcode.bin) reads no ' in str(
        error
    )
    assert error.hint is not None and 'board = "pi-4"' in error.hint
    assert load_build_config(
        project(tmp_path, '[image]\nboard = "pi-3"\n' + SERVICE)
    )  # no [update]
