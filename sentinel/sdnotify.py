"""systemd's notify protocol (sd_notify(3)), by hand: one datagram to the socket in ``$NOTIFY_SOCKET``.

A message is newline-separated ``KEY=VALUE`` assignments sent to an AF_UNIX datagram socket; a
socket name that starts with "@" lives in the abstract namespace. Outside systemd (no
``$NOTIFY_SOCKET``) every method does nothing, and no method ever raises: a notification that
cannot be sent is logged at debug level and forgotten, as libsystemd's own sd_notify does.

The daemon's side of the protocol::

    READY=1 + STATUS=...            startup finished (Type=notify / notify-reload)
    RELOADING=1 + MONOTONIC_USEC=   a reload (SIGHUP) began; send READY=1 again when it is done
    STOPPING=1                      shutdown began
    WATCHDOG=1                      still alive; every watchdog_interval() seconds (WatchdogSec=)
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("sentinel.sdnotify")


def _address(raw: str | None) -> str | None:
    """The socket address from ``$NOTIFY_SOCKET``; None when unset or not an AF_UNIX name."""
    if not raw:
        return None
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    # systemd ≥253 may also name an AF_VSOCK address ("vsock:CID:PORT"); a service on a host has no use for it.
    log.debug("NOTIFY_SOCKET %r is not an AF_UNIX socket; notifications are off", raw)
    return None


def _one_line(text: str) -> str:
    """A value may not span lines: a newline would start another assignment."""
    return " ".join(text.splitlines())


class Notifier:
    """Tells systemd how the service is doing. Build it with :meth:`from_env`."""

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Read ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID`` (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        address = _address(env.get("NOTIFY_SOCKET"))
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC", "")
        if raw:
            try:
                usec = int(raw)
            except ValueError:
                log.debug("WATCHDOG_USEC %r is not a number; no watchdog", raw)
        pid = env.get("WATCHDOG_PID", "")
        if pid and pid != str(os.getpid()):
            # The watchdog is meant for another process (e.g. our parent set it up and forked us).
            usec = None
        if usec is not None and usec <= 0:
            usec = None
        return cls(address, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half of WatchdogSec=, as systemd advises), or None for no watchdog."""
        if self._address is None or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def ready(self, status: str = "") -> None:
        self._send("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def status(self, text: str) -> None:
        self._send(f"STATUS={_one_line(text)}")

    def reloading(self) -> None:
        """A reload began (Type=notify-reload wants the CLOCK_MONOTONIC time with it); send ready() after it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> None:
        """Ask for ``seconds`` more before systemd gives up on a start or stop (a long first backfill)."""
        self._send(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            log.debug("sd_notify %r to %r failed: %s", message.split("\n", 1)[0], self._address, exc)
