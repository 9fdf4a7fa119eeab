"""A JSON Lines file: one line per alert, appended and fsynced, for log shippers, audits and tests.

Each line is the webhook body (``render.to_json``) with ``alerts`` replaced by a single ``alert``
object and ``status`` that alert's own (``render.each_alert_json``). The lines of one notification
are written with one ``write`` on a file opened for appending, then fsynced before ``send`` returns.
"""

from __future__ import annotations

import errno
import json
import os

from sentinel.config import FileReceiver
from sentinel.notify import render
from sentinel.notify.model import DeliveryResult, Notification, Outcome

# Errors that will not clear by themselves: the file or its directory is not ours to write.
_PERMANENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EISDIR, errno.EROFS, errno.ENOTDIR})


def lines_of(notification: Notification) -> bytes:
    return b"".join(
        json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        for line in render.each_alert_json(notification)
    )


class FileNotifier:
    """Appends a notification's alerts to a file. ``send`` never raises."""

    def __init__(self, settings: FileReceiver) -> None:
        self.name = settings.name
        self.path = settings.path

    def send(self, notification: Notification) -> DeliveryResult:
        try:
            data = lines_of(notification)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            outcome = Outcome.PERMANENT if exc.errno in _PERMANENT_ERRNOS else Outcome.RETRYABLE
            return DeliveryResult(outcome, f"{type(exc).__name__}: {exc.strerror or exc} ({self.path})")
        except Exception as exc:  # a receiver never raises: every failure is a result
            return DeliveryResult(Outcome.RETRYABLE, f"unexpected {type(exc).__name__}: {exc}")
        return DeliveryResult(Outcome.OK, f"{len(notification.alerts)} line(s) appended")
