"""POST for the receivers that speak HTTP (Slack, webhooks): every failure to get an answer becomes
a DeliveryResult, so a receiver never raises and all of them classify the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from sentinel.errors import EgressRefused
from sentinel.notify.model import DeliveryResult, Outcome


def post(
    client: httpx.Client, url: str, content: bytes, headers: Mapping[str, str], clean: Callable[[str], str]
) -> httpx.Response | DeliveryResult:
    """The answer, or why there is none: refused by the egress guard or a bad URL (permanent), a
    timeout or a broken connection (retryable). ``clean`` strips secrets from the detail."""
    try:
        return client.post(url, content=content, headers=dict(headers))
    except EgressRefused as exc:
        return DeliveryResult(Outcome.PERMANENT, clean(f"refused: {exc}"))
    except httpx.TimeoutException:
        return DeliveryResult(Outcome.RETRYABLE, "timeout")
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        return DeliveryResult(Outcome.PERMANENT, clean(f"{type(exc).__name__}: {exc}"))
    except httpx.TransportError as exc:  # connection refused or reset, DNS, TLS handshake
        return DeliveryResult(Outcome.RETRYABLE, clean(f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # a receiver never raises: every failure is a result
        return DeliveryResult(Outcome.RETRYABLE, clean(f"unexpected {type(exc).__name__}: {exc}"))
