"""Sentinel's exception tree.

Every error an operator can see derives from :class:`SentinelError`; the CLI turns it into a
one-paragraph message and an exit code, never a traceback.

    SentinelError
    ├── ConfigError                 bad config.toml / env / credential (names the key and the file)
    ├── RuleError                   bad rule files (every problem: file, line, rule, field)
    ├── EgressRefused               the client refused to send (method or path not allowlisted)
    ├── StoreError                  the SQLite store cannot be opened or migrated
    ├── PurgeRefused                a purge Sentinel will not do (recent days, a non-person id)
    └── SourceError                 talking to a LiteLLM proxy failed          (.source, .retryable)
        ├── AuthenticationFailed    401: the key is missing, wrong, blocked or expired
        ├── PermissionDenied        403: the key works but lacks the admin-viewer scope
        ├── RequestRejected         400 / 404 / 422: Sentinel sent something the proxy refuses
        ├── ProxyHasNoDatabase      the proxy runs without a database: nothing to read
        ├── MalformedResponse       the body is not the JSON the contract promises
        └── ProxyUnavailable        timeouts, connection errors, 429, 5xx (retryable; raised
                                    once the retries are spent)
"""

from __future__ import annotations


class SentinelError(Exception):
    """Base of every error Sentinel reports to an operator."""

    exit_code = 1


class ConfigError(SentinelError):
    exit_code = 2


class RuleError(SentinelError):
    exit_code = 2


class EgressRefused(SentinelError):
    """Raised before a request leaves the process: it is not on the allowlist."""

    exit_code = 3


class PurgeRefused(SentinelError):
    """A purge asked for something Sentinel will not do (a cutoff that reaches into recent days,
    an id that is not a person)."""

    exit_code = 2


class StoreError(SentinelError):
    exit_code = 4


class SourceError(SentinelError):
    """A LiteLLM proxy answered with an error, or did not answer."""

    retryable = False
    exit_code = 5

    def __init__(self, message: str, *, source: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.status = status


class AuthenticationFailed(SourceError):
    pass


class PermissionDenied(SourceError):
    pass


class RequestRejected(SourceError):
    pass


class ProxyHasNoDatabase(SourceError):
    pass


class MalformedResponse(SourceError):
    # A truncated body is usually a proxy or network hiccup; retry a few times before giving up.
    retryable = True


class ProxyUnavailable(SourceError):
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, source=source, status=status)
        self.retry_after = retry_after
