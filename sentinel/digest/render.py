"""How a digest reads: an HTML page (images by ``cid:`` in an email, by ``data:`` URI in a preview
file), a plain-text part with the same numbers, a short Slack summary, and the email itself.

Pure functions of a :class:`~sentinel.digest.build.Digest` and its chart PNGs. Money is formatted
by ``notify.render.money`` everywhere, so the numbers in the text part, the HTML, Slack and the
alert notices are written alike.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, parseaddr
from typing import Any

import jinja2
from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from sentinel.budget.model import STATES
from sentinel.digest.build import AnomalyLine, BudgetLine, Digest, Mover, Share
from sentinel.notify.render import duration, money, signed_money

STATE_LABEL = {"exceeded": "exceeded", "at_risk": "at risk", "soft_exceeded": "soft limit exceeded", "ok": "ok"}
_STATE_COLOR = {"exceeded": "#d1242f", "at_risk": "#bc4c00", "soft_exceeded": "#9a6700", "ok": "#1a7f37"}
_KIND_TITLE = {"user": "Users", "model": "Models", "key": "Keys"}
SLACK_BUDGETS = 5  # budgets named in the Slack summary (the worst ones)
SLACK_ANOMALIES = 3
SLACK_SECTION_CHARS = 3000


# ------------------------------------------------------------------------------------------ words
def day(d: date) -> str:
    return d.isoformat()


def span(digest: Digest) -> str:
    return f"{day(digest.period_start)} to {day(digest.period_end)}"


def moment(value: datetime | None) -> str:
    if value is None:
        return "n/a"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def pct(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1f}%" if signed else f"{value:.0f}%"


def change(digest: Digest) -> str:
    """``+$52.15 (+23.8%) from the week before ($218.85)``."""
    rel = f" ({pct(digest.change_pct, signed=True)})" if digest.change_pct is not None else ""
    return f"{signed_money(digest.change)}{rel} from the week before ({money(digest.previous_total)})"


def subject(digest: Digest) -> str:
    rel = pct(digest.change_pct, signed=True) if digest.change_pct is not None else signed_money(digest.change)
    return f"{digest.title}, week of {span(digest)}: {money(digest.total)} ({rel})"


def mover_line(m: Mover) -> str:
    rel = f", {pct(m.change_pct, signed=True)}" if m.change_pct is not None else ""
    label = m.name if m.name == m.id or m.kind == "key" else f"{m.name} ({m.id})"
    return f"{label}: {money(m.spend)}, was {money(m.previous)} ({signed_money(m.change)}{rel})"


def anomaly_line(a: AnomalyLine) -> str:
    since = f"since {day(a.onset)}" if a.days > 1 else f"on {day(a.onset)}"
    days = f", {a.days} days" if a.days > 1 else ""
    alert = f"; alert {a.alert}" if a.alert else ""
    return (
        f"{a.entity_type} {a.name}: spend {a.direction} {since}{days}, {a.state}; impact {signed_money(a.impact_usd)} "
        f"(last day {money(a.observed)} vs {money(a.expected)} expected){alert}"
    )


def budget_label(b: BudgetLine) -> str:
    rule = f" [{b.rule}]" if b.rule else ""
    return f"{b.entity_type} {b.name} · {b.period or 'lifetime'}{rule}"


def budget_used(b: BudgetLine) -> str:
    limit = money(b.limit) if b.limit is not None else f"soft {money(b.soft_limit)}"
    used = f" ({pct(b.pct_used)})" if b.pct_used is not None else ""
    return f"{money(b.spent)} of {limit}{used}"


def budget_forecast(b: BudgetLine) -> str:
    if b.forecast is None:
        return b.note or "no forecast"
    interval = f" ({money(b.forecast_lower)} to {money(b.forecast_upper)})" if b.forecast_lower is not None else ""
    reset = f" at the reset {moment(b.window_end)}" if b.window_end else ""
    return f"{money(b.forecast)}{interval}{reset}"


def budget_eta(b: BudgetLine) -> str:
    if b.state == "exceeded":
        return "limit reached"
    if b.eta is None:
        return "not before the reset" if b.forecast is not None else "n/a"
    runway = f" (runway {duration(b.runway)})" if b.runway is not None else ""
    return f"{moment(b.eta)}{runway}"


def budget_line(b: BudgetLine) -> str:
    chance = f", P(breach) {b.p_breach:.0%}" if b.p_breach is not None else ""
    return (
        f"{budget_label(b)}: {budget_used(b)}; forecast {budget_forecast(b)}{chance}; "
        f"breach ETA {budget_eta(b)} [{STATE_LABEL.get(b.state, b.state)}]"
    )


def budget_summary(digest: Digest) -> str:
    counts = digest.budget_counts()
    parts = [f"{counts[s]} {STATE_LABEL[s]}" for s in STATES]
    return f"{len(digest.budgets)} budgets: " + ", ".join(parts)


def _share_rows(rows: tuple[Share, ...], total: float) -> list[dict[str, str]]:
    return [
        {
            "name": r.name,
            "spend": money(r.spend),
            "previous": money(r.previous),
            "change": signed_money(r.change),
            "share": f"{r.spend / total:.0%}" if total > 0 else "n/a",
        }
        for r in rows
    ]


def _group_title(digest: Digest) -> str:
    return "Spend by team" if digest.group_kind == "team" else "Spend by user (this team's keys)"


# ------------------------------------------------------------------------------------------- text
def text(digest: Digest) -> str:
    """The plain-text part: every number of the HTML, in lines that read on a phone."""
    week = digest.week
    lines = [
        f"{digest.title}: weekly digest, {span(digest)} (UTC days)",
        "",
        f"Total: {money(digest.total)}, {change(digest)}",
        f"Daily average: {money(digest.total / 7)}. Days above the usual range: {digest.days_above_band} of "
        f"{len(week)}.",
    ]
    lines += [f"Note: {n}" for n in digest.notes]
    for title, rows in (("Spend by provider", digest.by_provider), (_group_title(digest), digest.by_group)):
        lines += ["", f"{title} (this week, the week before, change):"]
        lines += [
            f"  {r['name']}: {r['spend']}, {r['previous']}, {r['change']} ({r['share']})"
            for r in _share_rows(rows, digest.total)
        ] or ["  none"]
    lines += ["", "Top movers (largest change in dollars from the week before):"]
    for kind, movers in digest.movers:
        lines.append(f"  {_KIND_TITLE.get(kind, kind)}:")
        lines += [f"    {mover_line(m)}" for m in movers] or ["    none"]
    lines += ["", f"Anomalies this week ({len(digest.anomalies)}):"]
    lines += [f"  {anomaly_line(a)}" for a in digest.anomalies] or ["  none"]
    lines += ["", f"Budgets as of {moment(digest.generated_at)}: {budget_summary(digest)}"]
    lines += [f"  {budget_line(b)}" for b in digest.budgets] or ["  none"]
    lines += ["", "Spend per day this week (expected, and the usual range):"]
    for p in week:
        band = (
            f"expected {money(p.expected)} ({money(p.lower)} to {money(p.upper)})"
            if p.expected is not None
            else "no baseline yet"
        )
        lines.append(f"  {day(p.day)} {p.day:%a}: {money(p.spend)}; {band}")
    lines += ["", _footer(digest)]
    return "\n".join(lines) + "\n"


def _footer(digest: Digest) -> str:
    return (
        f"Made by LiteLLM Sentinel at {moment(digest.generated_at)} for the digest scheduled at "
        f"{moment(digest.due_at)} ({digest.audience}). Days are UTC days."
    )


# ------------------------------------------------------------------------------------------- HTML
_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ subject }}</title></head>
<body style="margin:0;padding:12px;font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;
font-size:14px;line-height:1.45;color:#1f2328;background:#ffffff">
<div style="max-width:800px;margin:0 auto">
<p style="color:#59636e;margin:0">Weekly digest · {{ span }} (UTC days)</p>
<h1 style="font-size:20px;margin:2px 0 10px">{{ d.title }}</h1>
<p style="margin:0 0 4px"><span style="font-size:26px;font-weight:600">{{ total }}</span>
<span style="color:{{ change_color }};font-weight:600">&nbsp;{{ change }}</span></p>
<p style="color:#59636e;margin:0 0 12px">Daily average {{ average }} · days above the usual range:
{{ d.days_above_band }} of {{ week|length }}</p>
{% for note in d.notes %}<p style="background:#fff8c5;padding:6px 8px;margin:0 0 8px">{{ note }}</p>{% endfor %}
<img src="{{ images.daily }}"
 alt="Spend per day over {{ d.days|length // 7 }} weeks, with the expected spend and its usual range" width="800"
 style="display:block;width:100%;max-width:800px;height:auto;margin:8px 0 16px">
{% for title, image, rows in tables %}
<h2 style="font-size:16px;margin:16px 0 6px">{{ title }}</h2>
<img src="{{ image }}" alt="{{ title }}" width="800"
 style="display:block;width:100%;max-width:800px;height:auto;margin:0 0 8px">
<table style="border-collapse:collapse;width:100%;font-size:13px">
<tr style="color:#59636e;text-align:right"><th style="text-align:left;{{ cell }}">name</th>
<th style="{{ cell }}">this week</th><th style="{{ cell }}">week before</th><th style="{{ cell }}">change</th>
<th style="{{ cell }}">share</th></tr>
{% for r in rows %}<tr style="text-align:right"><td style="text-align:left;{{ cell }}">{{ r.name }}</td>
<td style="{{ cell }}">{{ r.spend }}</td><td style="{{ cell }}">{{ r.previous }}</td>
<td style="{{ cell }}">{{ r.change }}</td><td style="{{ cell }}">{{ r.share }}</td></tr>
{% else %}<tr><td style="{{ cell }}" colspan="5">none</td></tr>{% endfor %}
</table>
{% endfor %}
<h2 style="font-size:16px;margin:20px 0 6px">Top movers</h2>
<p style="color:#59636e;margin:0 0 6px">Largest change in dollars from the week before.</p>
{% for kind, movers in movers %}
<div style="margin:0 0 8px"><b>{{ kind }}</b>
<ul style="margin:2px 0 0;padding-left:20px">
{% for m in movers %}<li>{{ m }}</li>{% else %}<li>none</li>{% endfor %}</ul>
</div>
{% endfor %}
<h2 style="font-size:16px;margin:20px 0 6px">Anomalies this week ({{ d.anomalies|length }})</h2>
{% if d.anomalies %}<table style="border-collapse:collapse;width:100%;font-size:13px">
<tr style="color:#59636e;text-align:left"><th style="{{ cell }}">what</th><th style="{{ cell }}">when</th>
<th style="{{ cell }}">state</th><th style="text-align:right;{{ cell }}">impact</th>
<th style="text-align:right;{{ cell }}">last day (expected)</th></tr>
{% for a in anomalies %}<tr><td style="{{ cell }}">{{ a.what }}</td><td style="{{ cell }}">{{ a.when }}</td>
<td style="{{ cell }}">{{ a.state }}</td><td style="text-align:right;{{ cell }}">{{ a.impact }}</td>
<td style="text-align:right;{{ cell }}">{{ a.last }}</td></tr>
{% endfor %}</table>
{% else %}<p style="margin:0">None found.</p>{% endif %}
<h2 style="font-size:16px;margin:20px 0 6px">Budgets</h2>
<p style="color:#59636e;margin:0 0 6px">As of {{ as_of }}: {{ budget_summary }}. Forecast: expected spend when the
window resets, with its interval; runway: time until the expected path reaches the limit.</p>
{% if budgets %}<table style="border-collapse:collapse;width:100%;font-size:13px">
<tr style="color:#59636e;text-align:left"><th style="{{ cell }}">budget</th><th style="{{ cell }}">spent</th>
<th style="{{ cell }}">forecast at reset</th><th style="text-align:right;{{ cell }}">P(breach)</th>
<th style="{{ cell }}">breach ETA</th><th style="{{ cell }}">state</th></tr>
{% for b in budgets %}<tr><td style="{{ cell }}">{{ b.label }}</td><td style="{{ cell }}">{{ b.used }}</td>
<td style="{{ cell }}">{{ b.forecast }}</td><td style="text-align:right;{{ cell }}">{{ b.chance }}</td>
<td style="{{ cell }}">{{ b.eta }}</td>
<td style="{{ cell }};color:{{ b.color }};font-weight:600">{{ b.state }}</td></tr>
{% endfor %}</table>
{% else %}<p style="margin:0">No budgets.</p>{% endif %}
<h2 style="font-size:16px;margin:20px 0 6px">Spend per day this week</h2>
<table style="border-collapse:collapse;font-size:13px">
{% for p in days %}<tr><td style="{{ cell }}">{{ p.day }}</td><td style="text-align:right;{{ cell }}">{{ p.spend }}</td>
<td style="color:#59636e;{{ cell }}">{{ p.band }}</td></tr>
{% endfor %}</table>
<p style="color:#818b98;font-size:12px;margin:16px 0 0">{{ footer }}</p>
</div></body></html>
"""

_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_template = _env.from_string(_HTML)
_CELL = "padding:3px 6px;border-bottom:1px solid #eaeef2"


def html(digest: Digest, images: Mapping[str, str]) -> str:
    """The HTML page; ``images`` maps each chart name (``charts.CHART_NAMES``) to its ``src``:
    ``cid:...`` in an email, a ``data:`` URI in a preview file."""
    return _template.render(
        d=digest,
        subject=subject(digest),
        span=span(digest),
        total=money(digest.total),
        change=change(digest),
        change_color="#d1242f" if digest.change > 0 else "#1a7f37",  # spend going up is the news
        average=money(digest.total / 7),
        week=digest.week,
        images=images,
        cell=_CELL,
        tables=[
            ("Spend by provider", images["providers"], _share_rows(digest.by_provider, digest.total)),
            (_group_title(digest), images["groups"], _share_rows(digest.by_group, digest.total)),
        ],
        movers=[(_KIND_TITLE.get(k, k), [mover_line(m) for m in ms]) for k, ms in digest.movers],
        anomalies=[
            {
                "what": f"{a.entity_type} {a.name} ({a.direction})",
                "when": f"{day(a.onset)}" + (f", {a.days} days" if a.days > 1 else ""),
                "state": a.state + (f"; alert {a.alert}" if a.alert else ""),
                "impact": signed_money(a.impact_usd),
                "last": f"{money(a.observed)} ({money(a.expected)})",
            }
            for a in digest.anomalies
        ],
        as_of=moment(digest.generated_at),
        budget_summary=budget_summary(digest),
        budgets=[
            {
                "label": budget_label(b),
                "used": budget_used(b),
                "forecast": budget_forecast(b),
                "chance": f"{b.p_breach:.0%}" if b.p_breach is not None else "-",
                "eta": budget_eta(b),
                "state": STATE_LABEL.get(b.state, b.state),
                "color": _STATE_COLOR.get(b.state, "#1f2328"),
            }
            for b in digest.budgets
        ],
        days=[
            {
                "day": f"{day(p.day)} {p.day:%a}",
                "spend": money(p.spend),
                "band": (
                    f"expected {money(p.expected)} ({money(p.lower)} to {money(p.upper)})"
                    if p.expected is not None
                    else "no baseline yet"
                ),
            }
            for p in digest.week
        ],
        footer=_footer(digest),
    )


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def preview(digest: Digest, charts: Mapping[str, bytes]) -> str:
    """A standalone HTML file: the email's page with the charts inlined as ``data:`` URIs."""
    return html(digest, {name: data_uri(png) for name, png in charts.items()})


# ------------------------------------------------------------------------------------------ email
def _token(digest: Digest, *parts: str) -> str:
    seed = "\x1f".join((digest.due_at.isoformat(), digest.audience, *parts))
    return hashlib.sha256(seed.encode()).hexdigest()[:24]


def content_ids(digest: Digest, names: Iterable[str], domain: str) -> dict[str, str]:
    """A Content-ID (``<...>``) per chart, the same on every attempt to send the same digest."""
    return {name: f"<{name}.{_token(digest, name)}@{domain}>" for name in names}


def email_message(
    digest: Digest,
    charts: Mapping[str, bytes],
    *,
    from_addr: str,
    to: tuple[str, ...],
    receiver: str,
) -> EmailMessage:
    """multipart/alternative: the text part, and multipart/related holding the HTML and its charts
    as inline PNGs, referenced from the HTML by ``cid:``."""
    domain = parseaddr(from_addr)[1].rpartition("@")[2] or "sentinel.invalid"
    msg = EmailMessage()
    msg["Subject"] = subject(digest)
    msg["From"] = from_addr
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(digest.generated_at.astimezone(UTC))
    # The same digest for the same receiver keeps its Message-ID when a crash makes us send it again.
    msg["Message-ID"] = f"<digest.{_token(digest, receiver, *to)}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    msg["X-Sentinel-Receiver"] = receiver
    msg["X-Sentinel-Digest"] = f"{digest.due_at.astimezone(UTC).isoformat()} {digest.audience}"
    cids = content_ids(digest, charts, domain)
    msg.set_content(text(digest))
    msg.add_alternative(html(digest, {name: "cid:" + cid[1:-1] for name, cid in cids.items()}), subtype="html")
    page = msg.get_payload()[-1]  # type: ignore[index]
    assert isinstance(page, MIMEPart)
    for name, png in charts.items():
        page.add_related(
            png, maintype="image", subtype="png", cid=cids[name], filename=f"{name}.png", disposition="inline"
        )
    return msg


# ------------------------------------------------------------------------------------------ Slack
def _mrkdwn(value: str) -> str:
    """Slack's three control characters: a name like "<!channel>" must not page anyone."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def slack_text(digest: Digest) -> str:
    """The message's ``text`` (push notifications, screen readers): one line, no links."""
    return _mrkdwn(f"{digest.title}, week of {span(digest)}: {money(digest.total)}, {change(digest)}")


def slack_blocks(digest: Digest) -> list[dict[str, Any]]:
    """A short summary in Block Kit: totals, where the money went, the biggest movers, anomalies
    and the budgets that need attention. No links and no images: the full digest goes by email."""
    top = ", ".join(f"{r.name} {money(r.spend)}" for r in digest.by_provider[:3]) or "none"
    groups = ", ".join(f"{r.name} {money(r.spend)}" for r in digest.by_group[:3]) or "none"
    movers = [m for _kind, ms in digest.movers for m in ms[:1]]
    lines = [
        f"*Total:* {money(digest.total)}, {change(digest)}",
        f"*Providers:* {top}",
        f"*{'Teams' if digest.group_kind == 'team' else 'Users'}:* {groups}",
    ]
    if movers:
        lines.append("*Biggest movers:* " + "; ".join(f"{m.kind} {m.name} {signed_money(m.change)}" for m in movers))
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_clip(f"{digest.title}: week of {span(digest)}", 150))),
        SectionBlock(text=MarkdownTextObject(text=_clip(_mrkdwn("\n".join(lines)), SLACK_SECTION_CHARS))),
    ]
    anomalies = [f"*Anomalies:* {len(digest.anomalies)}, impact {signed_money(digest.anomaly_impact)}"]
    anomalies += [f"• {anomaly_line(a)}" for a in digest.anomalies[:SLACK_ANOMALIES]]
    if len(digest.anomalies) > SLACK_ANOMALIES:
        anomalies.append(f"• and {len(digest.anomalies) - SLACK_ANOMALIES} more")
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(_mrkdwn("\n".join(anomalies)), SLACK_SECTION_CHARS))))
    worst = [b for b in digest.budgets if b.state != "ok"][:SLACK_BUDGETS]
    budget_lines = [f"*Budgets:* {budget_summary(digest)}"]
    budget_lines += [
        f"• {budget_label(b)}: {budget_used(b)}, {STATE_LABEL.get(b.state, b.state)}; breach ETA {budget_eta(b)}"
        for b in worst
    ]
    blocks.append(
        SectionBlock(text=MarkdownTextObject(text=_clip(_mrkdwn("\n".join(budget_lines)), SLACK_SECTION_CHARS)))
    )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_mrkdwn(_footer(digest)))]))
    return [b.to_dict() for b in blocks]
