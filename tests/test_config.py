from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.config import Settings, find_config, load_settings
from sentinel.errors import ConfigError

GOOD = """
[store]
path = "state/sentinel.db"

[sync]
trailing_days = 4

[[sources]]
name = "prod"
url = "https://litellm.example.internal:4000/"
api_key_env = "PROD_KEY"

[[sources]]
name = "staging"
url = "http://127.0.0.1:4001"
api_key_credential = "litellm-staging"
verify_tls = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(None)
    assert settings.sources == ()
    assert settings.sync.trailing_days == 3
    assert settings.sync.page_size == 1000
    assert settings.store.path == Path("sentinel.db")


def test_file_values_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    settings = load_settings(path)
    assert settings.sync.trailing_days == 4
    assert [s.name for s in settings.sources] == ["prod", "staging"]
    assert settings.sources[0].url == "https://litellm.example.internal:4000"
    monkeypatch.setenv("SENTINEL_SYNC__TRAILING_DAYS", "7")
    assert load_settings(path).sync.trailing_days == 7


def test_unknown_key_names_key_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("trailing_days = 4", "trailing_days = 4\ntrailing_dayz = 5"))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "sync.trailing_dayz: unknown key" in message
    assert f"{path}, line 7" in message


def test_bad_value_in_second_source_points_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('url = "http://127.0.0.1:4001"', 'url = "127.0.0.1:4001"'))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "sources[1]<staging>.url" in message
    assert "must start with http:// or https://" in message
    assert "line 15" in message


def test_bad_env_value_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_SYNC__PAGE_SIZE", "5000")
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, GOOD))
    assert "sync.page_size" in str(info.value)
    assert "SENTINEL_SYNC__PAGE_SIZE" in str(info.value)


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[sync\ntrailing_days = 1"))


def test_source_needs_exactly_one_key_reference(tmp_path: Path) -> None:
    text = '[[sources]]\nname = "a"\nurl = "http://x"\n'
    with pytest.raises(ConfigError, match="exactly one of api_key_env or api_key_credential"):
        load_settings(write(tmp_path, text))


def test_duplicate_source_names_rejected(tmp_path: Path) -> None:
    text = GOOD.replace('name = "staging"', 'name = "prod"')
    with pytest.raises(ConfigError, match="repeated: prod"):
        load_settings(write(tmp_path, text))


def test_key_from_env_and_from_credentials_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    prod, staging = settings.sources
    with pytest.raises(ConfigError, match="PROD_KEY"):
        prod.api_key({})
    assert prod.api_key({"PROD_KEY": "sk-prod-secret\n"}).get_secret_value() == "sk-prod-secret"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "litellm-staging").write_text("sk-staging-secret\n")
    key = staging.api_key({"CREDENTIALS_DIRECTORY": str(creds)})
    assert key.get_secret_value() == "sk-staging-secret"
    assert "sk-staging-secret" not in repr(key) and "sk-staging-secret" not in str(key)
    with pytest.raises(ConfigError, match="cannot read credential"):
        staging.api_key({"CREDENTIALS_DIRECTORY": str(tmp_path / "nowhere")})


def test_state_directory_resolves_relative_store(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.store.resolved_path({"STATE_DIRECTORY": "/var/lib/sentinel"}) == Path(
        "/var/lib/sentinel/sentinel.db"
    )
    assert settings.store.resolved_path({}) == Path("sentinel.db")


def test_find_config_order(tmp_path: Path) -> None:
    assert find_config(None, {}) is None
    (tmp_path / "config.toml").write_text("")
    assert find_config(None, {}) == Path("config.toml")
    assert find_config(None, {"SENTINEL_CONFIG": "/x.toml"}) == Path("/x.toml")
    assert find_config(Path("/y.toml"), {"SENTINEL_CONFIG": "/x.toml"}) == Path("/y.toml")


def test_example_config_is_valid_and_documents_every_key() -> None:
    example = Path(__file__).parent.parent / "config.example.toml"
    text = example.read_text()
    load_settings(example)
    defaults = Settings()
    for section in ("store", "sync", "logging"):
        for key in type(getattr(defaults, section)).model_fields:
            assert f"\n{key} =" in text or f"\n{key} = " in text, f"{section}.{key} is not documented"
    from sentinel.config import SourceSettings

    for key in SourceSettings.model_fields:
        assert f"# {key} =" in text, f"sources.{key} is not documented"
