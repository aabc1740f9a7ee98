"""Unit tests for writebehind.observability.logs.redact_url: no password reaches a log line."""

from __future__ import annotations

import pytest

from writebehind.observability.logs import redact_url


@pytest.mark.parametrize(
    ("url", "secrets", "kept", "expected"),
    [
        (
            "redis://user:pw@host:6379/0",
            ["pw"],
            ["user", "host:6379", "/0"],
            "redis://user:***@host:6379/0",
        ),
        ("rediss://:pw@host", ["pw"], ["host"], "rediss://:***@host"),
        (
            "mongodb+srv://u:p%40ss@cluster/db?tls=true",
            ["p%40ss", "p@ss", "%40ss"],
            ["u:", "cluster", "/db", "tls=true"],
            "mongodb+srv://u:***@cluster/db?tls=true",
        ),
        (
            "mongodb://admin:s3cr3t@h1:27017,h2:27017/app?replicaSet=rs0",
            ["s3cr3t"],
            ["admin", "h1:27017,h2:27017", "replicaSet=rs0"],
            "mongodb://admin:***@h1:27017,h2:27017/app?replicaSet=rs0",
        ),
        (
            "redis://user:p@ss:word@host:6379",
            ["p@ss", "ss:word"],
            ["user", "host:6379"],
            "redis://user:***@host:6379",
        ),
        ("redis://u:@host", [], ["u", "host"], "redis://u:***@host"),
    ],
)
def test_redact_url_hides_password(
    url: str, secrets: list[str], kept: list[str], expected: str
) -> None:
    redacted = redact_url(url)
    for secret in secrets:
        assert secret not in redacted
    for part in kept:
        assert part in redacted
    assert redacted == expected


@pytest.mark.parametrize(
    "url",
    [
        "redis://host:6379/0",
        "redis://user@host:6379/0",
        "rediss://host",
        "mongodb://localhost:27017/db",
        "mongodb+srv://cluster.example.com/db?tls=true",
        "unix:///tmp/redis.sock",
        "",
    ],
)
def test_redact_url_without_password_is_unchanged(url: str) -> None:
    assert redact_url(url) == url


def test_redact_url_unparseable() -> None:
    assert redact_url("http://[::1") == "<unparseable url>"
