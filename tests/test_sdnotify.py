"""systemd's notify protocol against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.sdnotify import Notifier


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound to a path, as systemd's notify socket; yields (socket, NOTIFY_SOCKET)."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(10)  # a missing datagram fails the test instead of hanging it
        yield sock, str(path)


def _received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_ready_status_stopping_and_watchdog_send_the_exact_datagrams(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert notifier.enabled

    notifier.ready("polling 2 sources")
    assert _received(sock) == "READY=1\nSTATUS=polling 2 sources"
    notifier.ready()
    assert _received(sock) == "READY=1"
    notifier.status("last tick 12:00:00 UTC")
    assert _received(sock) == "STATUS=last tick 12:00:00 UTC"
    notifier.stopping()
    assert _received(sock) == "STOPPING=1"
    notifier.watchdog()
    assert _received(sock) == "WATCHDOG=1"
    notifier.extend_timeout(90)
    assert _received(sock) == "EXTEND_TIMEOUT_USEC=90000000"


def test_a_status_with_newlines_stays_one_assignment(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    Notifier.from_env({"NOTIFY_SOCKET": address}).status("two\nlines")
    assert _received(sock) == "STATUS=two lines"


def test_reloading_carries_the_monotonic_clock_in_microseconds(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier.from_env({"NOTIFY_SOCKET": address}).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = _received(sock).split("\n")
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC" and value.isdigit()
    assert before <= int(value) <= after


def test_an_abstract_namespace_socket_is_reached_through_a_leading_at() -> None:
    name = f"sentinel-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        notifier.ready("up")
        assert _received(sock) == "READY=1\nSTATUS=up"
        notifier.watchdog()
        assert _received(sock) == "WATCHDOG=1"


def test_watchdog_interval_is_half_of_watchdog_usec(systemd: tuple[socket.socket, str]) -> None:
    _, address = systemd
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "10000000"}
    assert Notifier.from_env(env).watchdog_interval() == 5.0
    assert Notifier.from_env({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval() == 5.0


def test_a_watchdog_meant_for_another_process_is_not_ours(systemd: tuple[socket.socket, str]) -> None:
    _, address = systemd
    other = os.getppid() if os.getppid() != os.getpid() else os.getpid() + 1
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(other)}
    assert Notifier.from_env(env).watchdog_interval() is None


@pytest.mark.parametrize("usec", ["", "0", "-5", "ten"])
def test_no_or_unusable_watchdog_usec_means_no_watchdog(systemd: tuple[socket.socket, str], usec: str) -> None:
    _, address = systemd
    assert Notifier.from_env({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": usec}).watchdog_interval() is None


def test_outside_systemd_every_method_is_a_no_op() -> None:
    notifier = Notifier.from_env({"WATCHDOG_USEC": "10000000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval() is None
    notifier.ready("x")
    notifier.status("x")
    notifier.reloading()
    notifier.stopping()
    notifier.watchdog()
    notifier.extend_timeout(5)


def test_from_env_reads_the_process_environment_by_default(
    systemd: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, address = systemd
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    notifier = Notifier.from_env()
    assert notifier.enabled
    notifier.stopping()
    assert _received(sock) == "STOPPING=1"


def test_a_socket_that_does_not_exist_raises_nothing(tmp_path: Path) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    notifier.ready("x")
    notifier.reloading()
    notifier.watchdog()
    notifier.stopping()
    Notifier.from_env({"NOTIFY_SOCKET": f"@sentinel-nobody-{uuid.uuid4().hex}"}).ready()


def test_a_non_unix_address_turns_notifications_off() -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    notifier.ready()
