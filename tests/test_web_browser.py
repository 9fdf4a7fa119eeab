"""The web view in a real browser: headless Chromium (driven by Playwright) over the demo's store,
served by ``observe.HealthServer`` on 127.0.0.1 as ``sentinel demo --serve`` serves it.

What only a browser can tell: the charts are drawn (the inline SVG has a size and the page's inline
styles apply under its Content-Security-Policy), clicking the links lands on the pages they name
(model ids with a "/" percent-encoded), the period and state filters change what is shown, no page
asks for anything outside the server (every request is recorded and checked, every console error
fails the test), no page has a script, and nothing is wider than a 1280-pixel window.

Needs Chromium (``apt-get install chromium``, or SENTINEL_CHROMIUM=/path/to/chrome) and the
``playwright`` package (``pip install -e '.[test]'``); without them the module is skipped. The
browser is the system's: ``playwright install`` (a download) is never needed.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from browserhelp import CHROMIUM_ARGS, find_chromium

from sentinel.clock import fixed
from sentinel.demo import example_rules, run_demo
from sentinel.observe import HealthServer
from sentinel.web import WebApp, prepare_store

CHROMIUM = find_chromium()  # at import: the tests' autouse fixture clears SENTINEL_* variables
_GIVEN = os.environ.get("SENTINEL_CHROMIUM")
_NO_CHROMIUM = (
    ""
    if CHROMIUM
    else f"SENTINEL_CHROMIUM={_GIVEN} is not a file (point it at a Chromium or Chrome binary)"
    if _GIVEN
    else "no Chromium (looked for chromium, chromium-browser, /usr/bin/chromium): `apt-get install chromium`, "
    "or set SENTINEL_CHROMIUM to a Chromium or Chrome binary"
)
try:
    from playwright.sync_api import (
        Browser,
        ConsoleMessage,
        Locator,
        Page,
        Request,
        Route,
        expect,
        sync_playwright,
    )
except ImportError:
    _NO_PLAYWRIGHT = (
        "no playwright package: `pip install -e '.[test]'` (it drives the system's Chromium: "
        "no `playwright install` needed)"
    )
    pytest.skip("; ".join(m for m in (_NO_CHROMIUM, _NO_PLAYWRIGHT) if m), allow_module_level=True)
if CHROMIUM is None:
    pytest.skip(_NO_CHROMIUM, allow_module_level=True)

WIDTH, HEIGHT = 1280, 900
DEMO_DAYS, DEMO_USERS = 40, 16
STATES = ("exceeded", "at_risk", "soft_exceeded", "ok")
MONEY = re.compile(r"^-?\$\d{1,3}(,\d{3})*\.\d{2}(\d{2})?$")


# ------------------------------------------------------------------------------------- the site
@dataclass
class Site:
    """The demo's store served on 127.0.0.1, as of a fixed moment (the one the store was built at)."""

    url: str
    path: Path
    now: datetime
    requests: list[str] = field(default_factory=list)  # every request any test's page made

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return list(conn.execute(query, params))
        finally:
            conn.close()

    def period(self, days: int) -> tuple[date, date]:
        """The period a page of ``days`` shows: the complete UTC days before today."""
        last = self.now.date() - timedelta(days=1)
        return last - timedelta(days=days - 1), last

    def spend(self, grain: str, entity: str, days: int = 30) -> float:
        first, last = self.period(days)
        row = self.sql(
            "SELECT total(spend) FROM daily_facts WHERE grain = ? AND entity_id = ? AND date BETWEEN ? AND ?",
            grain,
            entity,
            first.isoformat(),
            last.isoformat(),
        )
        return float(row[0][0])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One demo store for the module (the simulator synced over HTTP, one alerting cycle with the
    example rules), prepared and served as `sentinel demo --serve` does."""
    path = tmp_path_factory.mktemp("web-browser") / "demo.db"
    run_demo(db=path, days=DEMO_DAYS, users=DEMO_USERS)
    prepare_store(path)
    now = datetime.now(UTC)  # the demo's data is as of the clock; fixed so that every page agrees
    server = HealthServer(path, "127.0.0.1", 0, clock=fixed(now), web=WebApp(rules=example_rules))
    server.start()
    try:
        yield Site(server.url, path, now)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watch:
    """What one test's page did besides showing the pages: requests elsewhere, console errors."""

    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, site: Site, watch: Watch) -> Iterator[Page]:
    """A fresh page at 1280x900 in its own context. Every request is recorded (``site.requests``);
    one to anywhere but the server is aborted and fails the test, as does any console error (a
    Content-Security-Policy violation is one) or uncaught page error."""
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    origin = site.url

    def route(r: Route, request: Request) -> None:
        if request.url == origin or request.url.startswith(origin + "/"):
            r.continue_()
        else:
            watch.outside.append(request.url)
            r.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watch.errors.append(message.text)

    context.route("**/*", route)
    context.on("request", lambda request: site.requests.append(request.url))
    p = context.new_page()
    p.on("console", on_console)
    p.on("pageerror", lambda exc: watch.errors.append(f"page error: {exc}"))
    try:
        yield p
    finally:
        context.close()
    assert not watch.outside, f"requests outside {origin}: {watch.outside}"
    assert not watch.errors, f"console errors: {watch.errors}"


# ------------------------------------------------------------------------------------- helpers
def check_page(page: Page, status: int | None) -> None:
    """What every page of the view must be: 200, no script, no horizontal scroll at 1280 pixels."""
    assert status == 200, f"{page.url}: status {status}"
    assert page.locator("script").count() == 0, f"{page.url} has a <script>"
    scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, f"{page.url} is {scroll} px wide in a {client} px window"


def visit(page: Page, site: Site, path: str) -> None:
    response = page.goto(site.url + path)
    check_page(page, response.status if response else None)


def click(page: Page, target: str | Locator) -> None:
    """Click a link (a selector or a locator) and check the page it lands on."""
    link = page.locator(target) if isinstance(target, str) else target
    with page.expect_navigation() as nav:
        link.click()
    response = nav.value
    check_page(page, response.status if response else None)


def path_of(page: Page) -> str:
    parts = urlsplit(page.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def value(page: Page, selector: str) -> float:
    """The exact amount an element carries in data-value."""
    found = page.locator(selector).first.get_attribute("data-value")
    assert found is not None, f"no data-value on {selector}"
    return float(found)


def shown_money(text: str) -> float:
    text = text.strip()
    assert MONEY.match(text), f"{text!r} is not a dollar amount"
    return float(text.replace("$", "").replace(",", ""))


def check_daily_chart(page: Page, days: int) -> None:
    """The series chart is drawn: visible, with a size, a line through every day of the period
    styled by the page's CSS (an inline style the CSP must let through)."""
    chart = page.locator("figure#daily svg.chart.daily")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100, box
    line = chart.locator("polyline.spend")
    expect(line).to_have_count(1)
    points = (line.get_attribute("points") or "").split()
    assert len(points) == days == page.locator("#daily-table tr[data-date]").count()
    line_box = line.bounding_box()
    assert line_box is not None and line_box["width"] > box["width"] / 2
    stroke, fill = line.evaluate("e => [getComputedStyle(e).stroke, getComputedStyle(e).fill]")
    assert (stroke, fill) == ("rgb(9, 105, 218)", "none"), "the page's stylesheet does not apply to the chart"


def check_band(page: Page) -> None:
    """The baseline's usual range: at least one shaded polygon with an area, and its legend."""
    chart = page.locator("figure#daily svg.chart.daily")
    band = chart.locator("polygon.band")
    assert band.count() >= 1, "no band on the daily chart"
    box = band.first.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0, box
    assert band.first.evaluate("e => getComputedStyle(e).fillOpacity") == "0.2"
    expect(chart.locator("g.legend rect.band")).to_be_visible()


def check_bars(page: Page, section: str) -> None:
    """A contributor section's bar chart: one bar per table row (at most ten), widest first."""
    rows = page.locator(f"section#{section} table tbody tr").count()
    assert rows > 0, f"section #{section} has no rows"
    chart = page.locator(f"section#{section} svg.chart.bars")
    expect(chart).to_be_visible()
    bars = chart.locator("rect.bar")
    assert bars.count() == min(rows, 10)
    widths = [float(w) for w in bars.evaluate_all("els => els.map(e => e.getAttribute('width'))")]
    assert widths == sorted(widths, reverse=True) and widths[0] > 0
    assert (bars.first.bounding_box() or {"width": 0.0})["width"] > 0


def heading(page: Page) -> tuple[str, str, str]:
    h1 = page.locator("h1#entity")
    expect(h1).to_be_visible()
    return h1.get_attribute("data-kind") or "", h1.get_attribute("data-id") or "", h1.inner_text()


# ------------------------------------------------------------------------------------- overview
def test_the_overview_shows_the_stores_total_and_draws_its_charts(page: Page, site: Site) -> None:
    visit(page, site, "/")
    assert page.title() == "Spend, last 30 days · Sentinel"
    total = page.locator("#total-spend")
    expect(total).to_be_visible()
    stored = site.spend("total", "")
    assert stored > 0
    assert value(page, "#total-spend") == pytest.approx(stored, abs=1e-5)
    assert shown_money(total.inner_text()) == pytest.approx(stored, abs=0.005)
    first, last = site.period(30)
    expect(page.locator("#totals dt").first).to_have_text(f"Spend, {first} to {last}")
    check_daily_chart(page, 30)
    check_band(page)
    for section in ("providers", "teams", "users", "models"):
        check_bars(page, section)
    # The table under the chart is folded away until asked for, and shows every day when opened.
    table = page.locator("#daily-table table")
    expect(table).to_be_hidden()
    page.locator("#daily-table summary").click()
    expect(table).to_be_visible()
    latest = page.locator("#daily-table tr[data-date]").first
    assert latest.get_attribute("data-date") == last.isoformat()
    assert value(page, f'#daily-table tr[data-date="{last}"] td.num span') == pytest.approx(
        site.spend("total", "", 1), abs=1e-5
    )


def test_an_entity_page_draws_its_series_and_contributors(page: Page, site: Site) -> None:
    (team,) = site.sql(
        "SELECT entity_id FROM daily_facts WHERE grain = 'team' AND entity_id != '' AND date BETWEEN ? AND ? "
        "GROUP BY entity_id ORDER BY total(spend) DESC LIMIT 1",
        *(d.isoformat() for d in site.period(30)),
    )[0]
    visit(page, site, f"/team/{quote(str(team), safe='')}")
    assert heading(page)[:2] == ("team", team)
    assert value(page, "#total-spend") == pytest.approx(site.spend("team", str(team)), abs=1e-5)
    check_daily_chart(page, 30)
    for section in ("users", "keys", "models"):
        check_bars(page, section)


# ------------------------------------------------------------------------------------ drill-downs
@pytest.mark.parametrize(("section", "kind"), [("teams", "team"), ("users", "user"), ("models", "model")])
def test_clicking_an_overview_row_opens_its_page(page: Page, site: Site, section: str, kind: str) -> None:
    visit(page, site, "/")
    rows = page.locator(f'section#{section} tr[data-kind="{kind}"]')
    if kind == "model":  # the first model whose id has a "/", which the link must percent-encode
        rows = rows.filter(has=page.locator('a[href*="%2F"]'))
    row = rows.first
    ident = row.get_attribute("data-id") or ""
    assert ident, f"no {kind} row with a link in #{section}"
    overview_spend = value(page, f'section#{section} tr[data-id="{ident}"] td.spend span')
    link = row.locator("a.entity")
    name = link.locator("span.name").inner_text()
    assert link.get_attribute("href") == f"/{kind}/{quote(ident, safe='')}"
    click(page, link)
    assert path_of(page) == f"/{kind}/{quote(ident, safe='')}"
    if kind == "model":
        assert "/" in ident and "%2F" in page.url
    got_kind, got_id, text = heading(page)
    assert (got_kind, got_id) == (kind, ident)
    assert name in text and page.title() == f"{kind.title()} {name} · Sentinel"
    check_daily_chart(page, 30)
    spent = value(page, "#total-spend")
    assert spent == pytest.approx(site.spend(kind, ident), abs=1e-5)
    assert spent == pytest.approx(overview_spend, abs=1e-5)


def test_a_key_opens_from_its_users_page_and_links_back_to_its_owner_and_team(page: Page, site: Site) -> None:
    visit(page, site, "/")
    click(page, page.locator('section#users tr[data-kind="user"] a.entity').first)
    _kind, user, _text = heading(page)
    key_row = page.locator('section#keys tr[data-kind="key"]').first
    key = key_row.get_attribute("data-id") or ""
    owned = {str(k) for (k,) in site.sql("SELECT token FROM keys WHERE user_id = ?", user)}
    assert key in owned
    click(page, key_row.locator("a.entity"))
    assert path_of(page) == f"/key/{key}"
    assert heading(page)[:2] == ("key", key)
    check_daily_chart(page, 30)
    assert value(page, "#total-spend") == pytest.approx(site.spend("key", key), abs=1e-5)
    (team,) = site.sql("SELECT team_id FROM keys WHERE token = ?", key)[0]
    # The key's facts name its owner and team, each a link to its page.
    click(page, page.locator(f'#facts a.entity[href="/user/{quote(user, safe="")}"]'))
    assert heading(page)[:2] == ("user", user)
    page.go_back()
    assert heading(page)[:2] == ("key", key)
    if team is not None:
        click(page, page.locator(f'#facts a.entity[href="/team/{quote(str(team), safe="")}"]'))
        assert heading(page)[:2] == ("team", team)
        check_daily_chart(page, 30)


# ------------------------------------------------------------------------------ anomalies, budgets
def test_the_anomaly_list_shows_the_stored_alerts_and_links_to_their_entities(page: Page, site: Site) -> None:
    stored: dict[str, str] = dict(
        site.sql("SELECT fingerprint, status FROM alerts WHERE json_extract(labels, '$.kind') = 'anomaly'")
    )
    assert stored, "the demo's alerting cycle raised no anomaly alert"
    visit(page, site, "/")
    firing = sum(1 for s in stored.values() if s == "firing")
    assert value(page, "#firing") == firing
    click(page, "#nav >> text=Anomalies")
    assert path_of(page) == "/anomalies"
    rows = page.locator("tr[data-fingerprint]")
    listed = {
        r.get_attribute("data-fingerprint"): (r.get_attribute("class") or "").split("state-")[-1] for r in rows.all()
    }
    assert listed == stored
    row = rows.first
    fingerprint = row.get_attribute("data-fingerprint")
    kind, ident = row.get_attribute("data-entity-type"), row.get_attribute("data-entity-id")
    click(page, row.locator("a.entity"))
    assert heading(page)[:2] == (kind, ident)
    check_daily_chart(page, 30)
    expect(page.locator(f'section#anomalies tr[data-fingerprint="{fingerprint}"]')).to_have_count(1)
    # The overview's count of firing alerts opens the firing ones.
    visit(page, site, "/")
    click(page, "#firing")
    assert path_of(page) == "/anomalies?state=firing"
    expect(page.locator('#state a[aria-current="true"]')).to_have_attribute("data-state", "firing")
    expect(page.locator("tr[data-fingerprint]")).to_have_count(firing)


def test_the_budget_list_and_its_state_filters(page: Page, site: Site) -> None:
    stored: dict[str, str] = dict(site.sql("SELECT budget_id, state FROM budget_statuses"))
    assert stored, "the demo's alerting cycle kept no budget evaluation"
    visit(page, site, "/")
    click(page, "#nav >> text=Budgets")
    assert path_of(page) == "/budgets"
    rows = page.locator("tr[data-budget-id]")
    assert rows.count() == min(len(stored), 250)
    for state in STATES:
        n = sum(1 for s in stored.values() if s == state)
        link = page.locator(f'#state a.state[data-state="{state}"]')
        assert link.inner_text().endswith(f"({n})")
        click(page, link)
        assert path_of(page) == f"/budgets?state={state}"
        expect(page.locator('#state a[aria-current="true"]')).to_have_attribute("data-state", state)
        if n:
            expect(rows).to_have_count(min(n, 250))
            classes = set(rows.evaluate_all("els => els.map(e => e.className)"))
            assert classes == {f"budget state-{state}"}
            ids = {r.get_attribute("data-budget-id") for r in rows.all()}
            assert ids <= {b for b, s in stored.items() if s == state}
        else:
            expect(rows).to_have_count(0)
            expect(page.locator("#no-budgets")).to_be_visible()
    click(page, '#state a.state[data-state="all"]')
    assert path_of(page) == "/budgets"
    expect(rows).to_have_count(min(len(stored), 250))


# ----------------------------------------------------------------------------------------- periods
def test_the_period_links_change_the_period_and_drill_downs_keep_it(page: Page, site: Site) -> None:
    visit(page, site, "/")
    for days in (90, 400):
        click(page, f'#period a.period[data-days="{days}"]')
        assert path_of(page) == f"/?days={days}"
        assert page.title() == f"Spend, last {days} days · Sentinel"
        expect(page.locator("h1#title")).to_have_text(f"Spend, last {days} days")
        expect(page.locator('#period a[aria-current="true"]')).to_have_attribute("data-days", str(days))
        first, last = site.period(days)
        expect(page.locator("#totals dt").first).to_have_text(f"Spend, {first} to {last}")
        assert value(page, "#total-spend") == pytest.approx(site.spend("total", "", days), abs=1e-5)
        check_daily_chart(page, days)
    # From the 400-day overview, a team's page opens for 400 days too; its own 30-day link drops it.
    row = page.locator('section#teams tr[data-kind="team"]').first
    team = row.get_attribute("data-id") or ""
    click(page, row.locator("a.entity"))
    assert path_of(page) == f"/team/{quote(team, safe='')}?days=400"
    expect(page.locator('#period a[aria-current="true"]')).to_have_attribute("data-days", "400")
    check_daily_chart(page, 400)
    assert value(page, "#total-spend") == pytest.approx(site.spend("team", team, 400), abs=1e-5)
    click(page, '#period a.period[data-days="30"]')
    assert path_of(page) == f"/team/{quote(team, safe='')}"
    check_daily_chart(page, 30)
    assert value(page, "#total-spend") == pytest.approx(site.spend("team", team, 30), abs=1e-5)


# ------------------------------------------------------------------------------------------ safety
def test_the_content_security_policy_holds_in_the_browser(page: Page, site: Site, watch: Watch) -> None:
    """Markup slipped into a page can neither run a script nor load anything: the browser refuses
    both (and says so on the console) before any request is made."""
    visit(page, site, "/")
    outside = "http://203.0.113.7/pixel.png"
    with page.expect_event("requestfailed", lambda r: r.url == outside) as failed:
        page.evaluate(
            """(url) => {
                window.__violations = [];
                document.addEventListener(
                    "securitypolicyviolation", e => window.__violations.push(e.violatedDirective)
                );
                const img = document.createElement("img");
                img.src = url;
                document.body.append(img);
                const script = document.createElement("script");
                script.textContent = "window.__ran = true";
                document.body.append(script);
            }""",
            outside,
        )
    assert "csp" in (failed.value.failure or "").lower(), failed.value.failure
    page.wait_for_function("window.__violations.length >= 2")
    violated = page.evaluate("window.__violations")
    assert any(v.startswith("img-src") for v in violated) and any(v.startswith("script-src") for v in violated)
    assert page.evaluate("window.__ran === undefined")
    # Chromium reports the refused image as a request that failed, as its DevTools do; it never
    # reached the network (the route, which sees every request that does, saw none).
    assert not watch.outside
    site.requests.remove(outside)
    assert len(watch.errors) == 2 and all("violates the following Content Security Policy" in e for e in watch.errors)
    watch.errors.clear()  # expected here: the refusals themselves


def test_no_request_leaves_the_server(page: Page, site: Site) -> None:
    """Every page kind, then every request the module's pages made (this test's and the ones
    before it): each to the server's own origin on 127.0.0.1."""
    visit(page, site, "/?days=90")
    for section in ("teams", "users", "models"):
        visit(page, site, page.locator(f"section#{section} a.entity").first.get_attribute("href") or "")
    key = page.locator("section#keys a.entity").first.get_attribute("href") or ""
    for path in (key, "/anomalies", "/anomalies?state=resolved", "/budgets", "/budgets?state=ok"):
        visit(page, site, path)
    assert len(site.requests) >= 10
    server = urlsplit(site.url)
    for url in site.requests:
        parts = urlsplit(url)
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", server.port), url


def test_no_page_scrolls_sideways_on_a_phone(page: Page, site: Site) -> None:
    """At a phone's 390 pixels the wide tables scroll inside their own box and a key's 64-character
    hash wraps: the page itself never scrolls sideways."""
    page.set_viewport_size({"width": 390, "height": 844})
    (team,) = site.sql("SELECT team_id FROM keys WHERE team_id IS NOT NULL LIMIT 1")[0]
    (key,) = site.sql("SELECT token FROM keys LIMIT 1")[0]
    (model,) = site.sql("SELECT entity_id FROM daily_facts WHERE grain = 'model' LIMIT 1")[0]
    for path in ("/", f"/team/{quote(str(team), safe='')}", f"/key/{key}", f"/model/{quote(str(model), safe='')}"):
        visit(page, site, path)  # check_page: scrollWidth <= clientWidth
    for path in ("/anomalies", "/budgets"):
        visit(page, site, path)
