"""The boot sequence: from an empty initramfs to running services, one timed step at a time.

`Boot` holds what has been set up so far (mounts, config, watchdog, supervisor), because the
fatal path and the shutdown need exactly that. The order is chosen for start-up time: only what
the app may need before its first line (file systems, console, config, hostname, loopback,
modules, data partition, watchdog) happens before it starts; the timeline file is written after.
"""

from __future__ import annotations

import errno
import gc

from init import cmdline, configfile
from init.cgroup import Cgroups
from init.cmdline import apply_cmdline
from init.config import CONFIG_FILE, Config
from init.console import Log, errname, open_console, release_console
from init.errors import ConfigError, InitError
from init.kernel import Kernel
from init.net import link_up
from init.rootfs import EARLY_ROOTFS, prefixed, run_steps
from init.shutdown import WATCHED_SIGNALS, open_control, shutdown
from init.supervise import Supervisor, exec_service
from init.timeline import Timeline

# Type names only: init.data and init.watchdog are imported when configured, since every module
# costs PID 1 start-up time under emulation (mypy and ruff read this block; Python skips it).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from init.clock import Clock
    from init.coldplug import Loader
    from init.network import Interface
    from init.watchdog import Watchdog

TIMELINE = "/run/pinit/timeline.json"
BOOT_UMASK = 0o000  # device nodes and directories get exactly the modes in the steps
SERVICE_UMASK = 0o022  # what services (and files they create) are used to
CONSOLE_WAIT = 2.0  # seconds a console that comes with a module (hvc0) may take to appear


class Boot:
    def __init__(
        self, kernel: Kernel, log: Log, root: str = "/", config_path: str | None = None
    ) -> None:
        self.kernel = kernel
        self.log = log
        self.root = root
        self.config_path = config_path or prefixed(root, CONFIG_FILE)
        # Only a real boot (root "/") takes over the console and writes to /dev/kmsg; a host
        # test keeps the stdio it was started with, and /dev of a devtmpfs is the host's.
        self.real_console = root == "/"
        self.timeline = Timeline(kernel.clock)
        self.config: Config | None = None
        self.words: dict[str, str] = {}
        self.mounts: list[str] = []
        self.data_mount: str | None = None
        self.uevent_fd = -1
        self.loader: Loader | None = None
        self.watchdog: Watchdog | None = None
        self.network: list[Interface] = []
        self.clock: Clock | None = None
        self.supervisor: Supervisor | None = None
        self.signal_fd: int | None = None
        self.early: tuple[int, int] | None = None

    # --- set-up ---------------------------------------------------------------------------------

    def setup(self) -> None:
        """Everything before the services. Raises InitError (or anything) → fatal path."""
        kernel, log, root = self.kernel, self.log, self.root
        log(f"started as PID {kernel.getpid()} on {kernel.uname_machine()}")
        with self.timeline.step("init", "signals"):
            # First, so that a signal during boot is queued for the main loop, not lost.
            self.signal_fd = kernel.watch_signals(WATCHED_SIGNALS)
            kernel.umask(BOOT_UMASK)
        # Early start: the C prologue may have started the first service before Python.
        self.early = kernel.early_service() if root == "/" else None
        self.mounts = run_steps(
            kernel, root, EARLY_ROOTFS, self.timeline, log, early=self.early is not None
        )
        config = self.load_config()
        console = config.console or cmdline.console_from_cmdline(self.words) or "console"
        opened = True
        if self.real_console:
            with self.timeline.step("console", "open"):
                opened = open_console(kernel, root, console, log, later=bool(config.modules))
        self.system(config)
        if config.modules:
            from init.insmod import load_modules  # here: a boot without modules imports less

            load_modules(kernel, root, config, log, self.timeline, early=self.early is not None)
        if not opened and config.modules:
            with self.timeline.step("console", "open after modules"):
                # virtio_console adds its ports from a work queue, after the module is loaded.
                until = kernel.clock() + CONSOLE_WAIT
                while not open_console(kernel, root, console, log, later=True):
                    if kernel.clock() >= until:
                        open_console(kernel, root, console, log)  # says why not
                        break
                    kernel.sleep(0.05)
        if config.coldplug or config.devices or config.automount:
            # Opened before coldplug: a device that appears meanwhile waits in its queue.
            try:
                self.uevent_fd = kernel.uevent_socket()
            except OSError as exc:
                log(f"no device events: {errname(exc)}; devices plugged in later are not seen")
        if config.coldplug:
            from init.coldplug import Loader, fs_modules

            try:  # the kernel's own module requests (fs-vfat …) come to this binary
                kernel.set_value(prefixed(root, "/proc/sys/kernel/modprobe"), "/sbin/modprobe")
            except OSError as exc:
                log(f"cannot take the kernel's module requests: {errname(exc)}")
            self.loader = Loader(kernel, root, log, self.timeline)
            self.loader.coldplug(self.uevent_fd)
        if config.devices:
            from init.devices import apply_rules

            with self.timeline.step("devices", "rules"):
                apply_rules(kernel, root, config.devices, log)
        if config.data.device:
            from init.data import mount_data

            if self.loader is not None:  # its file system's modules, if shipped (fs-ext4)
                self.loader.load(fs_modules(config.data.fstype), config.data.mountpoint)
            with self.timeline.step("data", config.data.device):
                loader = self.loader
                self.data_mount = mount_data(
                    kernel,
                    root,
                    config.data,
                    log,
                    self.timeline,
                    self.mounts,
                    None if loader is None else lambda names: loader.load(names, "data file"),
                )
                if self.data_mount is not None:
                    self.mounts.append(self.data_mount)
        if config.watchdog.device:
            self.open_watchdog(config)
        if config.time.servers:
            from init.clock import Clock

            with self.timeline.step("time", "restore"):
                data_dir = prefixed(root, config.data.mountpoint) if self.data_mount else ""
                self.clock = Clock(
                    kernel, root, config, log, self.timeline, data_dir, self.write_timeline
                )
                self.clock.restore()
        for net in config.network:
            from init.network import Interface

            with self.timeline.step("network", net.interface):
                interface = Interface(
                    kernel, root, net, config.hostname, log, self.timeline, self.write_timeline
                )
                interface.on_lease = self.leased
                self.network.append(interface)
                interface.start()
        kernel.umask(SERVICE_UMASK)

    def load_config(self) -> Config:
        """/etc/pinit.json, then the kernel command line's pinit.* words on top."""
        with self.timeline.step("config", "cmdline"):
            try:
                self.words = cmdline.parse(
                    self.kernel.read_text(prefixed(self.root, "/proc/cmdline"))
                )
            except OSError as exc:
                self.log(f"cannot read /proc/cmdline: {errname(exc)}")
        with self.timeline.step("config", self.config_path):
            try:
                config = configfile.parse(self.kernel.read_file(self.config_path), self.config_path)
            except (ConfigError, OSError) as exc:
                # The failure policy still honours pinit.debug=1 and friends.
                self.config = self.overrides(Config())
                if isinstance(exc, ConfigError):
                    raise
                raise InitError(f"{self.config_path}: {errname(exc)}") from exc
            self.config = config = self.overrides(config)
        self.log.verbose = config.debug
        return config

    def overrides(self, config: Config) -> Config:
        config, warnings = apply_cmdline(config, self.words)
        for warning in warnings:
            self.log(f"warning: {warning}")
        return config

    def system(self, config: Config) -> None:
        """Hostname, loopback and Ctrl-Alt-Del: each worth a line when it fails, never fatal."""
        kernel, log = self.kernel, self.log
        with self.timeline.step("system", "hostname"):
            try:
                kernel.sethostname(config.hostname)
            except OSError as exc:
                log(f"cannot set hostname {config.hostname!r}: {errname(exc)}")
        with self.timeline.step("system", "loopback"):
            try:
                link_up(kernel)
            except OSError as exc:
                log(f"cannot bring up lo: {errname(exc)}")
        with self.timeline.step("system", "oom"):
            # The OOM killer must never pick PID 1: it would panic the kernel.
            try:
                kernel.set_value(prefixed(self.root, "/proc/self/oom_score_adj"), "-1000")
            except OSError as exc:
                log(f"cannot protect PID 1 from the OOM killer: {errname(exc)}")
        with self.timeline.step("system", "ctrl-alt-del"):
            try:
                kernel.reboot("cad-off")
            except OSError as exc:
                # EINVAL: inside a PID namespace reboot(2) takes only restart/halt/power-off.
                if exc.errno != errno.EINVAL:
                    log(f"cannot route Ctrl-Alt-Del to SIGINT: {errname(exc)}")

    def open_watchdog(self, config: Config) -> None:
        if config.mode == "exec":
            self.log(f"watchdog {config.watchdog.device} not armed: nobody would pet it after exec")
            return
        from init.watchdog import Watchdog

        with self.timeline.step("watchdog", config.watchdog.device):
            try:
                self.watchdog = Watchdog.open(self.kernel, self.root, config.watchdog)
            except OSError as exc:
                raise InitError(
                    f"cannot arm watchdog {config.watchdog.device}: {errname(exc)}"
                ) from exc
        self.log(f"watchdog {config.watchdog.device} armed ({self.watchdog.timeout} s)")

    # --- running --------------------------------------------------------------------------------

    def run(self) -> str:
        """Start the services and supervise them; returns the shutdown action."""
        config = self.config
        assert config is not None and self.signal_fd is not None
        if config.shell:
            return "shell"
        if config.mode == "exec":
            self.log(f"starting {config.services[0].name} (pid {self.kernel.getpid()})")
            self.app_started()
            release_console(self.kernel, self.log)  # PID 1's way of writing ends at exec
            exec_service(self.kernel, config.services[0])
        with self.timeline.step("services", "control"):
            control_fd = open_control(self.kernel, self.root, self.log)
        with self.timeline.step("services", "cgroups"):
            cgroups = Cgroups(self.kernel, self.root, self.log)
            cgroups.enable()
        log_dir = prefixed(self.root, config.data.mountpoint + "/log") if self.data_mount else ""
        uevents = None
        if self.uevent_fd >= 0:
            from init.hotplug import Hotplug

            uevents = (
                self.uevent_fd,
                Hotplug(
                    self.kernel, self.root, self.loader, config.devices, config.automount, self.log
                ),
            )
        sources = (*self.network, *((self.clock,) if self.clock is not None else ()))
        if config.update.key:
            from init.update import Updater

            sources += (
                Updater(
                    self.kernel,
                    self.root,
                    config.update,
                    self.words,
                    self.log,
                    self.request,
                    self.healthy_for,
                    self.pet_watchdog,
                    self.name_servers,
                ),
            )
        self.supervisor = Supervisor(
            self.kernel,
            config,
            self.log,
            self.signal_fd,
            control_fd,
            self.watchdog,
            cgroups,
            log_dir,
            uevents,
            sources,
            self.reached,
        )
        with self.timeline.step("services", "start"):
            action = self.supervisor.start_all(self.early)
        self.app_started()
        if self.early is not None:
            # The C prologue started the app a little below PID 1's priority so that it could
            # not starve the set-up (init/early.py NICE); adopted, it runs at normal priority.
            try:
                self.kernel.setpriority(0, self.early[0])
            except OSError as exc:
                self.log(f"cannot restore {config.services[0].name}'s priority: {errname(exc)}")
        return action or self.supervisor.run()

    def pet_watchdog(self) -> None:
        if self.watchdog is not None:
            self.watchdog.pet_if_due(self.kernel.clock())

    def request(self, action: str) -> None:
        if self.supervisor is not None:
            self.supervisor.request(action)

    def healthy_for(self, seconds: float, now: float) -> bool:
        """[update]'s health: every service running `seconds` without a restart, and the
        `ready` line and the network when asked for."""
        update, supervisor = self.config.update if self.config else None, self.supervisor
        if update is None or supervisor is None or not supervisor.healthy_for(seconds, now):
            return False
        return (not update.ready or supervisor.text_seen) and (
            not update.network or self.reached("network")
        )

    def reached(self, name: str) -> bool:
        """A condition a service's `after` names: "network", "time" (or "data": mounted)."""
        if name == "network":
            return any(interface.up for interface in self.network)
        if name == "time":
            return self.clock is not None and self.clock.synced
        return True

    def name_servers(self) -> tuple[bytes, ...]:
        """Every interface's name servers ([network] dns, then DHCP's), as the clock gets them:
        what PID 1 resolves an update URL's host with."""
        return tuple(dict.fromkeys(a for i in self.network for a in i.name_servers))

    def leased(self) -> None:
        """An interface has an address: the name servers, and the time servers DHCP named."""
        from init.network import write_resolv

        write_resolv(self.kernel, self.root, self.network, self.log)
        if self.clock is not None:
            for interface in self.network:
                self.clock.add_servers(interface.servers, interface.name_servers)

    def app_started(self) -> None:
        """The one summary line, then the timeline file (after the app is on its way)."""
        self.log(self.timeline.summary(self.kernel.clock()))
        # The compiled entry starts PID 1 with the collector off (builder/python/compile.py); what the
        # boot made lives as long as PID 1, so it is frozen out of every later collection.
        gc.freeze()
        gc.enable()
        for step in self.timeline.steps:
            self.log.debug(
                f"step {step.start:.3f}-{step.end:.3f} {step.phase}: {step.name}"
                + (f" ({step.error})" if step.error else "")
            )
        self.write_timeline()
        if self.config is not None and self.config.timeline:
            # One console line for `invoke boot --timeline`, which draws it (builder/qemu/timeline.py).
            self.log("timeline " + self.timeline.to_json(compact=True).decode())

    def write_timeline(self) -> None:
        """/run/pinit/timeline.json; again when a lease or the first time sync adds a step."""
        if self.timeline.app_started is None:
            return  # written once the app has started
        path = prefixed(self.root, TIMELINE)
        try:
            try:
                self.kernel.mkdir(path.rsplit("/", 1)[0], 0o755)
            except FileExistsError:
                pass  # EEXIST: the control FIFO's directory
            self.kernel.write_file(path, self.timeline.to_json())
        except OSError as exc:
            self.log(f"cannot write {TIMELINE}: {errname(exc)}")

    def shutdown(self, action: str) -> None:
        config = self.config or Config()
        supervisor, network, clock = self.supervisor, self.network, self.clock

        def stop(grace: float) -> None:
            """The services first (they may still use the network), then the lease and the
            time saved while the data partition is still mounted."""
            if supervisor is not None:
                supervisor.stop(grace)
            for step in (*(i.stop for i in network), *((clock.save,) if clock else ())):
                try:
                    step()
                except Exception as exc:  # a bug here must not cost the time or the unmount
                    self.log(f"shutdown: {errname(exc)}")

        shutdown(
            self.kernel,
            self.root,
            action,
            self.log,
            stop=stop,
            grace=config.shutdown_grace,
            mounts=self.mounts,
            data_mount=self.data_mount,
            watchdog=self.watchdog,
        )
