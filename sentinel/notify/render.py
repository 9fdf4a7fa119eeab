"""How a notification reads: a title, plain text, Slack Block Kit, an HTML email body, and the JSON
body of webhooks and JSONL files.

Pure functions of a :class:`Notification`. Every format is built from the same cards (one per
alert: a headline, a few labelled numbers, the contributors or drivers, notes), so the numbers a
person reads in Slack, in an email and in a terminal are the same numbers.

Written for a phone: short lines, no wide tables, the most severe firing alerts first, and past
``MAX_SLACK_ALERTS`` a one-line summary of the rest instead of more blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jinja2
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from sentinel.notify.model import ALERT_SCHEMA_VERSION, Alert, Notification

# Slack's limits (api.slack.com/reference/block-kit): 50 blocks a message, 3000 characters a
# section, 150 a header; we stay well inside them.
SLACK_MAX_BLOCKS = 50
SLACK_SECTION_CHARS = 3000
SLACK_HEADER_CHARS = 150
MAX_SLACK_ALERTS = 10  # alerts shown in full in one Slack message; the rest as "and N more"
MAX_FULL_ALERTS = 50  # the same for email and plain text, which can be longer
MAX_LIST_ITEMS = 5  # contributors / drivers shown per alert
FALLBACK_CHARS = 3000  # the notification text of a Slack message (shown in push notifications)

_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_SLACK_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}
_HTML_COLOR = {"critical": "#d1242f", "warning": "#d4a72c", "info": "#0969da", "resolved": "#1a7f37"}
_TEST_NOTE = "This is a test notification (sentinel notify test); nothing is wrong."


# ------------------------------------------------------------------------------------------- cards
@dataclass(frozen=True)
class Card:
    """What one alert says, format-free: rendered as text, Slack mrkdwn and HTML alike."""

    alert: Alert
    headline: str
    facts: tuple[tuple[str, str], ...]  # (label, value), e.g. ("Expected", "$300.00 (range ...)")
    lists: tuple[tuple[str, tuple[str, ...]], ...]  # (heading, items), e.g. top contributors
    notes: tuple[str, ...]
    footer: str

    @property
    def resolved(self) -> bool:
        return self.alert.status == "resolved"

    @property
    def tag(self) -> str:
        return "RESOLVED" if self.resolved else self.alert.severity.upper()

    @property
    def tone(self) -> str:
        return "resolved" if self.resolved else self.alert.severity


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: object) -> Sequence[object]:
    return value if isinstance(value, list | tuple) else ()


def money(value: object) -> str:
    """``$1,234.56``; ``-$3.10``; sub-cent amounts keep four decimals; ``n/a`` for no number."""
    number = _num(value)
    if number is None:
        return "n/a"
    sign = "-" if number < 0 else ""
    size = abs(number)
    digits = 4 if 0 < size < 0.01 else 2
    return f"{sign}${size:,.{digits}f}"


def signed_money(value: object) -> str:
    number = _num(value)
    if number is None:
        return "n/a"
    return ("+" if number >= 0 else "") + money(number)


def when(value: object) -> str:
    """A moment as ``2025-03-04 14:00 UTC`` (from a datetime or an ISO-8601 string); dates stay dates."""
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if len(value) <= 10:  # a plain date
            return value
    if moment is None:
        return "n/a"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(delta: timedelta) -> str:
    """``3d 4h``, ``2h 5m``, ``45m``, ``30s``: the two largest units."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return " ".join(parts[:2]) or "0s"


def _entity(alert: Alert) -> str:
    record = alert.record
    kind = str(record.get("entity_type") or alert.labels.get("entity_type") or "")
    ident = record.get("entity_name") or alert.labels.get("entity_name") or record.get("entity_id")
    ident = ident or alert.labels.get("entity_id") or ""
    if kind == "total":
        return "the whole proxy"
    return f"{kind} {ident}".strip()


def _who(item: Mapping[str, object]) -> str:
    name = item.get("name") or item.get("alias") or item.get("id") or "?"
    return f"{item.get('type') or ''} {name}".strip()


def _anomaly(record: Mapping[str, object]) -> tuple[list[tuple[str, str]], list[tuple[str, tuple[str, ...]]]]:
    facts: list[tuple[str, str]] = []
    day = record.get("date")
    observed = money(record.get("observed"))
    if day:
        observed += f" on {day}"
    if record.get("partial_day"):
        observed += " (day not over yet)"
    facts.append(("Observed", observed))
    expected = money(record.get("expected"))
    if _num(record.get("lower")) is not None and _num(record.get("upper")) is not None:
        expected += f" (normal {money(record.get('lower'))} to {money(record.get('upper'))})"
    facts.append(("Expected", expected))
    impact = signed_money(record.get("impact_usd"))
    pct = _num(record.get("pct_change"))
    if pct is not None:
        impact += f" ({pct * 100:+,.0f} %)"
    facts.append(("Impact", impact))
    episode = _map(record.get("episode"))
    days = _num(episode.get("days"))
    if days is not None and days > 1:
        facts.append(("Episode", f"{days:.0f} days, {signed_money(episode.get('total_impact_usd'))} in all"))
    pv = _map(record.get("price_volume"))
    if pv:
        facts.append(
            (
                "Why",
                f"volume {signed_money(pv.get('volume_effect_usd'))}, price {signed_money(pv.get('price_effect_usd'))}",
            )
        )
    method = record.get("method")
    if method:
        history = _num(record.get("history_days"))
        facts.append(("Method", f"{method}" + (f", {history:.0f} days of history" if history is not None else "")))
    items = []
    for c in _seq(record.get("contributors"))[:MAX_LIST_ITEMS]:
        c = _map(c)
        items.append(
            f"{_who(c)}: {signed_money(c.get('delta_usd'))} ({money(c.get('expected'))} → {money(c.get('observed'))})"
        )
    lists = [("Top contributors", tuple(items))] if items else []
    return facts, lists


def _budget(record: Mapping[str, object]) -> tuple[list[tuple[str, str]], list[tuple[str, tuple[str, ...]]]]:
    facts: list[tuple[str, str]] = []
    budget = _map(record.get("budget"))
    limit = _num(budget.get("limit_usd"))
    spent = money(record.get("spent_usd"))
    if limit is not None:
        spent += f" of {money(limit)}"
        pct = _num(record.get("pct_used"))
        if pct is not None:
            spent += f" ({pct:,.0f} %)"
    facts.append(("Spent", spent))
    soft = _num(budget.get("soft_limit_usd"))
    if soft is not None:
        facts.append(("Soft budget", money(soft)))
    period = str(budget.get("period") or "lifetime")
    window = f"{period} budget" if period != "lifetime" else "lifetime budget"
    if budget.get("window_end"):
        window += f", resets {when(budget.get('window_end'))}"
    facts.append(("Budget", window))
    threshold = _num(record.get("threshold_pct"))
    if record.get("signal") == "threshold" and threshold is not None:
        facts.append(("Crossed", f"{threshold:g} %"))
    forecast = _map(record.get("forecast"))
    if forecast:
        at_end = f"{money(forecast.get('at_window_end_usd'))} by the reset"
        if _num(forecast.get("lower_usd")) is not None and _num(forecast.get("upper_usd")) is not None:
            at_end += f" ({money(forecast.get('lower_usd'))} to {money(forecast.get('upper_usd'))})"
        facts.append(("Forecast", at_end))
        p_breach = _num(forecast.get("p_breach"))
        if p_breach is not None:
            facts.append(("Chance to exceed", f"{p_breach:.0%}"))
        if forecast.get("breach_eta"):
            eta = when(forecast.get("breach_eta"))
            if forecast.get("breach_eta_earliest"):
                eta += f" (earliest {when(forecast.get('breach_eta_earliest'))})"
            facts.append(("Limit reached", eta))
        over = _num(forecast.get("over_usd"))
        if over:
            facts.append(("Over by", money(over)))
    items = []
    for d in _seq(record.get("drivers"))[:MAX_LIST_ITEMS]:
        d = _map(d)
        share = _num(d.get("share"))
        items.append(f"{_who(d)}: {money(d.get('spend_usd'))}" + (f" ({share:.0%})" if share is not None else ""))
    lists = [("Where it went", tuple(items))] if items else []
    return facts, lists


_GENERIC_SKIP = {"kind", "entity_type", "entity_id", "entity_name", "labels", "notes", "detected_at", "severity"}


def _generic(record: Mapping[str, object]) -> tuple[list[tuple[str, str]], list[tuple[str, tuple[str, ...]]]]:
    """Any other kind of alert (threshold, absence, ...): its scalar numbers, labelled by key."""
    facts: list[tuple[str, str]] = []
    for key, value in record.items():
        if key in _GENERIC_SKIP or isinstance(value, Mapping | list | tuple) or value is None:
            continue
        label = key.replace("_", " ").capitalize()
        if key.endswith("_usd"):
            facts.append((label.removesuffix(" usd"), money(value)))
        elif key.endswith("_at"):
            facts.append((label, when(value)))
        else:
            facts.append((label, str(value)))
        if len(facts) >= 8:
            break
    return facts, []


def _final_impact(record: Mapping[str, object]) -> str | None:
    episode = _map(record.get("episode"))
    for value in (episode.get("total_impact_usd"), record.get("impact_usd")):
        if _num(value) is not None:
            return signed_money(value)
    if _num(record.get("spent_usd")) is not None:
        return f"{money(record.get('spent_usd'))} spent"
    return None


def _footer(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def card(alert: Alert) -> Card:
    """The card of one alert (pure)."""
    record = alert.record
    entity = _entity(alert)
    headline = alert.summary or f"{alert.rule}: {entity}"
    notes = tuple(str(n) for n in _seq(record.get("notes")) if n)
    started = when(alert.starts_at)
    if alert.status == "resolved":
        facts: list[tuple[str, str]] = []
        ended = alert.ends_at
        if ended is not None:
            facts.append(("Resolved", f"{when(ended)}, after {duration(ended - alert.starts_at)}"))
        else:
            facts.append(("Resolved", "yes"))
        final = _final_impact(record)
        if final:
            facts.append(("Final impact", final))
        footer = _footer("resolved", alert.severity, f"rule {alert.rule}", entity, f"began {started}")
        return Card(alert, headline, tuple(facts), (), (), footer)
    kind = str(record.get("kind") or alert.kind)
    build = {"anomaly": _anomaly, "budget": _budget}.get(kind, _generic)
    facts, lists = build(record)
    footer = _footer(alert.severity, f"rule {alert.rule}", entity, f"since {started}")
    return Card(alert, headline, tuple(facts), tuple(lists), notes, footer)


def ordered(n: Notification) -> list[Alert]:
    """Firing first, most severe first (stable within a severity), then the resolved ones."""
    firing = sorted(n.firing, key=lambda a: _SEVERITY_RANK.get(a.severity, 3))
    return [*firing, *n.resolved, *(a for a in n.alerts if a.status not in ("firing", "resolved"))]


# -------------------------------------------------------------------------------------- plain text
def _status(n: Notification) -> str:
    return "FIRING" if n.firing else "RESOLVED"


def _group(n: Notification) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(n.group_labels.items()))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def title(n: Notification) -> str:
    """One line: the email subject and the Slack header (at most 150 characters)."""
    prefix = "[TEST] " if n.test else ""
    if len(n.alerts) == 1:
        head = f"{prefix}[{_status(n)}] {n.alerts[0].summary}"
    else:
        counts = f"{len(n.firing)} firing" + (f", {len(n.resolved)} resolved" if n.resolved else "")
        if not n.firing:
            counts = f"{len(n.resolved)} resolved"
        head = f"{prefix}[{counts}] {_group(n) or n.group_key}".rstrip()
    return _clip(" ".join(head.split()), SLACK_HEADER_CHARS)


def _text_card(c: Card) -> list[str]:
    lines = [f"* {c.tag}: {c.headline}"]
    width = max((len(label) for label, _ in c.facts), default=0)
    lines += [f"  {label.ljust(width)}  {value}" for label, value in c.facts]
    for heading, items in c.lists:
        lines.append(f"  {heading}:")
        lines += [f"    - {item}" for item in items]
    lines += [f"  Note: {note}" for note in c.notes]
    lines.append(f"  ({c.footer})")
    return lines


def _more(alerts: Sequence[Alert]) -> str:
    firing = sum(1 for a in alerts if a.status == "firing")
    parts = [f"{firing} firing"] if firing else []
    if len(alerts) - firing:
        parts.append(f"{len(alerts) - firing} resolved")
    return f"and {len(alerts)} more ({', '.join(parts)})"


def text(n: Notification) -> str:
    """Plain text, for a terminal or the text part of an email."""
    alerts = ordered(n)
    lines = [title(n)]
    if n.test:
        lines.append(_TEST_NOTE)
    if _group(n):
        lines.append(f"Group: {_group(n)}")
    lines.append("")
    shown, rest = alerts[:MAX_FULL_ALERTS], alerts[MAX_FULL_ALERTS:]
    for a in shown:
        lines += _text_card(card(a))
        lines.append("")
    if rest:
        lines.append(_more(rest) + ":")
        lines += [f"  - [{a.status}] {a.summary}" for a in rest]
        lines.append("")
    lines.append(f"Sent by LiteLLM Sentinel at {when(n.created_at)} to receiver {n.receiver}.")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- Slack
def _mrkdwn(value: str) -> str:
    """Slack's three control characters; an entity named "<!channel>" must not page anyone."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escaped_clip(value: str, limit: int) -> str:
    """Escaped, then clipped to ``limit`` without cutting an entity in half."""
    raw = value
    while len(out := _mrkdwn(raw)) > limit:
        raw = _clip(raw, max(len(raw) - (len(out) - limit), 1))
    return out


def _slack_card(c: Card) -> str:
    icon = ":white_check_mark:" if c.resolved else _SLACK_ICON.get(c.alert.severity, ":white_circle:")
    lines = [f"{icon} *{_mrkdwn(c.headline)}*"]
    lines += [f"*{_mrkdwn(label)}:* {_mrkdwn(value)}" for label, value in c.facts]
    for heading, items in c.lists:
        lines.append(f"*{_mrkdwn(heading)}:*")
        lines += [f"• {_mrkdwn(item)}" for item in items]
    lines += [f"_{_mrkdwn(note)}_" for note in c.notes]
    return _clip("\n".join(lines), SLACK_SECTION_CHARS)


def slack_blocks(n: Notification) -> list[dict[str, Any]]:
    """Block Kit blocks: a header, a context line, then a section and a context line per alert
    (at most ``MAX_SLACK_ALERTS``), then one section summing up the rest."""
    alerts = ordered(n)
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=_escaped_clip(title(n), SLACK_HEADER_CHARS)))]
    context = []
    if n.test:
        context.append(f":test_tube: {_TEST_NOTE}")
    if _group(n):
        context.append(f"Group: {_mrkdwn(_group(n))}")
    if context:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(t, 3000)) for t in context]))
    shown, rest = alerts[:MAX_SLACK_ALERTS], alerts[MAX_SLACK_ALERTS:]
    for a in shown:
        c = card(a)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_slack_card(c))))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(_mrkdwn(c.footer), 3000))]))
    if rest:
        blocks.append(DividerBlock())
        lines = [f"*{_more(rest)}:*"] + [f"• {_mrkdwn(a.summary)}" for a in rest]
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip("\n".join(lines), SLACK_SECTION_CHARS))))
    return [b.to_dict() for b in blocks[:SLACK_MAX_BLOCKS]]


def fallback_text(n: Notification) -> str:
    """The ``text`` of a Slack message: what push notifications and screen readers show."""
    lines = [title(n)] + [f"• [{a.status}] {a.summary}" for a in ordered(n)[:MAX_SLACK_ALERTS]]
    if len(n.alerts) > MAX_SLACK_ALERTS:
        lines.append(_more(ordered(n)[MAX_SLACK_ALERTS:]))
    return _clip(_mrkdwn("\n".join(lines)), FALLBACK_CHARS)


# --------------------------------------------------------------------------------------------- HTML
_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }}</title></head>
<body style="margin:0;padding:12px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;
font-size:15px;line-height:1.45;color:#1f2328;background:#ffffff">
<div style="max-width:640px;margin:0 auto">
<h1 style="font-size:18px;margin:0 0 8px">{{ title }}</h1>
{% if test %}<p style="background:#fff8c5;padding:8px;margin:0 0 12px">{{ test_note }}</p>{% endif %}
{% if group %}<p style="color:#59636e;margin:0 0 12px">Group: {{ group }}</p>{% endif %}
{% for c in cards %}
<div style="border-left:4px solid {{ colors.get(c.tone, default_color) }};padding:2px 0 2px 10px;margin:0 0 16px">
<p style="margin:0 0 6px;font-weight:600">{{ c.tag }}: {{ c.headline }}</p>
{% for label, value in c.facts %}<div><span style="color:#59636e">{{ label }}:</span> {{ value }}</div>
{% endfor %}
{% for heading, items in c.lists %}<div style="margin-top:6px;color:#59636e">{{ heading }}:</div>
<ul style="margin:2px 0 0;padding-left:20px">{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>
{% endfor %}
{% for note in c.notes %}<div style="margin-top:6px;font-style:italic">{{ note }}</div>{% endfor %}
<div style="margin-top:6px;color:#59636e;font-size:13px">{{ c.footer }}</div>
</div>
{% endfor %}
{% if rest %}<p style="margin:0 0 4px;font-weight:600">{{ more }}:</p>
<ul style="margin:0 0 16px;padding-left:20px">
{% for a in rest %}<li>[{{ a.status }}] {{ a.summary }}</li>{% endfor %}</ul>
{% endif %}
<p style="color:#818b98;font-size:12px;margin:16px 0 0">Sent by LiteLLM Sentinel at {{ created }} to receiver
{{ receiver }}.</p>
</div></body></html>
"""

_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_template = _env.from_string(_HTML)


def html(n: Notification) -> str:
    """The HTML part of an email: one column, inline styles (mail clients drop style sheets)."""
    alerts = ordered(n)
    shown, rest = alerts[:MAX_FULL_ALERTS], alerts[MAX_FULL_ALERTS:]
    return _template.render(
        title=title(n),
        test=n.test,
        test_note=_TEST_NOTE,
        group=_group(n),
        cards=[card(a) for a in shown],
        rest=rest,
        more=_more(rest) if rest else "",
        colors=_HTML_COLOR,
        default_color=_HTML_COLOR["info"],
        created=when(n.created_at),
        receiver=n.receiver,
    )


# --------------------------------------------------------------------------------------------- JSON
def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC (``2025-03-04T10:00:00+00:00``); naive datetimes are taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def alert_json(alert: Alert) -> dict[str, object]:
    """One alert as it appears in the webhook body and in JSONL lines."""
    return {
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "rule": alert.rule,
        "severity": alert.severity,
        "summary": alert.summary,
        "labels": {str(k): str(v) for k, v in alert.labels.items()},
        "starts_at": iso(alert.starts_at),
        "ends_at": iso(alert.ends_at),
        "record": _jsonable(alert.record),
    }


def to_json(n: Notification) -> dict[str, object]:
    """The documented webhook body (README, "Alert JSON"), schema ``ALERT_SCHEMA_VERSION``."""
    return {
        "schema_version": ALERT_SCHEMA_VERSION,
        "receiver": n.receiver,
        "group_key": n.group_key,
        "group_labels": {str(k): str(v) for k, v in n.group_labels.items()},
        "status": "firing" if n.firing else "resolved",
        "test": n.test,
        "alerts": [alert_json(a) for a in n.alerts],
    }


def each_alert_json(n: Notification) -> Iterable[dict[str, object]]:
    """The JSONL lines of a notification: the :func:`to_json` envelope with ``alerts`` replaced by
    one ``alert`` per line, and ``status`` that alert's own."""
    head = to_json(n)
    del head["alerts"]
    for a in n.alerts:
        yield {**head, "status": a.status, "alert": alert_json(a)}
