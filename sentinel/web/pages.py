"""The web view's pages as HTML: jinja2 templates shipped in ``sentinel/web/templates``, autoescaped.

Pure functions of the page values (``web.data``) and ``now``. Links are plain ``<a href>`` to the
view's own paths (an entity's id is percent-encoded whole, so a model's "/" stays in its segment);
the pages carry no script and no URL of anything outside the view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import jinja2
from markupsafe import Markup, escape

from sentinel.digest.build import BudgetLine, DayPoint
from sentinel.notify.render import duration, money, signed_money
from sentinel.web import charts
from sentinel.web.data import (
    DEFAULT_DAYS,
    KINDS,
    PERIODS,
    AnomalyList,
    BudgetList,
    EntityPage,
    Overview,
    Row,
    Section,
)

STATE_LABEL = {
    "all": "all",
    "exceeded": "exceeded",
    "at_risk": "at risk",
    "soft_exceeded": "soft limit exceeded",
    "ok": "ok",
}
_SINGULAR = {"providers": "provider", "teams": "team", "users": "user", "models": "model", "keys": "key"}
CHART_ROWS = 10


def href(kind: str, ident: str, days: int | None = None) -> str:
    """The path of an entity's page (``/model/openai%2Fgpt-4o``), keeping a chosen period."""
    path = f"/{kind}/{quote(ident, safe='')}"
    return path if days in (None, DEFAULT_DAYS) else f"{path}?days={days}"


def shown_id(ident: str, kind: str = "") -> str:
    """An id as shown: keys (64-character hashes) shortened; the empty id of the whole proxy named."""
    if not ident:
        return "whole proxy" if kind == "total" else "(none)"
    if kind == "key" and len(ident) > 16:
        return ident[:12] + "…"
    if len(ident) > 24 and kind != "model":  # a team's UUID: the alias says which; the title holds it all
        return ident[:8] + "…"
    return ident


def moment(value: datetime | None) -> str:
    if value is None:
        return "n/a"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def when(value: datetime) -> Markup:
    """A moment in a table: ``<time>`` with the full ISO value, shown to the minute (UTC, as the
    page says)."""
    utc = value.astimezone(UTC)
    return Markup(f'<time datetime="{utc.isoformat()}">{utc:%Y-%m-%d %H:%M}</time>')


def _exact(value: float) -> str:
    return f"{float(value):.6f}"


def _pct(value: float) -> str:
    return f"{value:+.1f}%"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def amount(value: float | None, element_id: str | None = None, signed: bool = False) -> Markup:
    """Dollars as shown, with the exact value in ``data-value`` (for scripts and tests)."""
    if value is None:
        return Markup('<span class="muted">n/a</span>')
    ident = f' id="{escape(element_id)}"' if element_id else ""
    text = signed_money(value) if signed else money(value)  # digits, "$", ",", "." and a sign only
    return Markup(f'<span{ident} data-value="{value:.6f}">{text}</span>')


def label(kind: str, ident: str, name: str = "", days: int | None = None) -> Markup:
    """An entity as shown: its alias next to its id (or the id alone), linked to its page if it has one."""
    shown = escape(shown_id(ident, kind))
    if name and name not in (ident, shown):
        inner = f'<span class="name">{escape(name)}</span> <code class="id" title="{escape(ident)}">{shown}</code>'
    else:
        inner = f'<span class="name">{shown}</span>'
    if kind in KINDS and ident:
        return Markup(f'<a class="entity" href="{escape(href(kind, ident, days))}">{inner}</a>')
    return Markup(inner)


def daily_rows(points: Sequence[DayPoint]) -> Markup:
    """The rows of the table under the daily chart, latest day first (built here: hundreds of rows
    of dates and numbers, which need no escaping, render several times faster than a template loop)."""
    out = []
    for p in reversed(points):
        usual = (
            f"{money(p.lower)} to {money(p.upper)}"
            if p.lower is not None and p.upper is not None
            else '<span class="muted">no baseline</span>'
        )
        out.append(
            f'<tr data-date="{p.day.isoformat()}"><td>{p.day.isoformat()}</td><td class="num">{amount(p.spend)}</td>'
            f'<td class="num">{amount(p.expected)}</td><td class="num">{usual}</td></tr>\n'
        )
    return Markup("".join(out))


def section_rows(section: Section, days: int | None) -> Markup:
    """The rows of a contributor table (built here, like ``daily_rows``: a page has hundreds)."""
    out = []
    for r in section.rows:
        out.append(
            f'<tr data-kind="{escape(r.kind)}" data-id="{escape(r.id)}"><td>{label(r.kind, r.id, r.name, days)}</td>'
            f'<td class="num spend">{amount(r.spend)}</td><td class="num">{_share(section.share(r))}</td>'
            f'<td class="num">{amount(r.previous)}</td><td class="num">{amount(r.change, signed=True)}</td></tr>\n'
        )
    return Markup("".join(out))


_NONE = '<span class="muted">n/a</span>'


def budget_rows(lines: Sequence[BudgetLine], show_entity: bool = True) -> Markup:
    """The rows of a budget table, worst first as given (built here: /budgets shows 250 a page)."""
    out = []
    for b in lines:
        what = f'<span class="kind">{escape(b.entity_type)}</span> {label(b.entity_type, b.entity_id, b.name)}<br>'
        kind = f"{b.period or 'lifetime'}, " + (f"rule {b.rule}" if b.rule else b.origin)
        budget = f'{what if show_entity else ""}<span class="muted">{escape(kind)}</span>'
        if b.note:
            budget += f'<br><span class="note">{escape(b.note)}</span>'
        limit = str(amount(b.limit))
        if b.soft_limit is not None:
            limit += f'<br><span class="muted">soft {money(b.soft_limit)}</span>'
        used = f'<span data-value="{b.pct_used:.6f}">{b.pct_used:.0f}%</span>' if b.pct_used is not None else _NONE
        forecast = _NONE
        if b.forecast is not None:
            interval = f"{money(b.forecast_lower)} to {money(b.forecast_upper)}"
            forecast = f'{amount(b.forecast)}<br><span class="muted">{interval}</span>'
        chance = f'<span data-value="{b.p_breach:.6f}">{b.p_breach:.0%}</span>' if b.p_breach is not None else _NONE
        out.append(
            f'<tr class="budget state-{escape(b.state)}" data-budget-id="{escape(b.budget_id)}" '
            f'data-entity-type="{escape(b.entity_type)}" data-entity-id="{escape(b.entity_id)}">'
            f'<td class="entity">{budget}</td><td class="num spent">{amount(b.spent)}</td>'
            f'<td class="num limit">{limit}</td><td class="num used">{used}</td>'
            f'<td class="when">{when(b.window_end) if b.window_end else _MUTED_NEVER}</td>'
            f'<td class="num forecast">{forecast}</td><td class="num chance">{chance}</td>'
            f'<td class="when">{when(b.eta) if b.eta else _MUTED_DASH}</td>'
            f'<td class="when runway">{escape(_runway(b.runway)) if b.runway is not None else _MUTED_DASH}</td>'
            f'<td class="state">{escape(STATE_LABEL.get(b.state, b.state))}</td></tr>\n'
        )
    return Markup("".join(out))


_MUTED_NEVER = '<span class="muted">never</span>'
_MUTED_DASH = '<span class="muted">-</span>'


def _runway(value: timedelta) -> str:
    return "reached" if value <= timedelta(0) else duration(value)


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("sentinel.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    pct=_pct,
    moment=moment,
    state_label=lambda s: STATE_LABEL.get(s, s),
    singular=lambda key: _SINGULAR.get(key, key),
)
_env.globals.update(
    periods=PERIODS,
    default_days=DEFAULT_DAYS,
    amount=amount,
    label=label,
    when=when,
    daily_rows=daily_rows,
    section_rows=section_rows,
    budget_rows=budget_rows,
)


def _render(name: str, now: datetime, **context: object) -> str:
    return _env.get_template(name).render(now=now, **context)


def _svg(markup: str) -> Markup:
    """A chart's markup, placed as it is: ``web.charts`` escapes every text it draws."""
    return Markup(markup)


def _bars(section: Section) -> Markup:
    rows: Sequence[Row] = section.rows[:CHART_ROWS]
    bars = [charts.Bar(r.name or shown_id(r.id, r.kind), r.spend, r.previous) for r in rows]
    return _svg(charts.bars(bars, section.title))


def overview(ov: Overview, now: datetime) -> str:
    title = f"Spend per day, {ov.period.first} to {ov.period.last}"
    return _render(
        "overview.html",
        now,
        page="overview",
        title=f"Spend, last {ov.period.days} days",
        ov=ov,
        days=ov.period.days,
        daily_chart=_svg(charts.daily(ov.points, title)),
        section_charts=[_bars(s) for s in ov.sections],
    )


def entity(e: EntityPage, now: datetime) -> str:
    shown = e.name or shown_id(e.id, e.kind)
    title = f"Spend per day of {e.kind} {shown}, {e.period.first} to {e.period.last}"
    return _render(
        "entity.html",
        now,
        page=e.kind,
        title=f"{e.kind.title()} {shown}",
        e=e,
        days=e.period.days,
        self_path=href(e.kind, e.id),
        daily_chart=_svg(charts.daily(e.points, title)),
        section_charts=[_bars(s) for s in e.sections],
    )


def anomalies(lst: AnomalyList, now: datetime) -> str:
    return _render("anomalies.html", now, page="anomalies", title="Anomaly alerts", lst=lst)


def budgets(lst: BudgetList, now: datetime) -> str:
    return _render("budgets.html", now, page="budgets", title="Budgets", lst=lst)


def error(status: int, heading: str, message: str, now: datetime) -> str:
    return _render("error.html", now, page="error", title=heading, status=status, heading=heading, message=message)
