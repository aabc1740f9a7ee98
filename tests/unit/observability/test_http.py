"""Unit tests for writebehind.observability.http.parse_address: where /metrics listens."""

from __future__ import annotations

import pytest

from writebehind.core.errors import ConfigurationError, InvalidAddress
from writebehind.observability.http import parse_address


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9108", ("::1", 9108)),
        (":9108", ("127.0.0.1", 9108)),
    ],
)
def test_host_and_port(address: str, parts: tuple[str, int]) -> None:
    assert parse_address(address) == parts


@pytest.mark.parametrize("address", ["9108", "host:", "host:http", "host:65536", ""])
def test_anything_else_is_a_configuration_error(address: str) -> None:
    with pytest.raises(InvalidAddress, match="host:port") as info:
        parse_address(address)
    # A ValueError too, as before, and a ConfigurationError for embedders of Worker.
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ConfigurationError)
