"""Firing → resolved: what one evaluation's findings mean for the alerts already known. Pure.

An alert found again keeps its ``starts_at``; one no longer found resolves (one notice, carrying
how long it lasted and what it cost); a one-shot alert (a budget signal) stays active until its
window ends and then ends quietly. Every active alert is handed to planning each cycle, which
decides per receiver whether anything is due (a first notice, a repeat, one after a silence).
Alerts of rules whose evaluation failed this cycle are left as they are: a failure to look is not
a recovery.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from sentinel.notify.model import Alert


@dataclass
class Transition:
    save: list[Alert] = field(default_factory=list)  # alert state rows to write
    notify: list[Alert] = field(default_factory=list)  # to route now: firing (new or still) and resolved


def advance(
    found: Sequence[Alert], known: Mapping[str, Alert], now: datetime, unevaluated: Collection[str] = ()
) -> Transition:
    out = Transition()
    seen: set[str] = set()
    for alert in found:
        if alert.fingerprint in seen:
            continue
        seen.add(alert.fingerprint)
        before = known.get(alert.fingerprint)
        if alert.one_shot:
            if before is None:
                out.save.append(alert)
                out.notify.append(alert)
            elif before.status == "firing" and before.rule not in unevaluated and not _expired(before, now):
                out.notify.append(before)
            continue
        if before is not None and before.status == "firing":
            current = replace(alert, starts_at=before.starts_at)
        else:
            # A new episode. One found again with the onset of the episode that already resolved (late data
            # re-flagging a day) starts where that one ended: episodes are told apart by starts_at.
            starts = alert.starts_at if before is None else max(alert.starts_at, before.ends_at or now)
            current = replace(alert, starts_at=min(starts, now))
        out.save.append(current)
        out.notify.append(current)
    for fp, before in known.items():
        if fp in seen or before.status != "firing" or before.rule in unevaluated:
            continue
        if before.one_shot:
            if _expired(before, now):
                out.save.append(replace(before, status="resolved", ends_at=before.expires_at))
            else:
                # Still active: routed again so a receiver that has not been told yet (a silence
                # that ended, a receiver added) is; one already told is not (plan: no repeats).
                out.notify.append(before)
            continue
        ended = resolved(before, now)
        out.save.append(ended)
        out.notify.append(ended)
    return out


def _expired(alert: Alert, now: datetime) -> bool:
    return alert.expires_at is not None and now >= alert.expires_at


def resolved(alert: Alert, now: datetime) -> Alert:
    """The resolved notice: when it ended, how long it lasted, and its final dollar impact."""
    record = dict(alert.record)
    ends_at = now
    episode = record.get("episode")
    impact: object = record.get("impact_usd")
    if isinstance(episode, Mapping):
        # An anomaly ends after the last day it was flagged.
        last = date.fromisoformat(str(episode["last_seen"]))
        ends_at = min(now, datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1))
        impact = episode.get("total_impact_usd", impact)
    elif "over_usd" in record:
        impact = record["over_usd"]
    ends_at = max(ends_at, alert.starts_at)
    seconds = (ends_at - alert.starts_at).total_seconds()
    record["resolution"] = {
        "ended_at": ends_at.isoformat(),
        "duration_s": round(seconds),
        "duration": human_duration(seconds),
        "impact_usd": impact,
    }
    money = f", ${float(str(impact)):+,.2f} vs expected in all" if isinstance(impact, int | float) else ""
    summary = f"resolved after {human_duration(seconds)}{money}: {alert.summary}"
    return replace(alert, status="resolved", ends_at=ends_at, record=record, summary=summary)


def human_duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(round(seconds / 60), 1)} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.1f} days"
