"""Configuration: ``config.toml`` + ``SENTINEL_*`` environment overrides + a credentials directory.

Precedence, highest first: environment (``SENTINEL_SYNC__TRAILING_DAYS=5``), then the TOML file,
then the defaults below (the only place defaults live). Secrets are never written in the file
itself: a source names an environment variable or a credential file (systemd ``LoadCredential=``
puts those in ``$CREDENTIALS_DIRECTORY``) and the key is read into a ``SecretStr``.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sentinel.budget.validate import check_thresholds, check_timezone
from sentinel.errors import ConfigError
from sentinel.tomllines import line_of

DEFAULT_CONFIG_PATHS = (Path("config.toml"), Path("/etc/sentinel/config.toml"))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(_Section):
    """One LiteLLM proxy to watch."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    url: str
    # Exactly one way to find the key: an env var name, or a credential file name.
    api_key_env: str | None = None
    api_key_credential: str | None = None
    verify_tls: bool = True
    ca_bundle: Path | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    # The proxy's litellm_settings.timezone: where its budget resets snap to midnights and month starts.
    budget_timezone: str = "UTC"

    @field_validator("budget_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must start with http:// or https:// and name a host")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_key_reference(self) -> SourceSettings:
        if bool(self.api_key_env) == bool(self.api_key_credential):
            raise ValueError("set exactly one of api_key_env or api_key_credential")
        return self

    def api_key(self, environ: dict[str, str] | None = None) -> SecretStr:
        """Read the key now (not at parse time) so a rotated credential is picked up on reload."""
        env = os.environ if environ is None else environ
        if self.api_key_env:
            value = env.get(self.api_key_env, "")
            if not value:
                raise ConfigError(
                    f"source {self.name!r}: environment variable {self.api_key_env} (sources.api_key_env) "
                    "is not set or empty"
                )
            return SecretStr(value.strip())
        cred_dir = env.get("CREDENTIALS_DIRECTORY")
        name = self.api_key_credential or ""
        path = Path(cred_dir) / name if cred_dir and not Path(name).is_absolute() else Path(name)
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"source {self.name!r}: cannot read credential {str(path)!r} (sources.api_key_credential): "
                f"{exc.strerror}"
            ) from None
        if not value:
            raise ConfigError(f"source {self.name!r}: credential {str(path)!r} is empty")
        return SecretStr(value)


class StoreSettings(_Section):
    # Relative paths are resolved against $STATE_DIRECTORY when systemd sets it.
    path: Path = Path("sentinel.db")

    def resolved_path(self, environ: dict[str, str] | None = None) -> Path:
        env = os.environ if environ is None else environ
        state_dir = env.get("STATE_DIRECTORY")
        if state_dir and not self.path.is_absolute():
            return Path(state_dir.split(":")[0]) / self.path
        return self.path


class SyncSettings(_Section):
    trailing_days: int = Field(default=3, ge=1, le=31)
    settle_minutes: int = Field(default=60, ge=0, le=24 * 60)
    prefer_aggregated: bool = True
    page_size: int = Field(default=1000, ge=1, le=1000)
    api_key_limit: int = Field(default=1000, ge=1, le=1000)
    backfill_chunk_days: int = Field(default=7, ge=1, le=400)
    max_chunk_days: int = Field(default=31, ge=1, le=400)
    target_response_mb: float = Field(default=24.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    retry_initial_s: float = Field(default=0.5, ge=0)
    retry_max_s: float = Field(default=30.0, ge=0)
    sync_entities: bool = True
    # Users, teams and keys (with budget counters) change slowly; re-read them at most this often.
    entities_every_minutes: int = Field(default=60, ge=0, le=24 * 60)


class BudgetSettings(_Section):
    # Percent of a budget at which to alert, once per budget window each; rule files may override.
    thresholds: tuple[float, ...] = (50.0, 80.0, 90.0, 100.0)
    # Alert when the chance of reaching a budget before its reset is at least this.
    forecast_probability: float = Field(default=0.8, gt=0, lt=1)
    # Central interval shown for the spend at window end.
    forecast_interval: float = Field(default=0.9, gt=0, lt=1)
    # Watch the team, user and key budgets the proxies hold (as well as rule-file budgets).
    proxy_budgets: bool = True

    @field_validator("thresholds")
    @classmethod
    def _percentages(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(sorted(set(check_thresholds(value))))


class RulesSettings(_Section):
    # A directory of *.toml rule files (or one file); relative paths are read from the config file's directory.
    path: Path = Path("rules")

    def resolved_path(self, config_path: Path | None) -> Path:
        if self.path.is_absolute() or config_path is None:
            return self.path
        return config_path.parent / self.path


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SENTINEL_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    sources: tuple[SourceSettings, ...] = ()
    store: StoreSettings = StoreSettings()
    sync: SyncSettings = SyncSettings()
    logging: LoggingSettings = LoggingSettings()
    budgets: BudgetSettings = BudgetSettings()
    rules: RulesSettings = RulesSettings()

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, value: tuple[SourceSettings, ...]) -> tuple[SourceSettings, ...]:
        names = [s.name for s in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file (passed in as init values); no .env or secrets-dir magic.
        return (env_settings, init_settings)

    def source(self, name: str) -> SourceSettings:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"no source named {name!r} (sources: {known})")


def find_config(explicit: Path | None, environ: dict[str, str] | None = None) -> Path | None:
    """The file to read: --config, else $SENTINEL_CONFIG, else ./config.toml, else /etc/sentinel/."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get("SENTINEL_CONFIG"):
        return Path(env["SENTINEL_CONFIG"])
    return next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)


def load_settings(path: Path | None) -> Settings:
    """Parse and validate; every problem is reported with its key and the file it came from."""
    data: dict[str, Any] = {}
    origin = "defaults"
    text = ""
    if path is not None:
        origin = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {origin}: {exc.strerror}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, text, data)) from None


def _describe(exc: ValidationError, origin: str, text: str, data: dict[str, Any]) -> str:
    lines = [f"invalid configuration ({origin}):"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = _dotted(loc, data)
        where = _where(key, loc, origin, text, data)
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        shown = ""
        if "input" in err and err["type"] != "extra_forbidden" and not isinstance(err["input"], dict | list):
            shown = f" (got {err['input']!r})"
        lines.append(f"  {key}: {msg}{shown}{where}")
    return "\n".join(lines)


def _dotted(loc: list[str], data: dict[str, Any]) -> str:
    # sources.0.url -> sources[0].url (and name the source when it has one)
    out: list[str] = []
    node: Any = data
    for part in loc:
        if part.isdigit() and out:
            idx = int(part)
            name = ""
            if isinstance(node, list) and idx < len(node) and isinstance(node[idx], dict):
                name = str(node[idx].get("name", ""))
            out[-1] += f"[{idx}]" + (f"<{name}>" if name else "")
            node = node[idx] if isinstance(node, list) and idx < len(node) else None
        else:
            out.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(out)


def _where(key: str, loc: list[str], origin: str, text: str, data: dict[str, Any]) -> str:
    """Point at the environment variable, or the line of the offending key in the file."""
    env_name = _env_name(loc)
    if env_name in os.environ:
        return f" [from environment {env_name}]"
    if not text or not loc or loc[-1].isdigit():
        return ""
    line = line_of(text, loc)
    return f" [{origin}, line {line}]" if line else f" [{origin}]"


def _env_name(loc: list[str]) -> str:
    return "SENTINEL_" + "__".join(p.upper() for p in loc if not p.isdigit())
