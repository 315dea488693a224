"""The card's A/B switch (autoboot.txt), written and read the way the Pi 4 bootloader reads it."""

from __future__ import annotations

from init import slots


def test_autoboot_names_the_default_and_the_tried_slot() -> None:
    assert slots.parse_autoboot(slots.autoboot_txt(2)) == (2, 3)
    assert slots.parse_autoboot(slots.autoboot_txt(3)) == (3, 2)
    text = slots.autoboot_txt(3)
    assert "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=2\n" in text


def test_a_file_that_is_no_ab_switch_of_these_slots_is_none() -> None:
    assert slots.parse_autoboot("") is None
    assert slots.parse_autoboot("[all]\nboot_partition=2\n") is None  # no tryboot_a_b
    assert slots.parse_autoboot("[all]\ntryboot_a_b=1\nboot_partition=7\n") is None
    assert slots.parse_autoboot("[all]\ntryboot_a_b=1\nboot_partition=x\n") is None
    # [tryboot] left out: the other slot; comments and spaces as the bootloader allows
    assert slots.parse_autoboot("# x\n[all]\n tryboot_a_b = 1\nboot_partition=3 # b\n") == (3, 2)
