"""Coldplug and device rules against the recording fake kernel."""

from __future__ import annotations

from init.config import Device
from init.timeline import Timeline
from tests.fakes import FakeKernel

FOLDER = "/lib/modules/6.1.0-test"
PLATFORM = "/sys/bus/platform/devices/a000000.virtio_mmio/modalias"
VIRTIO = "/sys/bus/virtio/devices/virtio0/modalias"


class Revealing(FakeKernel):
    """Loading the bus driver makes its device appear, as virtio_mmio does."""

    def finit_module(self, path: str, params: str) -> None:
        super().finit_module(path, params)
        if path.endswith("/virtio_mmio.ko"):
            self.files[VIRTIO] = b"virtio:d00000004v00001AF4\n"
            self.paths.add(VIRTIO)
            self.uevent(b"add@/module/virtio_mmio\0ACTION=add\0SUBSYSTEM=module\0")
            self.uevent(
                b"add@/devices/platform/a000000.virtio_mmio/virtio0\0ACTION=add\0"
                b"SUBSYSTEM=virtio\0MODALIAS=virtio:d00000004v00001AF4\0"
            )


def kernel() -> Revealing:
    return Revealing(
        files={
            f"{FOLDER}/modules.dep": b"kernel/drivers/virtio/virtio_mmio.ko:\n"
            b"kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/"
            b"char/hw_random/rng-core.ko\n"
            b"kernel/drivers/char/hw_random/rng-core.ko:\n"
            b"kernel/drivers/net/dummy.ko:\n",
            f"{FOLDER}/modules.alias": b"alias of:N*T*Cvirtio,mmio virtio_mmio\n"
            b"alias virtio:d00000004v* virtio_rng\n",
            f"{FOLDER}/kernel/drivers/virtio/virtio_mmio.ko": b"\x7fELF",
            f"{FOLDER}/kernel/drivers/char/hw_random/virtio-rng.ko": b"\x7fELF",
            f"{FOLDER}/kernel/drivers/char/hw_random/rng-core.ko": b"\x7fELF",
            PLATFORM: b"of:NvirtioT(null)Cvirtio,mmio\n",
            "/sys/bus/cpu/devices/cpu0/modalias": b"cpu:type:aarch64:feature:,0000\n",
        }
    )


def test_coldplug_loads_what_matches_and_looks_again_until_nothing_is_new() -> None:
    from init.coldplug import Loader

    fake, said = kernel(), []
    loader = Loader(fake, "/", said.append, Timeline(fake.clock))  # type: ignore[arg-type]
    loader.coldplug()
    assert said == [
        "loaded module virtio_mmio (coldplug)",
        "loaded module rng_core (coldplug)",
        "loaded module virtio_rng (coldplug)",
    ], said
    assert not any("finit_module" in line and "dummy" in line for line in fake.transcript)
    assert (
        sum(line.endswith(" listdir /sys/bus") for line in fake.transcript) == 3
    )  # a scan per round


def test_later_rounds_take_the_devices_the_loads_added_from_the_uevent_queue() -> None:
    """udev's way: the second round reads the uevents virtio_mmio's load queued rather than
    every bus again, and keeps them for the hotplug handler."""
    from init.coldplug import Loader
    from init.hotplug import Hotplug

    fake, said = kernel(), []
    events = fake.uevent_socket()
    loader = Loader(fake, "/", said.append, Timeline(fake.clock))  # type: ignore[arg-type]
    loader.coldplug(events)
    assert said == [
        "loaded module virtio_mmio (coldplug)",
        "loaded module rng_core (coldplug)",
        "loaded module virtio_rng (coldplug)",
    ], said
    assert sum(line.endswith(" listdir /sys/bus") for line in fake.transcript) == 1
    assert not any(VIRTIO in line for line in fake.transcript)  # not read from sysfs
    handler = Hotplug(fake, "/", loader, (), "", said.append)  # type: ignore[arg-type]
    assert [event.split(b"\0")[0] for event in handler.backlog] == [
        b"add@/module/virtio_mmio",
        b"add@/devices/platform/a000000.virtio_mmio/virtio0",
    ]


def test_a_data_file_system_loads_by_alias_and_unknown_ones_are_skipped() -> None:
    from init.coldplug import Loader

    fake, said = kernel(), []
    loader = Loader(fake, "/", said.append, Timeline(fake.clock))  # type: ignore[arg-type]
    assert loader.load(["fs-nosuchfs", "dummy"], "/data") == 0  # dummy.ko is not shipped
    assert said == ["cannot load module dummy (/data): ENOENT (No such file or directory)"]


def test_device_rules_set_owner_mode_and_link() -> None:
    from init.devices import apply_rules

    fake = FakeKernel(
        files={
            "/sys/class/misc/hw_random/uevent": b"MAJOR=10\nDEVNAME=hwrng\n",
            "/sys/class/tty/ttyAMA0/uevent": b"DEVNAME=ttyAMA0\n",
            "/dev/hwrng": b"",
            "/dev/ttyAMA0": b"",
        }
    )
    said: list[str] = []
    rules = (
        Device(subsystem="misc", kernel="hw_random", gid=998, mode=0o640, symlink="rng"),
        Device(kernel="ttyUSB*", gid=20, mode=0o660),
    )
    apply_rules(fake, "/", rules, said.append)  # type: ignore[arg-type]
    assert said == ["/dev/hwrng: 0:998 640, /dev/rng"]
    assert "chown /dev/hwrng 0:998" in "\n".join(fake.transcript)
    assert not any("ttyAMA0" in line and "chmod" in line for line in fake.transcript)


def test_uevents_are_parsed_and_udev_rebroadcasts_ignored() -> None:
    from init.hotplug import parse

    raw = (
        b"add@/devices/x/usb2/2-1\0ACTION=add\0DEVPATH=/devices/x/usb2/2-1\0SUBSYSTEM=usb\0"
        b"MODALIAS=usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\0SEQNUM=812\0"
    )
    event = parse(raw)
    assert event["ACTION"] == "add" and event["SUBSYSTEM"] == "usb"
    assert event["MODALIAS"].startswith("usb:v46F4")
    assert parse(b"libudev\0\xfe\xed\xca\xfe...") == {}


def test_a_labelled_disk_is_mounted_and_unmounted_when_removed() -> None:
    from init.hotplug import Hotplug

    fat = bytearray(2048)
    fat[0x2B:0x36] = b"STICK      "
    fat[0x36:0x3E] = b"FAT16   "
    fat[510:512] = b"\x55\xaa"
    fake = FakeKernel(files={"/dev/sda": bytes(fat)}, devices={"/dev/sda": bytes(fat)})
    said: list[str] = []
    plug = Hotplug(fake, "/", None, (), "/media", said.append)  # type: ignore[arg-type]
    plug.handle({"ACTION": "add", "SUBSYSTEM": "block", "DEVNAME": "sda"})
    plug.handle({"ACTION": "remove", "SUBSYSTEM": "block", "DEVNAME": "sda"})
    assert said == [
        "mounted /media/STICK from /dev/sda (vfat)",
        "unmounted /media/STICK (/dev/sda removed)",
    ], said
