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
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

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
        return read_secret(
            self.api_key_env, self.api_key_credential, f"source {self.name!r}", "sources.api_key", environ
        )


def read_secret(
    env_name: str | None,
    credential: str | None,
    owner: str,
    key: str,
    environ: dict[str, str] | None = None,
) -> SecretStr:
    """A secret named by an environment variable or a credential file (``<key>_env`` /
    ``<key>_credential``); credential names are read from ``$CREDENTIALS_DIRECTORY``."""
    env = os.environ if environ is None else environ
    if env_name:
        value = env.get(env_name, "")
        if not value:
            raise ConfigError(f"{owner}: environment variable {env_name} ({key}_env) is not set or empty")
        return SecretStr(value.strip())
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    name = credential or ""
    path = Path(cred_dir) / name if cred_dir and not Path(name).is_absolute() else Path(name)
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{owner}: cannot read credential {str(path)!r} ({key}_credential): {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{owner}: credential {str(path)!r} ({key}_credential) is empty")
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


def parse_duration(text: str) -> timedelta:
    """ "30s", "5m", "4h", "2d" (the words Alertmanager's config uses)."""
    found = re.fullmatch(r"(\d+)(s|m|h|d)", text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 4h or 2d")
    n, unit = int(found.group(1)), found.group(2)
    seconds = n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    return timedelta(seconds=seconds)


def _duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


class _ReceiverBase(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    send_resolved: bool = True  # also send the notice that an alert has ended


def _one_of(key: str, env: str | None, cred: str | None, *, required: bool) -> None:
    if env and cred:
        raise ValueError(f"set only one of {key}_env or {key}_credential")
    if required and not (env or cred):
        raise ValueError(f"set one of {key}_env or {key}_credential")


class SlackReceiver(_ReceiverBase):
    """Slack: an incoming webhook, or a bot token posting to a channel (chat.postMessage)."""

    type: Literal["slack"]
    webhook_url_env: str | None = None
    webhook_url_credential: str | None = None
    bot_token_env: str | None = None
    bot_token_credential: str | None = None
    channel: str | None = None  # with a bot token: "#finops" or a channel id
    api_url: str = "https://slack.com/api/"  # Slack's Web API base (tests point it at 127.0.0.1)

    @model_validator(mode="after")
    def _one_way(self) -> SlackReceiver:
        webhook = bool(self.webhook_url_env or self.webhook_url_credential)
        bot = bool(self.bot_token_env or self.bot_token_credential)
        if webhook == bot:
            raise ValueError("set either webhook_url_env/_credential or bot_token_env/_credential (with channel)")
        _one_of("webhook_url", self.webhook_url_env, self.webhook_url_credential, required=webhook)
        _one_of("bot_token", self.bot_token_env, self.bot_token_credential, required=bot)
        if bot and not self.channel:
            raise ValueError("a bot token needs a channel")
        return self

    def webhook_url(self, environ: dict[str, str] | None = None) -> SecretStr | None:
        if not (self.webhook_url_env or self.webhook_url_credential):
            return None
        owner = f"receiver {self.name!r}"
        return read_secret(self.webhook_url_env, self.webhook_url_credential, owner, "webhook_url", environ)

    def bot_token(self, environ: dict[str, str] | None = None) -> SecretStr | None:
        if not (self.bot_token_env or self.bot_token_credential):
            return None
        return read_secret(
            self.bot_token_env, self.bot_token_credential, f"receiver {self.name!r}", "bot_token", environ
        )


class EmailReceiver(_ReceiverBase):
    """SMTP: STARTTLS (port 587), implicit TLS (465) or plain (a local relay); HTML and text parts."""

    type: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    password_credential: str | None = None
    from_addr: str
    to: tuple[str, ...] = Field(min_length=1)
    ca_bundle: Path | None = None  # optional; default: system CAs

    @model_validator(mode="after")
    def _auth(self) -> EmailReceiver:
        _one_of("password", self.password_env, self.password_credential, required=bool(self.username))
        if (self.password_env or self.password_credential) and not self.username:
            raise ValueError("a password needs a username")
        return self

    def password(self, environ: dict[str, str] | None = None) -> SecretStr | None:
        if not self.username:
            return None
        return read_secret(self.password_env, self.password_credential, f"receiver {self.name!r}", "password", environ)


class WebhookReceiver(_ReceiverBase):
    """A generic webhook: POST of the alert JSON (README, "Alert JSON"), optionally HMAC-signed."""

    type: Literal["webhook"]
    url: str | None = None  # or url_env / url_credential when the URL itself is a secret
    url_env: str | None = None
    url_credential: str | None = None
    hmac_secret_env: str | None = None
    hmac_secret_credential: str | None = None

    @model_validator(mode="after")
    def _one_url(self) -> WebhookReceiver:
        given = [x for x in (self.url, self.url_env, self.url_credential) if x]
        if len(given) != 1:
            raise ValueError("set exactly one of url, url_env or url_credential")
        if self.url and not re.match(r"^https?://[^/\s]+", self.url):
            raise ValueError("url must start with http:// or https:// and name a host")
        _one_of("hmac_secret", self.hmac_secret_env, self.hmac_secret_credential, required=False)
        return self

    def target(self, environ: dict[str, str] | None = None) -> SecretStr:
        if self.url:
            return SecretStr(self.url)
        return read_secret(self.url_env, self.url_credential, f"receiver {self.name!r}", "url", environ)

    def hmac_secret(self, environ: dict[str, str] | None = None) -> SecretStr | None:
        if not (self.hmac_secret_env or self.hmac_secret_credential):
            return None
        owner = f"receiver {self.name!r}"
        return read_secret(self.hmac_secret_env, self.hmac_secret_credential, owner, "hmac_secret", environ)


class FileReceiver(_ReceiverBase):
    """Appends one JSON line per alert to a file (for log shippers, audits and tests)."""

    type: Literal["jsonl"]
    path: Path


ReceiverSettings = Annotated[
    SlackReceiver | EmailReceiver | WebhookReceiver | FileReceiver, Field(discriminator="type")
]


class RouteSettings(_Section):
    """A node of the routing tree (Alertmanager's words). Children inherit what they do not set."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    receiver: str | None = None
    matchers: tuple[str, ...] = ()  # 'severity="critical"', 'team=~"search|ads"', 'kind!=budget'
    group_by: tuple[str, ...] | None = None  # label names; ["..."] groups by every label
    group_wait: str | None = None  # wait this long for more alerts of a new group before sending
    group_interval: str | None = None  # then wait this long before sending a group's new alerts
    repeat_interval: str | None = None  # re-send a still-firing alert this often
    continue_: bool = Field(default=False, alias="continue")  # keep matching the next sibling routes
    routes: tuple[RouteSettings, ...] = ()

    @field_validator("group_wait", "group_interval", "repeat_interval")
    @classmethod
    def _durations(cls, value: str | None) -> str | None:
        return _duration(value)


class InhibitSettings(_Section):
    """While an alert matching source_matchers fires, mute alerts matching target_matchers that
    share the labels named in ``equal``."""

    source_matchers: tuple[str, ...] = Field(min_length=1)
    target_matchers: tuple[str, ...] = Field(min_length=1)
    equal: tuple[str, ...] = ()


# An exhausted budget mutes the spend anomalies of the same entity: the budget alert already says it.
DEFAULT_INHIBIT = (
    InhibitSettings(
        source_matchers=('kind="budget"', 'exhausted="true"'),
        target_matchers=('kind="anomaly"', 'direction="up"'),
        equal=("entity_type", "entity_id"),
    ),
    # Spend that stopped is one alert (the absence), not also a drop anomaly.
    InhibitSettings(
        source_matchers=('kind="absence"',),
        target_matchers=('kind="anomaly"', 'direction="down"'),
        equal=("entity_type", "entity_id"),
    ),
)


class DeliverySettings(_Section):
    # Retries of a retryable failure back off exponentially from retry_initial to retry_max, with
    # jitter; after give_up_after the alert is marked failed (never silently dropped: it is logged,
    # kept in the outbox and counted by `sentinel status`).
    retry_initial: str = "30s"
    retry_max: str = "30m"
    give_up_after: str = "3d"
    # A claimed message whose worker died is claimed again after this long (at-least-once delivery).
    lease: str = "2m"

    @field_validator("retry_initial", "retry_max", "give_up_after", "lease")
    @classmethod
    def _durations(cls, value: str) -> str:
        parse_duration(value)
        return value


class DigestSettings(_Section):
    """The weekly digest: an HTML email with charts (and a short Slack version)."""

    # When, as a cron expression in ``timezone`` (default: Mondays at 09:00).
    schedule: str = "0 9 * * 1"
    timezone: str = "UTC"
    # Receivers that get it: email receivers get the full HTML digest, Slack ones a short summary.
    # Empty: no digest is sent (`sentinel digest --preview` still works).
    receivers: tuple[str, ...] = ()
    weeks: int = Field(default=8, ge=2, le=52)  # weeks of daily spend in the chart
    # Per-team digests: team id or alias -> addresses that get that team's own digest (by email).
    team_recipients: dict[str, tuple[str, ...]] = {}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a cron expression of five fields (minute hour day month weekday)")
        from sentinel.digest.schedule import parse  # the parser the digest runs with, at load time

        try:
            parse(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value


class DaemonSettings(_Section):
    """`sentinel run`: the long-running service."""

    poll_every: str = "15m"  # poll every source, then evaluate, this often
    # A source with nothing stored is first backfilled this many days (an unfinished backfill resumes).
    initial_backfill_days: int = Field(default=90, ge=1, le=730)
    poll_jitter: str = "30s"  # plus up to this much, so several Sentinels do not poll in step
    deliver_every: str = "30s"  # between polls, deliver what is due (retries, group intervals)
    # A source unreachable, or without new data, for this long raises an operator alert.
    source_stale_after: str = "1h"
    # Prometheus /metrics and /healthz on this local port (0: off). Binds 127.0.0.1 unless told otherwise.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    shutdown_grace: str = "5s"  # on SIGTERM, deliver what is due for at most this long
    # The read-only web view (spend, drill-downs, anomalies, budgets) on metrics_port as well.
    # Basic auth when web_user is set, with the password from an env var or a credential file;
    # it covers the web pages, not /metrics and /healthz (scrapers and health checks stay as they are).
    web: bool = False
    web_user: str | None = Field(default=None, min_length=1)
    web_password_env: str | None = None
    web_password_credential: str | None = None

    @field_validator("poll_every", "poll_jitter", "deliver_every", "source_stale_after", "shutdown_grace")
    @classmethod
    def _durations(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("web_user")
    @classmethod
    def _no_colon(cls, value: str | None) -> str | None:
        if value is not None and ":" in value:
            raise ValueError("a basic-auth user name cannot contain ':'")
        return value

    @model_validator(mode="after")
    def _web(self) -> DaemonSettings:
        if self.web and not self.metrics_port:
            raise ValueError(
                "web = true serves the web view on metrics_port, which is 0 (off): set metrics_port (e.g. 9464)"
            )
        has_password = bool(self.web_password_env or self.web_password_credential)
        if self.web_password_env and self.web_password_credential:
            raise ValueError("set only one of web_password_env or web_password_credential")
        if self.web_user and not has_password:
            raise ValueError("web_user needs a password: set web_password_env or web_password_credential")
        if has_password and not self.web_user:
            raise ValueError("a web password needs web_user")
        return self

    def web_password(self, environ: dict[str, str] | None = None) -> SecretStr | None:
        """The web view's basic-auth password (None: no basic auth), read now: the view reads it when
        it starts, so a rotated password takes a restart."""
        if not self.web_user:
            return None
        return read_secret(
            self.web_password_env, self.web_password_credential, "[daemon]", "daemon.web_password", environ
        )


class QualitySettings(_Section):
    """Data-quality checks: `sentinel doctor` runs them all; every evaluation runs the cheap ones on
    the stored data and raises an operator alert (rule ``sentinel-data``) for what it finds."""

    enabled: bool = True
    # No spend recorded across every provider for this long, while the usual profile of the day
    # expected at least outage_min_expected_usd: the proxy's logging broke, not the traffic. Its
    # per-entity drop anomalies and spend absences are then not raised (one operator alert instead).
    outage_after: str = "2h"
    outage_min_expected_usd: float = Field(default=1.0, ge=0)
    # A final day whose stored total changed by more than this many dollars when re-read is reported.
    revision_tolerance_usd: float = Field(default=0.01, ge=0)
    # Models with tokens but $0 spend on the recent days (missing from the proxy's price map).
    unpriced_models: bool = True
    # One user (or the "Unassigned" bucket of keys without a user) holding at least this share of
    # the recent days' spend means per-user alerts cannot work: keys lack user_id.
    single_user_share: float = Field(default=0.95, gt=0.5, le=1.0)
    recent_days: int = Field(default=7, ge=1, le=90)  # the window of the checks above

    @field_validator("outage_after")
    @classmethod
    def _durations(cls, value: str) -> str:
        parse_duration(value)
        return value


def parse_retention(text: str) -> tuple[int, str]:
    """ "400d", "8w", "13mo", "2y" -> (count, unit): months and years are calendar months."""
    found = re.fullmatch(r"(\d+)(d|w|mo|y)", text.strip())
    if not found or int(found.group(1)) < 1:
        raise ValueError(f"{text!r} is not a retention period like 400d, 8w, 13mo or 2y")
    return int(found.group(1)), found.group(2)


class RetentionSettings(_Section):
    """What is kept, and for how long. `sentinel run` purges once a day; `sentinel purge` on demand."""

    # Daily spend facts, the days read, and today's intraday snapshots older than this.
    daily_facts: str = "13mo"
    # The audit log of every request made to a proxy or a receiver.
    audit_log: str = "90d"
    # Resolved alerts, with their outbox rows and delivery attempts; finished digests; spent budget
    # signals. (Firing alerts and undelivered messages are never purged.)
    alerts: str = "180d"
    # false: only `sentinel purge` purges (for operators who schedule it themselves).
    scheduled: bool = True

    @field_validator("daily_facts", "audit_log", "alerts")
    @classmethod
    def _periods(cls, value: str) -> str:
        parse_retention(value)
        return value


class PrivacySettings(_Section):
    """What is stored about people. Prompts and responses are never requested or stored."""

    # Store users as opaque ids (HMAC-SHA256 of the id under pseudonym_key, "u-" + 16 hex digits)
    # instead of their ids, and no user aliases. Alerts, digests and reports then show the opaque id;
    # `sentinel pseudonym ID` tells an operator holding the key which one a user is. Rule files and
    # `sentinel purge --user` still take the real ids (hashed with the same key).
    pseudonymize_users: bool = False
    pseudonym_key_env: str | None = None
    pseudonym_key_credential: str | None = None
    # Key aliases often carry a person's name ("alice-laptop"); false: keys are shown by hash only.
    store_key_aliases: bool = True

    @model_validator(mode="after")
    def _key_when_on(self) -> PrivacySettings:
        if self.pseudonymize_users and bool(self.pseudonym_key_env) == bool(self.pseudonym_key_credential):
            raise ValueError("pseudonymize_users needs exactly one of pseudonym_key_env or pseudonym_key_credential")
        return self

    def pseudonym_key(self, environ: dict[str, str] | None = None) -> SecretStr:
        return read_secret(
            self.pseudonym_key_env, self.pseudonym_key_credential, "[privacy]", "privacy.pseudonym_key", environ
        )


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
    receivers: tuple[ReceiverSettings, ...] = ()
    # The root route: every alert enters here. No receiver (the default): alerts are evaluated and
    # kept in the store (`sentinel alerts`), but nothing is sent.
    route: RouteSettings = RouteSettings(group_by=("rule",), group_wait="0s", group_interval="5m", repeat_interval="4h")
    inhibit: tuple[InhibitSettings, ...] = DEFAULT_INHIBIT
    delivery: DeliverySettings = DeliverySettings()
    digest: DigestSettings = DigestSettings()
    daemon: DaemonSettings = DaemonSettings()
    quality: QualitySettings = QualitySettings()
    retention: RetentionSettings = RetentionSettings()
    privacy: PrivacySettings = PrivacySettings()

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

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> Settings:
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"receiver names must be unique; repeated: {', '.join(dupes)}")
        unknown = sorted({r for r in _route_receivers(self.route) if r not in names})
        if unknown:
            raise ValueError(f"route names receiver(s) not defined under [[receivers]]: {', '.join(unknown)}")
        # Matchers, group_by and durations are checked by the code that uses them, here, at load.
        from sentinel.route.inhibit import build_rules
        from sentinel.route.tree import build

        build(self.route)
        build_rules(self.inhibit)
        unknown = sorted(r for r in self.digest.receivers if r not in names)
        if unknown:
            raise ValueError(
                f"digest.receivers names receiver(s) not defined under [[receivers]]: {', '.join(unknown)}"
            )
        return self

    def receiver(self, name: str) -> ReceiverSettings:
        for r in self.receivers:
            if r.name == name:
                return r
        known = ", ".join(r.name for r in self.receivers) or "none configured"
        raise ConfigError(f"no receiver named {name!r} (receivers: {known})")

    def source(self, name: str) -> SourceSettings:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"no source named {name!r} (sources: {known})")


def _route_receivers(route: RouteSettings) -> list[str]:
    out = [route.receiver] if route.receiver else []
    for child in route.routes:
        out.extend(_route_receivers(child))
    return out


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
