"""Why an anomaly happened: the contributors that moved, price versus volume, and token types.

Contributors come only from grains the proxy really serves, joined through key ownership: a
user's models are the models of the keys the user owns (there is no user x model grain).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

import numpy as np

from sentinel.detect.series import SeriesMatrix

BASE_DAYS = 28


@dataclass(frozen=True)
class ExplainContext:
    spend: dict[str, SeriesMatrix]  # kind -> spend matrix: user, team, model, provider, key
    model_key: SeriesMatrix  # entities "model\x1fkey"
    tokens: dict[str, dict[str, SeriesMatrix]]  # kind -> token type -> matrix
    key_owner: dict[str, str]
    key_team: dict[str, str]
    user_teams: dict[str, tuple[str, ...]]


def _baseline(values: np.ndarray, idx: int) -> float:
    lo = max(0, idx - BASE_DAYS)
    return float(np.median(values[lo:idx])) if idx > lo else 0.0


def _row(m: SeriesMatrix, entity: str) -> np.ndarray | None:
    try:
        position = m.entities.index(entity)
    except ValueError:
        return None
    row: np.ndarray = m.values[position]
    return row


def _mover(kind: str, ident: str, series: np.ndarray, idx: int) -> dict[str, object]:
    base = _baseline(series, idx)
    obs = float(series[idx])
    return {
        "type": kind,
        "id": ident,
        "observed": round(obs, 6),
        "expected": round(base, 6),
        "delta_usd": round(obs - base, 6),
    }


def provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else ""


def child_series(ctx: ExplainContext, kind: str, entity: str) -> list[tuple[str, str, np.ndarray]]:
    """(type, id, daily spend) of the series one level below an entity: a team's users, keys and
    models; a user's keys and models; a key's models; a model's keys and users; a provider's models,
    keys and users; the whole proxy's providers and teams."""
    if kind == "total":
        return [
            (child, e, m.values[i])
            for child in ("provider", "team")
            if (m := ctx.spend.get(child)) is not None
            for i, e in enumerate(m.entities)
        ]
    mk = ctx.model_key
    pairs = [(e.split("\x1f", 1)[0], e.split("\x1f", 1)[1], i) for i, e in enumerate(mk.entities)]
    if kind == "user":
        keys = {k for k, u in ctx.key_owner.items() if u == entity}
    elif kind == "team":
        keys = {k for k, t in ctx.key_team.items() if t == entity}
    elif kind == "key":
        keys = {entity}
    else:
        keys = set()
    out: list[tuple[str, str, np.ndarray]] = []
    by_model: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(mk.days))
    by_key: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(mk.days))
    for model, key, i in pairs:
        if kind in ("user", "team", "key") and key in keys:
            by_model[model] += mk.values[i]
        elif kind == "model" and model == entity:
            by_key[key] += mk.values[i]
        elif kind == "provider" and provider_of(model) == entity:
            by_model[model] += mk.values[i]
            by_key[key] += mk.values[i]
    out.extend(("model", model, series) for model, series in by_model.items())
    if kind in ("user", "team"):
        key_matrix = ctx.spend.get("key")
        if key_matrix is not None:
            for k in sorted(keys):
                row = _row(key_matrix, k)
                if row is not None:
                    out.append(("key", k, row))
    out.extend(("key", key, series) for key, series in by_key.items())
    if kind in ("team", "model", "provider"):
        users = ctx.spend.get("user")
        if users is not None:
            series_by_user: dict[str, np.ndarray | None]
            if kind == "team":
                members = {u for u, teams in ctx.user_teams.items() if entity in teams}
                members |= {ctx.key_owner[k] for k in keys if k in ctx.key_owner}
                series_by_user = {u: _row(users, u) for u in sorted(members)}
            else:
                summed: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(mk.days))
                for key, series in by_key.items():
                    owner = ctx.key_owner.get(key)
                    if owner:
                        summed[owner] = summed[owner] + series
                series_by_user = dict(summed)
            out.extend(("user", u, row) for u, row in series_by_user.items() if row is not None)
    return out


def contributors(
    ctx: ExplainContext, kind: str, entity: str, day: date, direction: str, top: int = 5
) -> list[dict[str, object]]:
    """The child series that moved most in the anomaly's direction, by dollars."""
    idx = ctx.model_key.index_of(day)
    candidates = [_mover(child, ident, series, idx) for child, ident, series in child_series(ctx, kind, entity)]
    sign = 1.0 if direction == "up" else -1.0
    # Only movers that explain a visible part of the change (a cent of a dollar anomaly says nothing).
    largest = max((sign * float(c["delta_usd"]) for c in candidates), default=0.0)  # type: ignore[arg-type]
    candidates = [
        c
        for c in candidates
        if sign * float(c["delta_usd"]) > max(0.01, 0.02 * largest)  # type: ignore[arg-type]
    ]
    candidates.sort(key=lambda c: -sign * float(c["delta_usd"]))  # type: ignore[arg-type]
    return candidates[:top]


def price_volume(ctx: ExplainContext, kind: str, entity: str, day: date) -> dict[str, object] | None:
    """Split the change in spend into volume (tokens) and price (spend per token) effects."""
    spend_m = ctx.spend.get(kind)
    tokens = ctx.tokens.get(kind)
    if spend_m is None or not tokens:
        return None
    idx = spend_m.index_of(day)
    spend = _row(spend_m, entity)
    maybe_parts = {name: _row(m, entity) for name, m in tokens.items()}
    parts = {name: p for name, p in maybe_parts.items() if p is not None}
    if spend is None or len(parts) != len(maybe_parts):
        return None
    total = np.sum(np.stack(list(parts.values())), axis=0)
    tok_now, tok_base = float(total[idx]), _baseline(total, idx)
    spend_now, spend_base = float(spend[idx]), _baseline(spend, idx)
    if tok_base <= 0 or tok_now <= 0:
        return None
    price_base, price_now = spend_base / tok_base, spend_now / tok_now
    movers = {name: {"observed": float(p[idx]), "expected": _baseline(p, idx)} for name, p in parts.items()}
    moved = max(movers, key=lambda n: abs(movers[n]["observed"] - movers[n]["expected"]))
    return {
        "volume_effect_usd": round((tok_now - tok_base) * price_base, 6),
        "price_effect_usd": round(tok_now * (price_now - price_base), 6),
        "usd_per_million_tokens": {"observed": round(price_now * 1e6, 4), "expected": round(price_base * 1e6, 4)},
        "tokens": {"observed": tok_now, "expected": tok_base},
        "token_type_moved_most": moved,
        "token_types": {n: {k: round(v, 1) for k, v in d.items()} for n, d in movers.items()},
    }
