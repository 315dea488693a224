"""The restart policy: backoff, crash-loop window, restart verdicts, exit descriptions."""

from __future__ import annotations

import signal

from init.config import DO_NOT_RESTART
from init.policy import Backoff, CrashWindow, describe_exit, restart_verdict
from init.shutdown import parse_commands


def test_backoff_doubles_up_to_the_maximum() -> None:
    backoff = Backoff(0.5, 4.0, reset=10.0)
    assert [backoff.delay(ran_for=0.1) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_backoff_resets_after_a_long_enough_run() -> None:
    backoff = Backoff(0.5, 30.0, reset=10.0)
    assert [backoff.delay(1.0) for _ in range(3)] == [0.5, 1.0, 2.0]
    assert backoff.delay(ran_for=10.0) == 0.5  # it was healthy: a new problem starts small
    assert backoff.delay(ran_for=9.9) == 1.0


def test_backoff_never_exceeds_a_maximum_below_start() -> None:
    assert Backoff(5.0, 2.0, 10.0).delay(0.0) == 2.0


def test_backoff_zero_start_stays_zero() -> None:
    backoff = Backoff(0.0, 10.0, 10.0)
    assert [backoff.delay(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_crash_window_trips_on_count_failures_within_window() -> None:
    window = CrashWindow(count=3, window=10.0)
    assert not window.failure(0.0)
    assert not window.failure(4.0)
    assert window.failure(9.0)


def test_crash_window_forgets_old_failures() -> None:
    window = CrashWindow(count=3, window=10.0)
    assert not window.failure(0.0)
    assert not window.failure(5.0)
    assert not window.failure(12.0)  # the one at 0.0 fell out of the window
    assert len(window) == 2
    assert window.failure(13.0)


def test_crash_window_at_the_edge_counts() -> None:
    window = CrashWindow(count=2, window=10.0)
    assert not window.failure(0.0)
    assert window.failure(10.0)  # exactly `window` seconds apart is still within


def test_crash_window_count_zero_never_trips() -> None:
    window = CrashWindow(count=0, window=10.0)
    assert not any(window.failure(float(t)) for t in range(100))


def test_restart_verdicts() -> None:
    assert restart_verdict("always", 0) is None
    assert restart_verdict("always", 1) is None
    assert restart_verdict("always", -signal.SIGKILL) is None
    assert restart_verdict("on-failure", 0) == "restart=on-failure"
    assert restart_verdict("on-failure", 2) is None
    assert restart_verdict("on-failure", -signal.SIGSEGV) is None
    assert restart_verdict("never", 1) == "restart=never"
    for policy in ("always", "on-failure", "never"):
        assert restart_verdict(policy, DO_NOT_RESTART) == "status 125 means do not restart"


def test_describe_exit() -> None:
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-11) == "killed by signal 11 (SIGSEGV)"
    assert describe_exit(-9) == "killed by signal 9 (SIGKILL)"


def test_control_commands() -> None:
    assert parse_commands(b"poweroff\n") == ("poweroff", [])
    assert parse_commands(b"halt\nreboot\n") == ("reboot", [])
    assert parse_commands(b"status\n") == (None, ["status"])
    assert parse_commands(b"") == (None, [])


def test_signal_actions_follow_gokrazy_plus_ctrl_alt_del() -> None:
    from init.shutdown import SIGNAL_ACTIONS, WATCHED_SIGNALS

    assert SIGNAL_ACTIONS == {
        signal.SIGTERM: "reboot",
        signal.SIGUSR1: "halt",
        signal.SIGUSR2: "poweroff",
        signal.SIGINT: "reboot",
    }
    assert signal.SIGCHLD in WATCHED_SIGNALS
