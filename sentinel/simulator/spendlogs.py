"""`/spend/logs/v2`: synthetic per-request rows for drill-down (API.md §4.2).

Not a full request log: each daily row contributes a few sample requests (about one per 25 requests, at most
40), each sized like that row's average request and timed along the intraday profile (outside logging outages).
More traffic on a day therefore shows as more sample rows. The real route never serves prompts and responses;
`Faults.store_prompts` makes the simulator serve them anyway (`messages`, `response`, `proxy_server_request`,
each carrying `PROMPT_CANARY`), the worst case a test can check Sentinel against.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sentinel.simulator.api import Params, detail_error
from sentinel.simulator.catalog import MODEL_INDEX, MODELS, intraday_time
from sentinel.simulator.modelmap import MODEL_MAP_INFORMATION
from sentinel.simulator.rows import COMPLETION, FAILED, PROMPT, REQUESTS, SPEND, SUCCESSFUL, format_uuid, mix64
from sentinel.simulator.traffic import Snapshot, Span, TrafficModel

Json = dict[str, Any]
# In every prompt and response served with store_prompts on: finding it anywhere Sentinel writes is a leak.
PROMPT_CANARY = "SENTINEL-PROMPT-CANARY-7f3a"
TOTAL_CAP = 10_000
_LONG = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_SHORT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Clients calling the proxy; LiteLLM tags each request with the User-Agent's product and its full value.
USER_AGENTS = ("OpenAI/Python 1.54.4", "python-requests/2.32.3", "AsyncOpenAI/Python 1.54.4", "OpenAI/JS 4.73.0")
_SORTABLE = ("startTime", "endTime", "spend", "total_tokens", "request_duration_ms", "model")


def _parse_bound(raw: str, end: bool) -> datetime:
    if _SHORT.match(raw):
        day = date.fromisoformat(raw)
        moment = datetime.combine(day, time(), UTC)
        return moment + timedelta(days=1, microseconds=-1) if end else moment
    if _LONG.match(raw):
        return datetime.fromisoformat(raw).replace(tzinfo=UTC)
    raise ValueError(raw)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def _absolute(moment: datetime) -> float:
    """Seconds on the same scale as samples: date ordinal * 86400 + seconds into the day."""
    midnight = datetime.combine(moment.date(), time(), UTC)
    return moment.date().toordinal() * 86400.0 + (moment - midnight).total_seconds()


def _fraction(x: NDArray[np.uint64]) -> NDArray[np.float64]:
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _spread(fraction: NDArray[np.float64], spans: tuple[Span, ...]) -> NDArray[np.float64]:
    """Map uniform fractions onto the traffic shares the proxy logged (the spans laid end to end)."""
    lows = np.array([a for a, _ in spans])
    edges = np.concatenate(([0.0], np.cumsum([b - a for a, b in spans])))
    reached = fraction * edges[-1]
    span = np.clip(np.searchsorted(edges, reached, side="right") - 1, 0, len(spans) - 1)
    return np.asarray(lows[span] + (reached - edges[span]), dtype=np.float64)


class SpendLogs:
    def __init__(self, model: TrafficModel) -> None:
        self.model = model
        self.dims = model.dims
        self._model_ids = [hashlib.sha256(m.model.encode()).hexdigest() for m in MODELS]
        self._team_alias = {t.team_id: t.team_alias for t in model.teams}
        self._key_index = {t: i for i, t in enumerate(self.dims.key_tokens)}
        self._prices = model.model_prices()
        unpriced = {MODEL_INDEX[name] for name in model.config.unpriced_models}
        # a model missing from the price map has no entry to log (shape assumed, not captured)
        self._map_info = [
            {"model_map_key": m.model, "model_map_value": None} if i in unpriced else MODEL_MAP_INFORMATION[i]
            for i, m in enumerate(MODELS)
        ]

    def query(self, p: Params, snap: Snapshot, owner: str | None = None, prompts: bool = False) -> Json:
        """One page of rows; `owner`: only that user's rows (a non-admin caller), `prompts`: with request text."""
        start_raw, end_raw = p.text("start_date"), p.text("end_date")
        if start_raw is None or end_raw is None:
            raise detail_error(400, "Please provide start_date and end_date")
        try:
            start, end = _parse_bound(start_raw, False), _parse_bound(end_raw, True)
        except ValueError:
            raise detail_error(400, "Invalid date format. Use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS") from None
        page = p.integer("page", 1, ge=1)
        size = p.integer("page_size", 50, ge=1, le=1000)
        sort_by = p.text("sort_by") or "startTime"
        if sort_by not in _SORTABLE:
            raise detail_error(400, f"Invalid sort_by. Must be one of {list(_SORTABLE)}")
        descending = (p.text("sort_order") or "desc").lower() != "asc"
        samples = self._samples(p, snap, start, end, owner)
        order = self._order(samples, sort_by, descending)
        total = int(order.shape[0])
        chosen = order[(page - 1) * size : page * size]
        data = [self._row(samples, int(i), prompts) for i in chosen]
        return {
            "data": data,
            "total": min(total, TOTAL_CAP),
            "page": page,
            "page_size": size,
            "total_pages": math.ceil(min(total, TOTAL_CAP) / size),
            "total_is_capped": total > TOTAL_CAP,
        }

    def _user_mask(self, user_id: str) -> NDArray[np.bool_]:
        d = self.dims
        return np.isin(d.slot_user, [i for i, u in enumerate(d.user_entities[:-1]) if u == user_id])

    def _slot_mask(self, p: Params, owner: str | None) -> NDArray[np.bool_]:
        d = self.dims
        mask = np.ones(d.slot_key.shape[0], dtype=np.bool_) if owner is None else self._user_mask(owner)
        if (api_key := p.text("api_key")) is not None:
            mask &= d.slot_key == self._key_index.get(api_key, -1)
        if (user_id := p.text("user_id")) is not None:
            mask &= self._user_mask(user_id)
        if (team_id := p.text("team_id")) is not None:
            mask &= np.isin(d.slot_team, [i for i, t in enumerate(d.team_ids) if t == team_id])
        if (model := p.text("model")) is not None:
            mask &= np.isin(d.slot_model, [i for i, m in enumerate(d.models) if m == model])
        if (group := p.text("model_group")) is not None:
            mask &= np.isin(d.slot_group, [i for i, g in enumerate(d.groups) if g == group])
        return mask

    def _samples(
        self, p: Params, snap: Snapshot, start: datetime, end: datetime, owner: str | None
    ) -> dict[str, NDArray[Any]]:
        mask = self._slot_mask(p, owner)
        parts: list[dict[str, NDArray[Any]]] = []
        for block in snap.between(start.date(), end.date()):
            rows = np.flatnonzero(mask[block.slot])
            spans = snap.logged_spans(block.day)  # today: only the part of the day that has happened
            if not rows.shape[0] or not spans:
                continue
            n = block.ints[rows, REQUESTS]
            count = np.minimum(1 + (n - 1) // 25, 40)
            row = np.repeat(rows, count)
            j = np.arange(row.shape[0]) - np.repeat(np.cumsum(count) - count, count)  # sample index within row
            seed = mix64(block.id_hi[row] ^ (j.astype(np.uint64) * np.uint64(0x9E3779B1)))
            seconds = intraday_time(_spread(_fraction(seed), spans))
            successful = np.maximum(block.ints[row, SUCCESSFUL], 1)
            requests = np.maximum(block.ints[row, REQUESTS], 1)  # a revision may round a row down to 0
            parts.append(
                {
                    "day": np.full(row.shape[0], block.day.toordinal()),
                    "seconds": seconds,
                    "seed": seed,
                    "slot": block.slot[row],
                    "failed": _fraction(mix64(seed)) < block.ints[row, FAILED] / requests,
                    # a sample is the row's average successful request
                    "prompt": block.ints[row, PROMPT] // successful,
                    "completion": block.ints[row, COMPLETION] // successful,
                    "spend": block.floats[row, SPEND] / successful,
                }
            )
        if not parts:
            return {}
        s = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        for name in ("prompt", "completion", "spend"):
            s[name] = np.where(s["failed"], 0, s[name])
        models = self.dims.slot_model[s["slot"]]
        jitter = np.exp(_fraction(mix64(s["seed"] + np.uint64(7))) - 0.5)
        s["duration"] = np.rint(self._prices["latency_ms"][models] * jitter)
        moment = s["day"] * 86400.0 + s["seconds"]
        keep = (moment >= _absolute(start)) & (moment <= _absolute(end))
        if (status := p.text("status_filter")) is not None:
            keep &= s["failed"] == (status == "failure")
        if (min_spend := p.number("min_spend")) is not None:
            keep &= s["spend"] >= min_spend
        if (max_spend := p.number("max_spend")) is not None:
            keep &= s["spend"] <= max_spend
        return {name: values[keep] for name, values in s.items()}

    def _order(self, s: dict[str, NDArray[Any]], sort_by: str, descending: bool) -> NDArray[np.intp]:
        if not s:
            return np.zeros(0, dtype=np.intp)
        moment = s["day"] * 86400.0 + s["seconds"]
        if sort_by in ("startTime", "endTime"):
            key: NDArray[Any] = moment + (s["duration"] / 1000.0 if sort_by == "endTime" else 0.0)
        elif sort_by == "total_tokens":
            key = s["prompt"] + s["completion"]
        elif sort_by == "request_duration_ms":
            key = s["duration"]
        elif sort_by == "model":
            key = self.dims.slot_model[s["slot"]]
        else:
            key = s["spend"]
        order = np.lexsort((s["seed"], key))  # seed: a stable tiebreaker
        return order[::-1] if descending else order

    def _row(self, s: dict[str, NDArray[Any]], i: int, prompts: bool) -> Json:
        d = self.dims
        slot = int(s["slot"][i])
        model = MODELS[int(d.slot_model[slot])]
        key_index = int(d.slot_key[slot])
        token, meta = d.key_tokens[key_index], d.key_meta[key_index]
        seed = int(s["seed"][i])
        ids = mix64(np.array([seed, seed ^ 0x5A5A, seed ^ 0xA5A5, seed ^ 0x3C3C], dtype=np.uint64)).tolist()
        request_id = format_uuid(ids[0], ids[1])
        call_id = format_uuid(ids[1], ids[2])
        started = datetime.fromordinal(int(s["day"][i])).replace(tzinfo=UTC) + timedelta(seconds=float(s["seconds"][i]))
        duration = int(s["duration"][i])
        ended = started + timedelta(milliseconds=duration)
        prompt, completion = int(s["prompt"][i]), int(s["completion"][i])
        spend = float(s["spend"][i])
        failed = bool(s["failed"][i])
        status = "failure" if failed else "success"
        user = meta["user_id"] or ""
        ip = f"10.{20 + key_index % 200}.{(key_index // 200) % 250}.{7 + slot % 240}"
        m_index = int(d.slot_model[slot])
        agent = USER_AGENTS[key_index % len(USER_AGENTS)]  # the client a key's owner calls from
        output_cost = completion * float(self._prices["output_cost"][m_index])
        usage = {
            "total_tokens": prompt + completion,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "prompt_tokens_details": None,
            "completion_tokens_details": None,
        }
        row: Json = {
            "request_id": ("chatcmpl-" if model.endpoint == "/chat/completions" else "") + request_id,
            "call_type": "acompletion" if model.endpoint == "/chat/completions" else "aembedding",
            "api_key": token,
            "spend": spend,
            "total_tokens": prompt + completion,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "startTime": _stamp(started),
            "endTime": _stamp(ended),
            "completionStartTime": _stamp(ended),
            "model": model.model,
            "model_id": self._model_ids[m_index],
            "model_group": model.model_group,
            "custom_llm_provider": model.provider,
            "api_base": "",
            "user": user,
            "metadata": {  # LiteLLM stores it as JSONB: keys by length, then bytes
                "status": status,
                "user_agent": agent,
                "max_retries": 2,
                "batch_models": None,
                "usage_object": usage,
                "user_api_key": token,
                "actor_agent_id": None,
                "cost_breakdown": {
                    "input_cost": max(spend - output_cost, 0.0),
                    "total_cost": spend,
                    "output_cost": output_cost,
                    "service_tier": None,
                    "original_cost": spend,
                    "data_residency": None,
                    "margin_percent": 0,
                    "discount_amount": 0,
                    "tool_usage_cost": 0,
                    "vertex_location": None,
                    "discount_percent": 0,
                    "margin_fixed_amount": 0,
                    "margin_total_amount": 0,
                },
                "azure_spillover": None,
                "litellm_call_id": call_id,
                "router_metadata": None,
                "target_agent_id": None,
                "billing_agent_id": None,
                "eval_information": None,
                "routing_decision": None,
                "attempted_retries": 0,
                "error_information": None,
                "applied_guardrails": [],
                "autorouter_savings": None,
                "user_api_key_alias": meta["key_alias"],
                "attempted_fallbacks": 0,
                "compression_savings": None,
                "spend_logs_metadata": None,
                "user_api_key_org_id": None,
                "agent_execution_mode": None,
                "billed_retry_attempt": False,
                "internal_call_origin": None,
                "original_model_group": model.model_group,
                "proxy_server_request": None,
                "requester_ip_address": ip,
                "user_api_key_team_id": meta["team_id"],
                "user_api_key_user_id": meta["user_id"],
                "batch_failed_requests": None,
                "guardrail_information": None,
                "litellm_roi_estimator": False,
                "model_map_information": self._map_info[m_index],
                "mcp_tool_call_metadata": None,
                "verified_human_user_id": None,
                "additional_usage_values": {"prompt_tokens_details": None, "completion_tokens_details": None},
                "cold_storage_object_key": None,
                "used_client_oauth_token": False,
                "user_api_key_project_id": None,
                "user_api_key_team_alias": self._team_alias.get(meta["team_id"] or ""),
                "litellm_overhead_time_ms": None,
                "batch_successful_requests": None,
                "user_api_key_project_alias": None,
                "autorouter_savings_estimate": None,
                "vector_store_request_metadata": None,
                "litellm_gateway_injected_cache": None,
                "autorouter_baseline_observation": None,
            },
            "cache_hit": "None",
            "cache_key": "Cache OFF",
            "request_tags": [f"User-Agent: {agent.split('/')[0]}", f"User-Agent: {agent}"],
            "team_id": meta["team_id"] or "",
            "organization_id": "",
            "end_user": "",
            "requester_ip_address": ip,
        }
        if prompts:
            row.update(_payload(row["request_id"], model.model_group, started, usage))
        row |= {
            "session_id": format_uuid(ids[2], ids[3]),
            "status": status,
            "mcp_namespaced_tool_name": None,
            "agent_id": None,
            "litellm_call_id": call_id,
            "request_duration_ms": duration,
        }
        return row


def _payload(request_id: str, model_group: str, started: datetime, usage: Json) -> Json:
    """What `store_prompts_in_spend_logs` keeps of a request: its messages, the response, the request body."""
    messages = [{"role": "user", "content": f"{PROMPT_CANARY} Summarise ticket {request_id[-8:]} for the on-call."}]
    return {
        "messages": messages,
        "response": {
            "id": request_id,
            "object": "chat.completion",
            "created": int(started.timestamp()),
            "model": model_group,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": f"{PROMPT_CANARY} The ticket is resolved."},
                }
            ],
            "usage": usage,
        },
        "proxy_server_request": {"model": model_group, "messages": messages},
    }
