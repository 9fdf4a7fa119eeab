"""A real LiteLLM Proxy (PyPI ``litellm[proxy]``) with spend tracking in a real PostgreSQL.

The harness script (``run-real-litellm.sh``, kept beside the project in ``shared/real-litellm``)
installs what it needs once into ``~/.cache/real-litellm`` and starts PostgreSQL and the proxy on
127.0.0.1; a second run finds both running and returns at once. ``SENTINEL_REAL_LITELLM_DIR`` points
at another copy of the harness.

These tests only run with ``-m real_litellm`` (CI runs them after the unit tests).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
HARNESS_CANDIDATES = (
    Path(os.environ["SENTINEL_REAL_LITELLM_DIR"]) if os.environ.get("SENTINEL_REAL_LITELLM_DIR") else None,
    REPO.parent / "shared" / "real-litellm",
    Path("/work/shared/real-litellm"),
)
# The harness's work folder. Not under $HOME: PostgreSQL runs as its own user and must reach its data
# directory (root's home is private). Kept between runs, so only the first run installs anything.
ROOT = Path(os.environ.get("SENTINEL_REAL_LITELLM_ROOT", "/var/tmp/sentinel-real-litellm"))
START_TIMEOUT_S = 900  # a first install downloads litellm[proxy] and PostgreSQL (about 3 minutes here)


def harness() -> Path:
    for candidate in HARNESS_CANDIDATES:
        if candidate is not None and (candidate / "run-real-litellm.sh").is_file():
            return candidate / "run-real-litellm.sh"
    tried = ", ".join(str(c) for c in HARNESS_CANDIDATES if c is not None)
    raise RuntimeError(f"the real-LiteLLM harness (run-real-litellm.sh) is not in any of: {tried}")


@dataclass
class RealProxy:
    url: str
    master_key: str
    database_url: str
    script: Path

    @property
    def log_path(self) -> Path:
        return ROOT / "proxy.log"

    def psql(self, sql: str) -> list[list[str]]:
        """Rows of a query against the proxy's own database, as text fields."""
        done = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", self.database_url, "-c", sql],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def admin(self, method: str, path: str, body: dict[str, object] | None = None, key: str | None = None) -> object:
        """Set-up calls through the proxy's admin API (the test's, never Sentinel's)."""
        response = httpx.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {key or self.master_key}"},
            timeout=120,
        )
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text[:400]}"
        return response.json()

    def start(self) -> None:
        _run_harness(self.script)

    def kill(self) -> None:
        """Kill the proxy and its query-engine child (PostgreSQL keeps running), as a crash would; the
        child is killed too, or it would outlive the proxy as an orphan."""
        pid = int((ROOT / "proxy.pid").read_text())
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
        for victim in [pid, *(int(c) for c in children.split())]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        (ROOT / "proxy.pid").unlink(missing_ok=True)


def _run_harness(script: Path) -> str:
    env = {**os.environ, "ROOT": str(ROOT)}
    out = subprocess.run([str(script)], capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"run-real-litellm.sh failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout


def start_real_proxy() -> RealProxy:
    script = harness()
    stdout = _run_harness(script)
    values = dict(re.findall(r"^(LITELLM_URL|LITELLM_MASTER_KEY|DATABASE_URL)=(.*)$", stdout, re.MULTILINE))
    return RealProxy(values["LITELLM_URL"], values["LITELLM_MASTER_KEY"], values["DATABASE_URL"], script)
