"""One settings object for every command: flags, then ``WRITEBEHIND_*`` variables, then ``.env``.

Connection URLs are ``SecretStr``: they may carry passwords (and TLS options
such as ``rediss://`` or ``?tls=true``), and a secret never reaches a log line,
an error message or ``--help``. Errors name the option both ways it can be
given, e.g. ``--batch-size (WRITEBEHIND_BATCH_SIZE)``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from writebehind.core.errors import ConfigurationError
from writebehind.observability.logs import redact_url

ENV_PREFIX = "WRITEBEHIND_"


def flag_of(field: str) -> str:
    return "--" + field.replace("_", "-")


def env_of(field: str) -> str:
    return ENV_PREFIX + field.upper()


class Settings(BaseSettings):
    """Everything a worker or tool can be told. Defaults suit a local deployment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    # Connections
    redis_url: SecretStr | None = Field(None, description="Redis URL (redis:// or rediss://).")
    mongo_url: SecretStr | None = Field(None, description="MongoDB URL.")
    database: str | None = Field(None, description="MongoDB database.")
    prefix: str = Field("wb", description="Namespace of every Redis key.")
    partitions: int = Field(16, ge=1, le=4096, description="Partition streams; as producers.")
    group: str = Field("writebehind", min_length=1, description="Consumer group.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

    # Worker
    consumer: str | None = Field(None, description="Consumer name. Default: host-pid-random.")
    concurrency: int = Field(4, gt=0, description="Batches in flight to MongoDB at once.")
    batch_size: int = Field(500, gt=0, le=10_000, description="Records per batch.")
    linger_ms: int = Field(5, ge=0, description="Wait for a fuller batch, in ms.")
    drain_timeout: float = Field(30.0, ge=0, description="Seconds to drain on SIGTERM.")
    claim_idle_ms: int = Field(60_000, gt=0, description="Claim entries pending this long.")
    max_deliveries: int = Field(10, gt=0, description="Dead-letter entries delivered more often.")
    retention: float = Field(86_400.0, ge=0, description="Seconds acked records stay for replay.")
    clean_ttl: int = Field(3600, gt=0, description="Cache TTL once persisted, in seconds.")
    tombstone_grace: float = Field(7 * 86_400.0, ge=0, description="Seconds tombstones stay.")
    hard_deletes: bool = Field(False, description="Delete outright instead of tombstones.")
    write_concern: str = Field("1", description="MongoDB w: a number or 'majority' (j=true).")
    metrics_address: str = Field(
        "127.0.0.1:9108", description="host:port for /metrics /healthz /readyz; 'off' disables."
    )

    @field_validator("write_concern")
    @classmethod
    def _w(cls, value: str) -> str:
        if not (value.isdigit() or value.isidentifier()):
            raise ValueError("must be a number or a tag such as 'majority'")
        return value

    @property
    def w(self) -> int | str:
        return int(self.write_concern) if self.write_concern.isdigit() else self.write_concern

    def secret(self, name: Literal["redis_url", "mongo_url"]) -> str:
        """The URL itself, for the driver; never log it (use ``redacted``)."""
        value = getattr(self, name)
        if value is None:
            raise ConfigurationError(
                f"{flag_of(name)} ({env_of(name)}) is required for this command"
            )
        return str(value.get_secret_value())

    def redacted(self, name: Literal["redis_url", "mongo_url"]) -> str:
        value = getattr(self, name)
        return "<unset>" if value is None else redact_url(value.get_secret_value())

    def require(self, *names: str) -> None:
        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise ConfigurationError(
                "missing: " + ", ".join(f"{flag_of(n)} ({env_of(n)})" for n in missing)
            )


def load_settings(flags: dict[str, Any] | None = None) -> Settings:
    """Settings from flags (``None`` = not given), the environment and ``.env``.

    Raises ``ConfigurationError`` naming each bad option; input values are left
    out of the message, since they may be secrets.
    """
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(f"{flag_of(field)} ({env_of(field)}): {error['msg']}")
        raise ConfigurationError("; ".join(problems)) from None
