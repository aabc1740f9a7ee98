"""One settings model for the worker and every command: ``Settings``.

The same fields, defaults and checks serve three ways of giving them:

- Python: ``Settings(batch_size=100)`` (an embedded ``Worker``); nothing is read
  from the environment.
- The CLI: flags, then ``WRITEBEHIND_*`` variables, then ``.env``
  (``load_settings``); the click options are derived from these fields
  (``writebehind.cli.common``).

Durations are seconds, given as a number or as ``250ms``, ``30s``, ``5m``,
``2h``, ``7d`` (``writebehind.durations``). The millisecond names of earlier
releases (``linger_ms``, ``claim_idle_ms``, ``read_block_ms``,
``consumer_idle_ms``; flags ``--linger-ms`` ...; ``WRITEBEHIND_LINGER_MS`` ...)
are accepted as aliases until 0.3, in milliseconds as before.

Connection URLs are ``SecretStr``: they may carry passwords, and a secret
never reaches a log line, an error message or ``--help``. Every error names
the option both ways it can be given, e.g. ``--batch-size
(WRITEBEHIND_BATCH_SIZE)``, and is a ``ConfigurationError``.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from writebehind.core.errors import ConfigurationError
from writebehind.core.keys import MAX_PARTITIONS, KeySpace
from writebehind.durations import parse_duration
from writebehind.observability.logs import redact_url

ENV_PREFIX = "WRITEBEHIND_"

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; also ``250ms``, ``30s``, ``5m``, ``2h``, ``7d``, ``1h30m``."""


def whole_seconds(value: object) -> float:
    """A duration that is a whole number of seconds (a Redis ``EXPIRE`` takes nothing finer)."""
    seconds = parse_duration(value)
    if seconds == seconds and seconds != int(seconds):
        raise ValueError("must be a whole number of seconds")
    return seconds


WholeSeconds = Annotated[int, BeforeValidator(whole_seconds)]
DURATION_PARSERS = (parse_duration, whole_seconds)

LEGACY_MS_ALIASES: dict[str, str] = {
    "linger_ms": "linger",
    "claim_idle_ms": "claim_idle",
    "read_block_ms": "read_block",
    "consumer_idle_ms": "consumer_idle",
}
"""Old millisecond names and the duration setting each stands for (until 0.3)."""


MONGO_AND_REDIS_FIELDS = frozenset(
    {"redis_url", "redis_cluster", "mongo_url", "database", "prefix", "partitions", "group",
     "log_level", "log_format", "read_preference"}
)  # fmt: skip
"""The connection settings every command shares; the rest are the worker's."""


def flag_of(field: str) -> str:
    return "--" + field.replace("_", "-")


def env_of(field: str) -> str:
    return ENV_PREFIX + field.upper()


def named(field: str) -> str:
    """``--batch-size (WRITEBEHIND_BATCH_SIZE)``: how an error names an option."""
    return f"{flag_of(field)} ({env_of(field)})"


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not a boolean")
    return value


Count = Annotated[int, BeforeValidator(_not_bool)]


def _problems(exc: ValidationError) -> str:
    """One ``--flag (VARIABLE): why`` per bad option; input values are never echoed."""
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            field = str(error["loc"][0])
            field = LEGACY_MS_ALIASES.get(field, field)
            problems.append(f"{named(field)}: {message}")
        else:
            problems.append(message)
    return "; ".join(problems)


class Settings(BaseModel):
    """Everything a worker or tool can be told. Defaults suit a local deployment.

    Frozen. Raises ``ConfigurationError`` naming each bad option (flag and
    variable); values are never echoed, since they may be secrets.
    """

    # A misspelt keyword is an error here (the environment subclass ignores strangers).
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    # -- connections (the commands; an embedded Worker is handed its clients) --
    redis_url: SecretStr | None = Field(None, description="Redis URL (redis:// or rediss://).")
    redis_cluster: bool = Field(
        False, description="The Redis URL names a node of a Redis Cluster (any node)."
    )
    mongo_url: SecretStr | None = Field(None, description="MongoDB URL.")
    database: str | None = Field(None, description="MongoDB database.")
    prefix: str = Field("wb", description="Namespace of every Redis key.")
    partitions: Count = Field(
        16, ge=1, le=MAX_PARTITIONS, description="Partition streams, as the producers have."
    )
    group: str = Field("writebehind", min_length=1, description="Consumer group.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="Log lines: console on a terminal, else JSON (auto)."
    )

    # -- the worker --
    consumer: str = Field(
        default_factory=default_consumer_name,
        min_length=1,
        description="Consumer name. Default: host-pid-random.",
    )
    concurrency: Count | None = Field(
        None, gt=0, description="Batches in flight to MongoDB at once. Default: adaptive."
    )
    max_concurrency: Count = Field(
        8, gt=0, description="Most batches in flight while adaptive (no --concurrency)."
    )
    batch_size: Count = Field(500, gt=0, le=10_000, description="Records per batch.")
    linger: Duration = Field(0.005, ge=0, description="How long a part-filled batch waits.")
    read_block: Duration = Field(0.5, gt=0, description="How long one stream read blocks.")
    drain_timeout: Duration = Field(30.0, ge=0, description="Time to drain on SIGTERM.")
    claim_idle: Duration = Field(
        60.0, gt=0, description="Claim entries pending this long (crash recovery)."
    )
    claim_interval: Duration = Field(10.0, gt=0, description="How often to look for them.")
    max_deliveries: Count = Field(10, gt=0, description="Dead-letter entries delivered more often.")
    retention: Duration = Field(
        86_400.0, ge=0, description="How long acked records stay for replay."
    )
    trim_interval: Duration = Field(60.0, gt=0, description="How often streams are trimmed.")
    consumer_idle: Duration = Field(
        3600.0, ge=0, description="Remove consumers idle this long with nothing pending."
    )
    clean_ttl: WholeSeconds = Field(3600, ge=1, description="Cache TTL once persisted.")
    tombstone_grace: Duration = Field(
        7 * 86_400.0, ge=0, description="How long tombstones stay (at least --retention)."
    )
    hard_deletes: bool = Field(False, description="Delete outright instead of tombstones.")
    write_concern: str = Field(
        "majority", description="MongoDB w: a number from 1, 'majority' or a tag; always j=true."
    )
    read_preference: Literal[
        "primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest"
    ] = Field("primary", description="MongoDB read preference of the tools' reads.")
    backoff_base: Duration = Field(0.05, gt=0, description="First retry delay.")
    backoff_cap: Duration = Field(5.0, gt=0, description="Longest retry delay.")
    metrics_address: str | None = Field(
        "127.0.0.1:9108", description="host:port for /metrics /healthz /readyz; 'off' disables."
    )
    liveness_timeout: Duration = Field(
        120.0, gt=0, description="/healthz fails after a partition loop stalls this long."
    )
    gauge_interval: Duration = Field(
        5.0, gt=0, description="How often backlog gauges are refreshed."
    )
    outage_report_interval: Duration = Field(
        30.0, gt=0, description="How often an ongoing outage is summarised in the log."
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError(_problems(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _legacy_milliseconds(cls, data: Any) -> Any:
        """``linger_ms=5`` means ``linger=0.005``, unless ``linger`` is given too."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for old, new in LEGACY_MS_ALIASES.items():
            value = data.pop(old, None)
            if value is None or data.get(new) is not None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"{named(old)}: must be a number of milliseconds")
            try:
                data[new] = float(value) / 1000
            except ValueError:
                raise ValueError(
                    f"{named(old)} (deprecated; use {flag_of(new)}): must be a number of "
                    "milliseconds"
                ) from None
        return data

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        try:
            KeySpace(value, 1)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("write_concern")
    @classmethod
    def _w(cls, value: str) -> str:
        # w=0 cannot go with j=true (the driver refuses it), and an acknowledgement
        # is what makes an XACK safe. A tag name (a replica set's custom write concern)
        # is checked with MongoDB when the worker starts (worker/startup.py).
        text = value.strip()
        if text.isdigit() and int(text) >= 1:
            return str(int(text))
        if text.isidentifier():
            return text
        raise ValueError(
            "must be a number from 1 (w=0 would acknowledge nothing), 'majority', or a "
            "replica set's write concern tag"
        )

    @field_validator("metrics_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "off", "none"):
            return None
        _host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be host:port (IPv6 as [::1]:9108), or 'off'")
        return value

    @model_validator(mode="after")
    def _grace_covers_retention(self) -> Settings:
        if not self.hard_deletes and self.tombstone_grace < self.retention:
            raise ValueError(
                f"{named('tombstone_grace')} must be at least {named('retention')}, or a "
                "replay could resurrect a deleted document whose tombstone is gone "
                "(or choose --hard-deletes)"
            )
        return self

    # -- derived values ---------------------------------------------------------

    @property
    def keys(self) -> KeySpace:
        return KeySpace(self.prefix, self.partitions)

    @property
    def w(self) -> int | str:
        """The MongoDB ``w`` (always with ``j=true``)."""
        return int(self.write_concern) if self.write_concern.isdigit() else self.write_concern

    @property
    def write_concern_w(self) -> int | str:
        return self.w

    @property
    def write_concern_j(self) -> bool:
        return True

    # Redis commands take milliseconds (XREADGROUP BLOCK, XAUTOCLAIM min-idle-time).
    @property
    def linger_ms(self) -> int:
        return round(self.linger * 1000)

    @property
    def read_block_ms(self) -> int:
        return max(1, round(self.read_block * 1000))

    @property
    def claim_idle_ms(self) -> int:
        return max(1, round(self.claim_idle * 1000))

    @property
    def consumer_idle_ms(self) -> int:
        return round(self.consumer_idle * 1000)

    # -- secrets ------------------------------------------------------------------

    def secret(self, name: Literal["redis_url", "mongo_url"]) -> str:
        """The URL itself, for the driver; never log it (use ``redacted``)."""
        value = getattr(self, name)
        if value is None:
            raise ConfigurationError(f"{named(name)} is required for this command")
        return str(value.get_secret_value())

    def redacted(self, name: Literal["redis_url", "mongo_url"]) -> str:
        value = getattr(self, name)
        return "<unset>" if value is None else redact_url(value.get_secret_value())

    def require(self, *names: str) -> None:
        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise ConfigurationError("missing: " + ", ".join(named(n) for n in missing))


class _FromEnvironment(Settings, BaseSettings):
    """``Settings`` read from ``WRITEBEHIND_*`` variables and ``.env`` under the given values."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )


def load_settings(flags: dict[str, Any] | None = None) -> Settings:
    """Settings from flags (``None`` = not given), the environment and ``.env``.

    A flag beats its variable, also across the old millisecond names
    (``--linger-ms 10`` beats ``WRITEBEHIND_LINGER=1s``); a new variable beats
    an old one. Raises ``ConfigurationError`` naming each bad option as it was
    given; values are left out of the message, since they may be secrets.
    """
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    variables = _variables()
    used: dict[str, str] = {}
    for old, new in LEGACY_MS_ALIASES.items():
        if new in given:
            given.pop(old, None)
            continue
        if old in given:
            value = given.pop(old)
        elif env_of(new) not in variables and env_of(old) in variables:
            value = variables[env_of(old)]
        else:
            continue
        try:
            given[new] = float(value) / 1000
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"{named(old)}: must be a number of milliseconds (deprecated; use {flag_of(new)})"
            ) from None
        used[new] = old
    try:
        return _FromEnvironment(**given)
    except ConfigurationError as exc:
        message = str(exc)
        for new, old in used.items():
            message = message.replace(f"{named(new)}:", f"{named(old)} (deprecated alias):")
        raise ConfigurationError(message) from None


def _variables() -> dict[str, str]:
    """``WRITEBEHIND_*`` from ``.env``, overridden by the environment (as pydantic-settings)."""
    found = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    found.update(os.environ)
    return {k: v for k, v in found.items() if k.startswith(ENV_PREFIX)}
