"""Static facts of the simulated proxy: deployed models with public list prices, and the intraday profile."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

CHAT = "/chat/completions"
EMBEDDINGS = "/embeddings"
ENDPOINTS: tuple[str, ...] = (CHAT, EMBEDDINGS)


@dataclass(frozen=True)
class SimModel:
    """One deployment as the proxy logs it: `model` is the provider-prefixed string, not the public group."""

    model: str
    model_group: str
    provider: str
    endpoint: str
    input_cost: float  # USD per prompt token not served from cache
    output_cost: float
    cache_read_cost: float
    cache_creation_cost: float
    prompt_mean: float  # tokens per request
    completion_mean: float
    cache_read_share: float  # share of prompt tokens read from the prompt cache (anthropic only)
    cache_creation_share: float
    fail_rate: float
    latency_ms: float
    popularity: float  # weight when drawing a user's model portfolio


# Prices are the providers' list prices per token (late 2024/2025). Spend per token is therefore stable per
# model, which is what a model-switch detector keys on.
MODELS: tuple[SimModel, ...] = (
    SimModel(
        "openai/gpt-4o-mini",
        "gpt-4o-mini",
        "openai",
        CHAT,
        1.5e-7,
        6e-7,
        7.5e-8,
        0.0,
        1800,
        350,
        0.0,
        0.0,
        0.01,
        900,
        0.30,
    ),
    SimModel(
        "openai/gpt-4o", "gpt-4o", "openai", CHAT, 2.5e-6, 1e-5, 1.25e-6, 0.0, 2200, 420, 0.0, 0.0, 0.01, 1800, 0.07
    ),
    SimModel(
        "azure/gpt-4o",
        "azure-gpt-4o",
        "azure",
        CHAT,
        2.5e-6,
        1e-5,
        1.25e-6,
        0.0,
        2000,
        400,
        0.0,
        0.0,
        0.012,
        2000,
        0.12,
    ),
    SimModel(
        "anthropic/claude-3-5-sonnet-20240620",
        "claude-3-5-sonnet",
        "anthropic",
        CHAT,
        3e-6,
        1.5e-5,
        3e-7,
        3.75e-6,
        5200,
        520,
        0.45,
        0.06,
        0.015,
        3500,
        0.24,
    ),
    SimModel(
        "anthropic/claude-3-5-haiku-20241022",
        "claude-3-5-haiku",
        "anthropic",
        CHAT,
        8e-7,
        4e-6,
        8e-8,
        1e-6,
        2600,
        380,
        0.35,
        0.05,
        0.012,
        1400,
        0.08,
    ),
    SimModel(
        "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        "bedrock-claude-3-5-sonnet",
        "bedrock",
        CHAT,
        3e-6,
        1.5e-5,
        0.0,
        0.0,
        3000,
        480,
        0.0,
        0.0,
        0.02,
        3800,
        0.05,
    ),
    SimModel(
        "groq/llama-3.1-8b-instant",
        "llama-3.1-8b-groq",
        "groq",
        CHAT,
        5e-8,
        8e-8,
        0.0,
        0.0,
        1200,
        300,
        0.0,
        0.0,
        0.03,
        300,
        0.05,
    ),
    SimModel(
        "groq/llama-3.3-70b-versatile",
        "llama-3.3-70b-groq",
        "groq",
        CHAT,
        5.9e-7,
        7.9e-7,
        0.0,
        0.0,
        1600,
        350,
        0.0,
        0.0,
        0.03,
        650,
        0.04,
    ),
    SimModel(
        "openai/text-embedding-3-small",
        "text-embedding-3-small",
        "openai",
        EMBEDDINGS,
        2e-8,
        0.0,
        0.0,
        0.0,
        450,
        0,
        0.0,
        0.0,
        0.005,
        150,
        0.05,
    ),
)
MODEL_INDEX: dict[str, int] = {m.model: i for i, m in enumerate(MODELS)}
CHEAP_MODEL = MODEL_INDEX["openai/gpt-4o-mini"]  # the model-switch anomaly moves a user off this...
PRICEY_MODEL = MODEL_INDEX["openai/gpt-4o"]  # ...onto this one, and the azure outage falls back to it too
OUTAGE_PROVIDER = "azure"

GROUPS: tuple[str, ...] = tuple(dict.fromkeys(m.model_group for m in MODELS))
PROVIDERS: tuple[str, ...] = tuple(dict.fromkeys(m.provider for m in MODELS))


def model_arrays() -> dict[str, NDArray[np.float64]]:
    """Per-model numbers as arrays so a day's rows can be priced in one vectorised pass."""
    fields = (
        "input_cost",
        "output_cost",
        "cache_read_cost",
        "cache_creation_cost",
        "prompt_mean",
        "completion_mean",
        "cache_read_share",
        "cache_creation_share",
        "fail_rate",
        "latency_ms",
    )
    return {f: np.array([getattr(m, f) for m in MODELS], dtype=np.float64) for f in fields}


# Share of a UTC day's traffic per hour: EU working day plus US morning, quiet nights.
_HOURLY = np.array(
    [
        0.2,
        0.2,
        0.2,
        0.2,
        0.25,
        0.3,
        0.5,
        0.9,
        1.5,
        1.6,
        1.6,
        1.6,
        1.3,
        1.8,
        1.8,
        1.8,
        1.7,
        1.2,
        1.1,
        1.0,
        0.8,
        0.6,
        0.45,
        0.3,
    ]
)
_CUMULATIVE = np.concatenate([[0.0], np.cumsum(_HOURLY / _HOURLY.sum())])


def intraday_share(seconds_into_day: float) -> float:
    """Cumulative share of a day's traffic that has happened `seconds_into_day` after 00:00 UTC."""
    hours = min(max(seconds_into_day / 3600.0, 0.0), 24.0)
    return float(np.interp(hours, np.arange(25, dtype=np.float64), _CUMULATIVE))


def intraday_time(share: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse of `intraday_share`: seconds into the day by which `share` of the traffic has happened."""
    return np.interp(share, _CUMULATIVE, np.arange(25, dtype=np.float64)) * 3600.0
