"""A real HTTP server on 127.0.0.1 standing in for Slack (the Web API and incoming webhooks), and
for any webhook receiver: it records every request and answers from a script.

    with FakeSlack() as slack:
        slack.then(429, "ratelimited", headers={"Retry-After": "7"})   # the next answer
        slack.then(500, "oops")                                         # the one after
        ...                                                             # then the defaults:
        # POST /api/chat.postMessage -> 200 {"ok": true, ...}; any other POST -> 200 "ok"

``respond`` replaces the defaults with a function of the request (e.g. to verify a signature).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] = b"ok"
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict):
            return json.dumps(self.body).encode(), "application/json; charset=utf-8"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return self.body, "text/plain; charset=utf-8"


def slack_default(seen: Seen) -> Reply:
    if seen.path.endswith("/chat.postMessage"):
        return Reply(200, {"ok": True, "channel": "C0123456", "ts": "1700000000.000100"})
    return Reply(200, "ok")


class FakeSlack:
    def __init__(self, respond: Callable[[Seen], Reply] = slack_default) -> None:
        self.requests: list[Seen] = []
        self.respond = respond
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                reply = outer._next(seen)
                body, content_type = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def then(
        self, status: int, body: bytes | str | dict[str, Any] = b"", headers: dict[str, str] | None = None
    ) -> None:
        """Queue the answer to the next request not yet answered."""
        with self._lock:
            self._script.append(Reply(status, body, headers or {}))

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            if self._script:
                return self._script.pop(0)
        return self.respond(seen)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
