"""No secret appears in logs, the database, or error messages."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from simhelp import NOW, small_model

from sentinel.cli import main
from sentinel.simulator import SimulatorServer

SECRET = "sk-very-secret-master-key-4f9e2b7c1d"


def test_secret_never_logged_stored_or_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    model = small_model(days=5)
    config = tmp_path / "config.toml"
    with SimulatorServer(model, api_key=SECRET).running() as url:
        config.write_text(
            f'[store]\npath = "{tmp_path / "s.db"}"\n[sync]\nretry_initial_s = 0.01\nmax_attempts = 2\n'
            f'[[sources]]\nname = "good"\nurl = "{url}"\napi_key_env = "GOOD_KEY"\n'
            f'[[sources]]\nname = "wrong"\nurl = "{url}"\napi_key_env = "WRONG_KEY"\n'
        )
        runner = CliRunner()
        env = {"GOOD_KEY": SECRET, "WRONG_KEY": SECRET[::-1]}
        backfill = runner.invoke(main, ["-c", str(config), "sync", "--since", "2026-11-22"], env=env)
        status = runner.invoke(main, ["-c", str(config), "status", "--format", "json"], env=env)
    assert backfill.exit_code == 5, backfill.output  # "wrong" failed to authenticate
    assert "authentication failed" in backfill.output
    texts = [backfill.output, status.output, caplog.text]
    dump = "\n".join((tmp_path / "s.db").exists() and __import__("sqlite3").connect(tmp_path / "s.db").iterdump())
    texts.append(dump)
    assert "INSERT INTO" in dump and "daily_facts" in dump  # the dump is real
    for text in texts:
        assert SECRET not in text
        assert SECRET[::-1] not in text
    assert NOW  # the simulator served the fixed clock
