"""Which notices to queue for which receivers this cycle. Pure.

For each alert to notify and each destination its labels route to, look at the last notice of the
same episode for that receiver: queue "firing" the first time, "repeat@<time>" once the repeat
interval has passed since the last one sent, "firing@<time>" after a silence or inhibition that no
longer holds, and "resolved" after a firing notice went out. Muted alerts are not queued (the
delivery pipeline checks again before it sends).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sentinel.notify.model import Alert
from sentinel.route.tree import Destination, Route, match

PENDING_STATES = ("pending", "claimed")
MUTED_STATES = ("silenced", "inhibited")


@dataclass(frozen=True)
class LastNotice:
    """The latest notice of an alert queued for one receiver, and what that receiver was told of
    the same episode."""

    notice: str
    state: str  # pending | claimed | sent | failed | silenced | inhibited
    created_at: datetime
    episode: str
    told: bool = False  # a notice of this episode was sent to it, or is on its way
    sent_at: datetime | None = None  # when the last one was sent (repeats count from there)


@dataclass(frozen=True)
class Entry:
    """One outbox row to write."""

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alert: Alert
    notice: str
    not_before: datetime

    @property
    def episode(self) -> str:
        return self.alert.starts_at.isoformat()


def plan(
    alerts: Sequence[Alert],
    route: Route,
    *,
    last: Mapping[tuple[str, str], LastNotice],
    group_sent: Mapping[tuple[str, str], datetime],
    muted: Callable[[Alert], str | None],
    send_resolved: Callable[[str], bool],
    now: datetime,
) -> list[Entry]:
    out: list[Entry] = []
    for alert in alerts:
        receivers: set[str] = set()
        for dest in match(route, alert.labels):
            if dest.receiver in receivers:
                continue  # a receiver gets each alert once, in the first group that routes it there
            receivers.add(dest.receiver)
            notice = _notice(alert, dest, last.get((dest.receiver, alert.fingerprint)), muted, send_resolved, now)
            if notice is None:
                continue
            sent = group_sent.get((dest.receiver, dest.group_key))
            not_before = now + dest.group_wait if sent is None else max(now, sent + dest.group_interval)
            out.append(Entry(dest.receiver, dest.group_key, dest.group_labels, alert, notice, not_before))
    return out


def _notice(
    alert: Alert,
    dest: Destination,
    last: LastNotice | None,
    muted: Callable[[Alert], str | None],
    send_resolved: Callable[[str], bool],
    now: datetime,
) -> str | None:
    same_episode = last is not None and last.episode == alert.starts_at.isoformat()
    if alert.status == "resolved":
        if not send_resolved(dest.receiver) or not same_episode or last is None:
            return None
        # Close what the receiver was told, even if a later repeat was muted; nothing if never told.
        if last.notice == "resolved" or not last.told or muted(alert):
            return None
        return "resolved"
    if muted(alert):
        return None
    if not same_episode or last is None:
        return "firing"
    if last.state in PENDING_STATES:
        return None
    if last.state in MUTED_STATES:
        return f"firing@{now.isoformat()}"
    if alert.one_shot or now - (last.sent_at or last.created_at) < dest.repeat_interval:
        return None
    return f"repeat@{now.isoformat()}"
