"""The settings object: precedence (flags, environment, .env), validation, secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from writebehind.core.errors import ConfigurationError
from writebehind.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in [n for n in __import__("os").environ if n.startswith("WRITEBEHIND_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # .env is read from the working directory
    return tmp_path


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.prefix, settings.partitions, settings.batch_size) == ("wb", 16, 500)
    assert settings.redis_url is None


def test_flags_beat_environment_beat_dotenv(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    (clean_environment / ".env").write_text(
        "WRITEBEHIND_BATCH_SIZE=7\nWRITEBEHIND_LINGER=9ms\nWRITEBEHIND_PREFIX=fromfile\n"
    )
    monkeypatch.setenv("WRITEBEHIND_BATCH_SIZE", "8")
    monkeypatch.setenv("WRITEBEHIND_LINGER", "10ms")
    settings = load_settings({"batch_size": 100, "linger": None})
    assert settings.batch_size == 100  # flag
    assert settings.linger == 0.01  # environment (the flag was not given)
    assert settings.prefix == "fromfile"  # .env


def test_errors_name_flag_and_variable_and_never_echo_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WRITEBEHIND_PARTITIONS", "not-a-number-secret")
    with pytest.raises(ConfigurationError) as info:
        load_settings({"batch_size": 0, "write_concern": "w=1;x"})
    message = str(info.value)
    assert "--partitions (WRITEBEHIND_PARTITIONS)" in message
    assert "--batch-size (WRITEBEHIND_BATCH_SIZE)" in message
    assert "--write-concern (WRITEBEHIND_WRITE_CONCERN)" in message
    assert "secret" not in message


def test_urls_are_secret_everywhere_but_the_driver() -> None:
    url = "rediss://user:p4ssw0rd@cache.example:6380/0?ssl_cert_reqs=required"
    mongo = "mongodb+srv://app:p4ssw0rd@cluster.example/db?tls=true"
    settings = load_settings({"redis_url": url, "mongo_url": mongo, "database": "db"})
    assert "p4ssw0rd" not in repr(settings)
    assert "p4ssw0rd" not in str(settings.model_dump())
    assert settings.secret("redis_url") == url
    assert settings.redacted("redis_url") == (
        "rediss://user:***@cache.example:6380/0?ssl_cert_reqs=required"
    )
    assert "p4ssw0rd" not in settings.redacted("mongo_url")
    assert "tls=true" in settings.redacted("mongo_url")


def test_missing_connection_settings_are_named() -> None:
    with pytest.raises(ConfigurationError, match=r"--mongo-url \(WRITEBEHIND_MONGO_URL\)"):
        load_settings({"redis_url": "redis://x"}).require("redis_url", "mongo_url", "database")


@pytest.mark.parametrize("w", ["1", "2", "majority", "dc_aware"])
def test_write_concern_forms(w: str) -> None:
    settings = Settings(write_concern=w)
    assert settings.w == (int(w) if w.isdigit() else w)


@pytest.mark.parametrize("w", ["0", "-1", "", "1.5", "w=1;x"])
def test_write_concerns_that_cannot_work_are_refused_up_front(w: str) -> None:
    # w=0 acknowledges nothing (and the driver refuses it with j=true). A tag
    # MongoDB does not know is refused when the worker starts (test_waiting.py).
    with pytest.raises(ConfigurationError, match=r"--write-concern \(WRITEBEHIND_WRITE_CONCERN\)"):
        Settings(write_concern=w)


def test_old_millisecond_names_are_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings({"linger_ms": "7", "claim_idle_ms": 1500}).linger == 0.007
    assert load_settings({"claim_idle_ms": 1500}).claim_idle == 1.5
    monkeypatch.setenv("WRITEBEHIND_READ_BLOCK_MS", "250")
    monkeypatch.setenv("WRITEBEHIND_CONSUMER_IDLE_MS", "60000")
    settings = load_settings()
    assert (settings.read_block, settings.consumer_idle) == (0.25, 60.0)
    assert Settings(linger_ms=2, claim_idle_ms=1000).claim_idle_ms == 1000


def test_a_new_name_beats_an_old_one_and_a_flag_beats_any_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WRITEBEHIND_LINGER_MS", "40")
    monkeypatch.setenv("WRITEBEHIND_LINGER", "2s")
    assert load_settings().linger == 2.0
    assert load_settings({"linger_ms": 10}).linger == 0.01
    assert load_settings({"linger": "1m", "linger_ms": 10}).linger == 60.0


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"linger_ms": "soon"}, "--linger-ms (WRITEBEHIND_LINGER_MS)"),
        ({"linger_ms": "-5"}, "--linger-ms (WRITEBEHIND_LINGER_MS)"),
        ({"linger": "5 parsecs"}, "--linger (WRITEBEHIND_LINGER)"),
    ],
)
def test_errors_name_the_option_as_it_was_given(flags: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(named)):
        load_settings(flags)


@pytest.mark.parametrize(
    ("value", "seconds"), [("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("45", 45.0)]
)
def test_durations_take_readable_forms(value: str, seconds: float) -> None:
    assert load_settings({"drain_timeout": value}).drain_timeout == seconds
