"""PID 1's update source against the recording fake kernel: what it decides and says. The
writing of slots and the commit on real FAT partitions: tests/qemu/test_update.py."""

from __future__ import annotations

from init.config import Update
from init.update import Updater, booted_from
from tests.fakes import FakeKernel

KEY = "/etc/pinit/update.pub"


def updater(fake: FakeKernel, words: dict[str, str], healthy: bool = False):
    said: list[str] = []
    asked: list[str] = []
    config = Update(key=KEY, check_every=1, healthy_after=3, deadline=10)
    source = Updater(fake, "/", config, words, said.append, asked.append, lambda s, n: healthy)
    return source, said, asked


def test_the_slot_and_the_tryboot_flag_come_from_the_firmware_or_the_harness() -> None:
    fake = FakeKernel(
        files={
            "/proc/device-tree/chosen/bootloader/partition": (3).to_bytes(4, "big"),
            "/proc/device-tree/chosen/bootloader/tryboot": (1).to_bytes(4, "big"),
        }
    )
    assert booted_from(fake, "/", {}) == (3, True)
    assert booted_from(FakeKernel(), "/", {"pinit.boot_partition": "2"}) == (2, False)
    assert booted_from(FakeKernel(), "/", {}) == (None, False)


def test_a_bundle_that_is_not_signed_is_set_aside_with_one_line() -> None:
    fake = FakeKernel(files={KEY: bytes(32), "/data/update/new.bundle": b"pinit-bundle-1\n5\n"})
    source, said, asked = updater(fake, {"pinit.boot_partition": "2"})
    source.tick(fake.clock())
    assert said == [
        "update: /data/update/new.bundle refused: it ends before its signature: "
        "the file is cut short"
    ]
    assert "/data/update/new.refused" in fake.files and asked == []
    source.tick(fake.clock() + 5)
    assert len(said) == 1  # nothing more to look at


def test_a_tried_slot_that_never_becomes_healthy_is_given_up_at_its_deadline() -> None:
    fake = FakeKernel(files={KEY: bytes(32)})
    source, said, asked = updater(fake, {"pinit.boot_partition": "3", "pinit.tryboot": "1"})
    assert said[0].startswith("update: trying slot 3: kept once every service has run 3 s")
    start = fake.clock()
    source.tick(start + 9)
    assert asked == []
    assert source.due() is not None and source.due() <= start + 10
    source.tick(start + 10)
    assert said[-1] == "update: slot 3 not healthy after 10 s: rebooting into slot 2"
    assert asked == ["reboot"]
    assert source.due() is None  # decided: nothing more until the reboot


def test_a_boot_from_outside_the_slots_turns_updates_off() -> None:
    fake = FakeKernel(files={KEY: bytes(32), "/data/update/new.bundle": b"x"})
    source, said, asked = updater(fake, {"pinit.boot_partition": "1"})
    source.tick(fake.clock() + 5)
    assert said == ["update: booted from partition 1, not an A/B slot: updates are off"]
    assert source.due() is None and "/data/update/new.bundle" in fake.files
