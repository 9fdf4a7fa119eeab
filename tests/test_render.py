"""Rendering a notification: title, plain text, Slack blocks, HTML, and the alert JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sentinel.notify import render
from sentinel.notify.model import ALERT_SCHEMA_VERSION, Alert, Notification

NOW = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)


# Records shaped like sentinel.detect.engine.to_record and sentinel.budget.evaluate.to_alert.
def anomaly_record(
    entity_id: str = "team-search", observed: float = 1234.56, expected: float = 300.0
) -> dict[str, Any]:
    return {
        "kind": "anomaly",
        "entity_type": "team",
        "entity_id": entity_id,
        "date": "2026-03-04",
        "detected_at": NOW.isoformat(),
        "observed": observed,
        "expected": expected,
        "lower": 250.0,
        "upper": 350.0,
        "impact_usd": round(observed - expected, 6),
        "pct_change": round((observed - expected) / expected, 4),
        "direction": "up",
        "z": 8.213,
        "p_value": 1.2e-09,
        "method": "dense",
        "history_days": 56,
        "partial_day": True,
        "notes": ["a peak like this happened at this point of previous months"],
        "contributors": [
            {"type": "model", "id": "openai/gpt-4o", "observed": 900.0, "expected": 100.0, "delta_usd": 800.0},
            {"type": "user", "id": "alice@example.com", "observed": 400.0, "expected": 280.0, "delta_usd": 120.0},
        ],
        "price_volume": {
            "volume_effect_usd": 700.0,
            "price_effect_usd": 234.56,
            "usd_per_million_tokens": {"observed": 12.5, "expected": 10.0},
            "tokens": {"observed": 98_000_000.0, "expected": 30_000_000.0},
            "token_type_moved_most": "prompt_tokens",
            "token_types": {"prompt_tokens": {"observed": 9.0e7, "expected": 2.5e7}},
        },
    }


def budget_record() -> dict[str, Any]:
    return {
        "kind": "budget",
        "signal": "forecast",
        "entity_type": "team",
        "entity_id": "team-ads",
        "entity_name": "ads",
        "source": "prod",
        "date": "2026-03-04",
        "detected_at": NOW.isoformat(),
        "budget": {
            "id": "proxy/prod/team/team-ads",
            "origin": "proxy",
            "rule": None,
            "limit_usd": 1000.0,
            "soft_limit_usd": None,
            "period": "30d",
            "timezone": "UTC",
            "window_start": "2026-02-20T00:00:00+00:00",
            "window_end": "2026-03-22T00:00:00+00:00",
            "spend_basis": "proxy counter",
        },
        "spent_usd": 850.0,
        "spent_as_of": NOW.isoformat(),
        "pct_used": 85.0,
        "threshold_pct": None,
        "also_crossed_pct": [],
        "state": "at_risk",
        "forecast": {
            "at_window_end_usd": 1480.25,
            "lower_usd": 1300.0,
            "upper_usd": 1650.0,
            "interval": 0.9,
            "p_breach": 0.97,
            "breach_eta": "2026-03-08T06:00:00+00:00",
            "breach_eta_earliest": "2026-03-07T12:00:00+00:00",
            "over_usd": 480.25,
            "method": "daily-rate",
            "history_days": 28,
        },
        "drivers": [
            {"type": "user", "id": "bob@example.com", "spend_usd": 600.0, "share": 0.7059},
            {"type": "model", "id": "anthropic/claude-sonnet", "spend_usd": 250.0, "share": 0.2941},
        ],
        "severity": "warning",
        "labels": {},
        "notes": [],
        "over_usd": 480.25,
    }


def anomaly_alert(n: int = 0, *, entity_id: str = "team-search", summary: str | None = None, **kw: Any) -> Alert:
    record = anomaly_record(entity_id)
    return Alert(
        fingerprint=f"fp-anomaly-{n}",
        status=kw.pop("status", "firing"),
        rule="team-spend",
        severity=kw.pop("severity", "critical"),
        summary=summary or f"team {entity_id} spent $1,234.56 on 2026-03-04, expected $300.00",
        labels={"kind": "anomaly", "rule": "team-spend", "entity_type": "team", "entity_id": entity_id},
        starts_at=kw.pop("starts_at", NOW - timedelta(hours=2)),
        ends_at=kw.pop("ends_at", None),
        record=record,
    )


def budget_alert() -> Alert:
    return Alert(
        fingerprint="fp-budget",
        status="firing",
        rule="budget-forecast",
        severity="warning",
        summary="team ads has spent $850.00 of $1,000.00 (85 %): forecast to reach its 30d budget",
        labels={"kind": "budget", "rule": "budget-forecast", "entity_type": "team", "entity_id": "team-ads"},
        starts_at=NOW - timedelta(minutes=5),
        record=budget_record(),
    )


def notification(*alerts: Alert, test: bool = False, receiver: str = "ops") -> Notification:
    return Notification(
        receiver=receiver,
        group_key='rule="team-spend"',
        group_labels={"rule": "team-spend"},
        alerts=alerts or (anomaly_alert(),),
        created_at=NOW,
        test=test,
    )


def _section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def test_forty_alerts_fit_slack_limits() -> None:
    alerts = [anomaly_alert(i, entity_id=f"team-{i:02d}") for i in range(35)]
    alerts += [budget_alert()] * 2
    alerts += [anomaly_alert(100 + i, status="resolved", ends_at=NOW) for i in range(3)]
    n = notification(*alerts)
    blocks = render.slack_blocks(n)
    assert len(blocks) <= render.SLACK_MAX_BLOCKS
    assert blocks[0]["type"] == "header" and len(blocks[0]["text"]["text"]) <= 150
    assert all(len(t) <= 3000 for t in _section_texts(blocks))
    for b in blocks:
        for element in b.get("elements", []):
            assert len(element["text"]) <= 3000
    # Ten alerts in full, the other 30 summed up in one line each.
    sections = _section_texts(blocks)
    assert len(sections) == render.MAX_SLACK_ALERTS + 1
    assert sections[-1].startswith("*and 30 more (27 firing, 3 resolved):*")
    assert json.loads(json.dumps(blocks)) == blocks  # plain JSON, ready to post
    assert len(render.fallback_text(n)) <= render.FALLBACK_CHARS
    assert "[37 firing, 3 resolved]" in render.title(n)


def test_long_contents_are_clipped_to_slack_limits() -> None:
    alert = anomaly_alert(summary="x" * 5000)
    record = dict(alert.record)
    record["notes"] = ["n" * 2000, "m" * 2000]
    n = notification(Alert(**{**alert.__dict__, "record": record}))
    blocks = render.slack_blocks(n)
    assert len(blocks[0]["text"]["text"]) == 150  # the header: the title clipped
    (section,) = _section_texts(blocks)
    assert len(section) == 3000 and section.endswith("…")


def test_critical_first_then_warning_then_resolved() -> None:
    resolved = anomaly_alert(1, status="resolved", ends_at=NOW, summary="the resolved one")
    warning = anomaly_alert(2, severity="warning", summary="the warning one")
    critical = anomaly_alert(3, summary="the critical one")
    sections = _section_texts(render.slack_blocks(notification(resolved, warning, critical)))
    order = [next(s for s in sections if name in s) for name in ("critical one", "warning one", "resolved one")]
    assert [sections.index(s) for s in order] == [0, 1, 2]


def test_text_has_expected_and_actual_and_contributors() -> None:
    out = render.text(notification(anomaly_alert()))
    assert "Observed  $1,234.56 on 2026-03-04 (day not over yet)" in out
    assert "Expected  $300.00 (normal $250.00 to $350.00)" in out
    assert "Impact    +$934.56 (+312 %)" in out
    assert "model openai/gpt-4o: +$800.00 ($100.00 → $900.00)" in out
    assert "user alice@example.com: +$120.00" in out
    assert "volume +$700.00, price +$234.56" in out
    assert "dense, 56 days of history" in out
    assert "Note: a peak like this happened" in out
    assert max(len(line) for line in out.splitlines()) < 120  # readable in a terminal, no wide tables


def test_budget_card_has_spend_limit_forecast_and_drivers() -> None:
    out = render.text(notification(budget_alert()))
    assert "Spent             $850.00 of $1,000.00 (85 %)" in out
    assert "30d budget, resets 2026-03-22 00:00 UTC" in out
    assert "Forecast          $1,480.25 by the reset ($1,300.00 to $1,650.00)" in out
    assert "Chance to exceed  97%" in out
    assert "Limit reached     2026-03-08 06:00 UTC (earliest 2026-03-07 12:00 UTC)" in out
    assert "Over by           $480.25" in out
    assert "user bob@example.com: $600.00 (71%)" in out
    blocks = render.slack_blocks(notification(budget_alert()))
    assert "*Spent:* $850.00 of $1,000.00 (85 %)" in _section_texts(blocks)[0]


def test_resolved_alert_shows_duration_and_final_impact() -> None:
    alert = anomaly_alert(status="resolved", starts_at=NOW - timedelta(hours=3, minutes=20), ends_at=NOW)
    n = notification(alert)
    out = render.text(n)
    assert "Resolved      2026-03-04 15:30 UTC, after 3h 20m" in out
    assert "Final impact  +$934.56" in out
    assert render.title(n).startswith("[RESOLVED] ")
    assert ":white_check_mark:" in _section_texts(render.slack_blocks(n))[0]


def test_html_escapes_entity_names() -> None:
    evil = "<script>alert(1)</script>"
    alert = anomaly_alert(entity_id=evil, summary=f"team {evil} spent $1,234.56")
    record = dict(alert.record)
    record["contributors"] = [{"type": "user", "id": evil, "observed": 9.0, "expected": 1.0, "delta_usd": 8.0}]
    page = render.html(notification(Alert(**{**alert.__dict__, "record": record})))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "$1,234.56" in page and "$300.00" in page and "+$8.00" in page


def test_slack_text_escapes_control_sequences() -> None:
    alert = anomaly_alert(entity_id="<!channel>", summary="team <!channel> & co spent more")
    n = notification(alert)
    blocks = json.dumps(render.slack_blocks(n))
    assert "<!channel>" not in blocks and "&lt;!channel&gt; &amp; co" in blocks
    assert "<!channel>" not in render.fallback_text(n)


def test_test_notifications_say_so() -> None:
    n = notification(anomaly_alert(), test=True)
    assert render.title(n).startswith("[TEST] [FIRING]")
    assert "nothing is wrong" in render.text(n)
    assert "nothing is wrong" in render.html(n)
    assert any("nothing is wrong" in json.dumps(b) for b in render.slack_blocks(n))


def test_unknown_kinds_render_their_numbers() -> None:
    alert = Alert(
        fingerprint="fp-t",
        status="firing",
        rule="daily-cap",
        severity="info",
        summary="model gpt-4o spent $80.00 today, above $50.00",
        labels={"kind": "threshold"},
        starts_at=NOW,
        record={"kind": "threshold", "value_usd": 80.0, "threshold_usd": 50.0, "window": "1d"},
    )
    out = render.text(notification(alert))
    assert "Value      $80.00" in out and "Threshold  $50.00" in out and "Window     1d" in out


def test_to_json_schema() -> None:
    offset = timezone(timedelta(hours=2))
    firing = anomaly_alert(1, starts_at=datetime(2026, 3, 4, 12, 0, tzinfo=offset))
    resolved = anomaly_alert(2, status="resolved", starts_at=NOW - timedelta(hours=1), ends_at=NOW)
    doc = render.to_json(notification(firing, resolved))
    assert json.loads(json.dumps(doc)) == doc
    assert set(doc) == {"schema_version", "receiver", "group_key", "group_labels", "status", "test", "alerts"}
    assert doc["schema_version"] == ALERT_SCHEMA_VERSION
    assert (doc["receiver"], doc["status"], doc["test"]) == ("ops", "firing", False)
    assert doc["group_labels"] == {"rule": "team-spend"}
    alerts: Any = doc["alerts"]
    first, second = alerts
    assert set(first) == {
        "fingerprint",
        "status",
        "rule",
        "severity",
        "summary",
        "labels",
        "starts_at",
        "ends_at",
        "record",
    }
    assert first["starts_at"] == "2026-03-04T10:00:00+00:00" and first["ends_at"] is None
    assert second["ends_at"] == "2026-03-04T15:30:00+00:00" and second["status"] == "resolved"
    assert first["record"]["contributors"][0]["id"] == "openai/gpt-4o"
    only_resolved = render.to_json(notification(resolved))
    assert only_resolved["status"] == "resolved"


def test_jsonl_lines_carry_one_alert_each() -> None:
    lines = list(render.each_alert_json(notification(anomaly_alert(1), anomaly_alert(2, status="resolved"))))
    assert [line["alert"]["fingerprint"] for line in lines] == ["fp-anomaly-1", "fp-anomaly-2"]  # type: ignore[index]
    assert [line["status"] for line in lines] == ["firing", "resolved"]
    assert all("alerts" not in line and line["schema_version"] == ALERT_SCHEMA_VERSION for line in lines)


def test_formatting_helpers() -> None:
    assert render.money(1234.5) == "$1,234.50"
    assert render.money(-3.1) == "-$3.10"
    assert render.money(0.0042) == "$0.0042"
    assert render.money(None) == "n/a"
    assert render.signed_money(0.5) == "+$0.50"
    assert render.duration(timedelta(days=3, hours=4, minutes=5)) == "3d 4h"
    assert render.duration(timedelta(seconds=45)) == "45s"
    assert render.when("2026-03-04T17:00:00+02:00") == "2026-03-04 15:00 UTC"
