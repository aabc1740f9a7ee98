"""MongoDB deployment settings: the write concern and read preferences, without servers."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient, ReadPreference
from redis.asyncio import Redis

from tests.support.cli import one_error_line, run_cli
from writebehind import WriteBehind
from writebehind.errors import ConfigurationError
from writebehind.settings import Settings
from writebehind.sink.bulk import MongoSink


def test_the_default_write_concern_is_majority_with_the_journal() -> None:
    settings = Settings()
    assert (settings.w, settings.write_concern_j) == ("majority", True)
    assert settings.read_preference == "primary"


def test_a_sink_without_a_concern_waits_for_a_journaled_majority() -> None:
    assert MongoSink(database=None, prefix="wb").write_concern.document == {
        "w": "majority",
        "j": True,
    }


def test_an_unknown_read_preference_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="--read-preference"):
        Settings(read_preference="fastest")
    result = run_cli("stats", "--redis-url", "redis://127.0.0.1:1", "--read-preference", "fastest")
    assert result.returncode == 2
    assert "--read-preference (WRITEBEHIND_READ_PREFERENCE)" in one_error_line(result)


@pytest.mark.anyio
async def test_the_sdk_reads_the_primary_whatever_the_handles_preference() -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        "mongodb://127.0.0.1:1/?readPreference=secondaryPreferred", connect=False
    )
    database = client["db"]
    assert database.read_preference == ReadPreference.SECONDARY_PREFERRED
    wb = WriteBehind(redis=Redis(), mongo=database)
    assert wb.mongo_collection("users").read_preference == ReadPreference.PRIMARY
    await client.close()
