from __future__ import annotations

from typing import Any

import httpx
import pytest

from sentinel.egress import PROXY_READ_PATHS, AuditRecord, proxy_client, redact
from sentinel.errors import EgressRefused

KEY = "sk-egress-test-0123456789"


def client_for(url: str, records: list[AuditRecord]) -> httpx.Client:
    return proxy_client(source="t", base_url=url, api_key=KEY, audit=records.append, timeout_s=5)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_write_methods_are_refused_before_sending(recording_server: Any, method: str) -> None:
    records: list[AuditRecord] = []
    with client_for(recording_server.url, records) as client, pytest.raises(EgressRefused, match="only reads"):
        client.request(method, "/user/daily/activity")
    assert recording_server.seen == []
    assert [(r.method, r.outcome, r.status) for r in records] == [(method, "refused", None)]


@pytest.mark.parametrize("path", ["/chat/completions", "/key/generate", "/user/new", "/spend/logs", "/user/info/x"])
def test_unlisted_paths_are_refused(recording_server: Any, path: str) -> None:
    records: list[AuditRecord] = []
    with client_for(recording_server.url, records) as client, pytest.raises(EgressRefused, match="allowlist"):
        client.get(path)
    assert recording_server.seen == []
    assert records[0].outcome == "refused"


def test_other_hosts_are_refused(recording_server: Any) -> None:
    records: list[AuditRecord] = []
    with client_for(recording_server.url, records) as client, pytest.raises(EgressRefused, match="not the configured"):
        client.get("http://127.0.0.2:9/user/info")
    assert recording_server.seen == []


def test_allowlisted_get_is_sent_and_audited(recording_server: Any) -> None:
    records: list[AuditRecord] = []
    with client_for(recording_server.url, records) as client:
        response = client.get("/health/readiness", params={"x": "1"})
    assert response.status_code == 200
    assert recording_server.seen == [("GET", "/health/readiness?x=1")]
    (rec,) = records
    assert (rec.method, rec.path, rec.query, rec.status, rec.outcome) == ("GET", "/health/readiness", "x=1", 200, "ok")
    assert rec.bytes == len(response.content) and rec.duration_ms >= 0


def test_base_path_prefix_is_respected(recording_server: Any) -> None:
    records: list[AuditRecord] = []
    with client_for(recording_server.url + "/litellm", records) as client:
        client.get("/user/info")
        with pytest.raises(EgressRefused):
            client.get(recording_server.url + "/user/info")
    assert recording_server.seen == [("GET", "/litellm/user/info")]


def test_connection_failure_is_audited() -> None:
    records: list[AuditRecord] = []
    with client_for("http://127.0.0.1:9", records) as client, pytest.raises(httpx.TransportError):
        client.get("/user/list")
    assert records[0].outcome == "ConnectError" and records[0].status is None


def test_redact_known_secrets_and_raw_keys() -> None:
    text = f"failed with key {KEY} and Key = sk-abcd1234xyz, webhook https://hooks.example/T0/B0/s3cr3t"
    clean = redact(text, ("https://hooks.example/T0/B0/s3cr3t",))
    assert KEY not in clean and "sk-abcd1234xyz" not in clean and "s3cr3t" not in clean


def test_allowlist_is_read_only_endpoints() -> None:
    for path in PROXY_READ_PATHS:
        assert not any(word in path for word in ("new", "update", "delete", "generate", "completions"))
