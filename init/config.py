"""The init's configuration: one frozen definition (the schema), shared with the builder.

The builder validates pinit.toml into these values (init/validate.py) and writes them to
/etc/pinit.json; the init reads that file at boot (init/configfile.py) and lets `pinit.*` words
on the kernel command line override it (init/cmdline.py). Defaults live here and nowhere else.
"""

from __future__ import annotations

from init.frozen import field, frozen

# Where the builder writes the config and PID 1 reads it: both sides import this one name.
CONFIG_FILE = "/etc/pinit.json"
MODES = ("supervise", "exec")
RESTART = ("always", "on-failure", "never")
POLICIES = ("reboot", "poweroff", "halt", "shell")
MODULE_FAILURE = ("warn", "fatal")
WAIT_EXPIRED = ("start", "skip", "reboot")
# [data] on_damage: what a data partition that e2fsck cannot make mountable leads to.
ON_DAMAGE = ("continue", "fail", "format")
# The file systems checked before mounting, with the e2fsck the image ships for them.
EXT_TYPES = ("ext2", "ext3", "ext4")
E2FSCK = "/sbin/e2fsck"
FIRST_ETHERNET = "ethernet"  # [network] interface: the first ethernet the kernel has
FIRST_WIRELESS = "wireless"  # [network] interface: the first Wi-Fi interface the kernel has
CONDITIONS = ("data", "network", "time")  # `after` words that are not service names

# A service that exits with this status is not restarted, whatever its restart policy
# (the gokrazy convention).
DO_NOT_RESTART = 125


@frozen
class CrashLoop:
    count: int = 5  # this many failures ...
    window: float = 60.0  # ... within this many seconds ...
    action: str = "reboot"  # ... then: reboot | poweroff | halt | shell


@frozen
class Service:
    name: str
    exec: str  # path inside the initramfs, e.g. /app/hello
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    cwd: str = "/"
    user: int = 0
    group: int = 0
    groups: tuple[int, ...] = ()  # supplementary groups (the builder fills them in
    # from the user's [[user]] table)
    restart: str = "always"  # always | on-failure | never
    backoff_start: float = 0.5  # first restart delay, seconds
    backoff_max: float = 30.0  # cap for the doubling delay
    backoff_reset: float = 10.0  # a run this long resets the delay to backoff_start
    crash_loop: CrashLoop = field(default_factory=CrashLoop)
    log_lines: int = 200  # bounded in-memory log kept per service
    # Limits of the service's cgroup (every process it starts): 0 = no limit.
    memory_max: int = 0  # bytes (pinit.toml takes "64MiB")
    tasks_max: int = 512  # processes and threads: a fork loop stops here
    cpu_weight: int = 100  # 1..10000, relative to the other services
    log_to_data: bool = False  # also keep its output in <data>/log/<name>.log
    log_max: int = 1048576  # bytes per log file before it is rotated to .1
    wait_for: tuple[str, ...] = ()  # paths (a mount point, a device node) to wait for
    wait_timeout: float = 30.0  # ... this long; then it starts anyway, and says so
    after: tuple[str, ...] = ()  # started only once these services have started
    # ("data": once the data partition is mounted;
    # "network": an address is up; "time": the clock
    # was synced once), up to wait_timeout
    on_wait_timeout: str = "start"  # when wait_for/after are not met in time:
    # start | skip (log and never start it) | reboot


@frozen
class Module:
    name: str  # module name as in modules.dep (dashes become underscores)
    params: str = ""  # "key=value key2=value2", passed to finit_module


@frozen
class Watchdog:
    device: str = ""  # "" = off; on a Pi: /dev/watchdog (bcm2835_wdt)
    timeout: int = 15  # seconds, set with WDIOC_SETTIMEOUT
    interval: float = 5.0  # how often the main loop pets it


@frozen
class Device:
    """A [[device]] rule: owner, group and mode of the matching device nodes."""

    subsystem: str = ""  # /sys/class/<subsystem>; "" = any
    kernel: str = "*"  # the device's kernel name, a glob: "ttyUSB*", "gpiochip0"
    uid: int = 0
    gid: int = 0
    mode: int = 0o600
    symlink: str = ""  # also /dev/<symlink> -> the node


@frozen
class Data:
    device: str = ""  # "" = none; /dev/vda1, LABEL=..., PARTUUID=...
    mountpoint: str = "/data"
    fstype: str = "ext4"
    options: str = ""
    wait: float = 10.0  # seconds to wait for the device to appear
    required: bool = True  # False: not found after `wait`, boot goes on without it
    check: bool = True  # ext2/3/4: e2fsck before mounting (preen, then repair)
    on_damage: str = "continue"  # not mountable after the check: continue | fail | format
    grow: bool = True  # the partition and its ext2/3/4 fill the free space after it
    create: bool = False  # not found: made from the image's seed on a FAT-only card
    file: int = 0  # bytes; with create, no room for a partition: a file on the FAT


@frozen
class Wifi:
    """One wireless network of a [network]'s list (`[[network.wifi]]`), in order of preference."""

    ssid: str
    psk: str = ""  # 64 hex digits: the key the builder derived from the passphrase; "" = open
    hidden: bool = False  # not in beacons: probed for by name


@frozen
class Network:
    """One interface: a [network] table, or each of [[network]] for several."""

    interface: str = "ethernet"  # a name (eth0, wlan0), "ethernet" or "wireless": the first one
    address: str = ""  # "" = DHCPv4; else static "192.168.1.10/24"
    gateway: str = ""  # static only: the default route's gateway
    dns: tuple[str, ...] = ()  # name servers for /etc/resolv.conf (besides DHCP's)
    retry_max: float = 60.0  # DHCP: the cap of the doubling wait between attempts, seconds
    wifi: tuple[Wifi, ...] = ()  # wireless: the networks to join, the first in range wins
    country: str = ""  # wireless: the regulatory country (ISO 3166 alpha-2), "" = the world's


@frozen
class Time:
    servers: tuple[str, ...] = ()  # () = no clock keeping; SNTP servers, "dhcp" = DHCP's
    interval: float = 3600.0  # seconds between syncs once synced
    save_interval: float = 600.0  # seconds between saves of the time to the data partition
    rtc: str = "/dev/rtc0"  # read at boot, written after a sync (when present)


@frozen
class Update:
    """A/B updates (init/update.py): signed bundles into the other boot slot, tried once."""

    key: str = ""  # "" = off; the Ed25519 public key in the image (the builder's path)
    inbox: str = "/data/update"  # where bundles (*.bundle) are dropped; looked at periodically
    check_every: float = 10.0  # seconds between looks at the inbox
    url: str = ""  # also fetch bundles from http://HOST[:PORT]/PATH (conditional GETs)
    fetch_every: float = 300.0  # seconds between fetches of `url`
    listen: int = 0  # a TCP port: also take bundles pushed with HTTP PUT /update; 0 = off
    healthy_after: float = 30.0  # a tried update is committed once every service has run
    # this long without exiting,
    ready: str = ""  # ... a service printed a line with this text (if set),
    network: bool = False  # ... and an interface has an address (if true)
    deadline: float = 120.0  # not healthy by then: reboot, and the old slot boots


@frozen
class Config:
    mode: str = "supervise"  # supervise | exec
    hostname: str = "pinit"
    console: str = ""  # "" = /dev/console; else a device name such as ttyAMA0
    on_failure: str = "reboot"  # what init does when it cannot go on
    failure_delay: float = 5.0  # seconds before reboot/poweroff/halt on failure
    debug: bool = False  # pinit.debug=1: verbose log, failure policy "shell"
    shell: bool = False  # pinit.shell=1: REPL on the console instead of services
    shutdown_grace: float = 5.0  # SIGTERM → SIGKILL delay for services at shutdown
    timeline: bool = False  # pinit.timeline=1: print the boot timeline on the console
    early_start: bool = True  # builder: load the modules and start the first service
    # before Python when it needs no data partition, device rules, other user or waiting
    modules: tuple[Module, ...] = ()
    module_failure: str = "warn"  # warn | fatal
    coldplug: bool = False  # load shipped modules for the devices found (builder)
    automount: str = ""  # a folder: labelled disks plugged in mount at <it>/<LABEL>
    devices: tuple[Device, ...] = ()
    watchdog: Watchdog = field(default_factory=Watchdog)
    data: Data = field(default_factory=Data)
    network: tuple[Network, ...] = ()  # () = no interface but lo
    time: Time = field(default_factory=Time)
    update: Update = field(default_factory=Update)
    services: tuple[Service, ...] = ()


def start_order(services: tuple[Service, ...]) -> list[Service]:
    """The services in the order they start: each after those it names in `after`, otherwise
    in the order of the config. ValueError names a cycle."""
    by_name = {s.name: s for s in services}
    order: list[Service] = []
    placed: set[str] = set()

    def place(service: Service, path: tuple[str, ...]) -> None:
        if service.name in placed:
            return
        if service.name in path:
            raise ValueError("a cycle: " + " after ".join((*path, service.name)))
        for name in service.after:
            if name in by_name:
                place(by_name[name], (*path, service.name))
        placed.add(service.name)
        order.append(service)

    for service in services:
        place(service, ())
    return order


def failure_policy(config: Config) -> str:
    """What init does when it cannot go on: pinit.debug=1 always gives the shell."""
    return "shell" if config.debug else config.on_failure
