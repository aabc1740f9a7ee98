"""The example app (examples/http_app.py) in uvicorn processes, over real HTTP.

Real redis-server and SecantusDB (the session's); no worker: reads and writes
go through Redis, and documents put in MongoDB directly stand for persisted ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.apps import AppProcess
from tests.support.servers import RedisServer

pytestmark = pytest.mark.anyio

StartApp = Callable[..., Awaitable[AppProcess]]


@pytest.fixture
async def start_app(
    redis_server: RedisServer,
    redis: Redis,  # flushed for this test
    mongo_url: str,
    mongo_db: Any,  # dropped after it
    database_name: str,
    tmp_path: Path,
) -> AsyncIterator[StartApp]:
    apps: list[AppProcess] = []

    async def start(hash_seed: str = "0") -> AppProcess:
        app = AppProcess(
            redis_url=redis_server.url,
            mongo_url=mongo_url,
            database=database_name,
            log_path=tmp_path / f"app-{len(apps)}.log",
            hash_seed=hash_seed,
        )
        apps.append(app)
        return await app.start()

    try:
        yield start
    finally:
        for app in apps:
            app.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def test_etag_304_and_a_new_etag_after_a_put(
    start_app: StartApp, http: httpx.AsyncClient
) -> None:
    app = await start_app()
    url = f"{app.url}/users/42"
    put = await http.put(url, json={"name": "Ada"})
    assert put.status_code == 200
    first = await http.get(url)
    assert first.status_code == 200
    assert first.json() == {"_id": "42", "name": "Ada"}
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    # The PUT's reply names the tag as data; as a header it would claim the PUT's content
    # is the representation (RFC 9110 section 9.3.4), and a GET renders it with its _id.
    assert "etag" not in put.headers
    assert put.json()["etag"] == etag
    assert first.headers["cache-control"] == "private, max-age=0, stale-if-error=3600"

    again = await http.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == first.headers["cache-control"]
    weak = await http.get(url, headers={"If-None-Match": f'"nope", W/{etag}'})
    assert weak.status_code == 304  # weak comparison, and a list

    await http.put(url, json={"name": "Ada", "age": 37})
    changed = await http.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json() == {"_id": "42", "name": "Ada", "age": 37}
    new_etag = changed.headers["etag"]
    assert new_etag != etag
    assert (await http.get(url, headers={"If-None-Match": new_etag})).status_code == 304


async def test_processes_with_different_hash_seeds_give_the_same_etag(
    start_app: StartApp, http: httpx.AsyncClient
) -> None:
    one = await start_app(hash_seed="1")
    two = await start_app(hash_seed="2")
    await http.put(f"{one.url}/users/7", json={"name": "Bo"})
    from_one = await http.get(f"{one.url}/users/7")
    from_two = await http.get(f"{two.url}/users/7")
    assert from_one.status_code == from_two.status_code == 200
    assert from_one.headers["etag"] == from_two.headers["etag"]
    conditional = {"If-None-Match": from_one.headers["etag"]}
    assert (await http.get(f"{two.url}/users/7", headers=conditional)).status_code == 304
    card_one = await http.get(f"{one.url}/users/7/card")
    card_two = await http.get(f"{two.url}/users/7/card")
    assert card_one.headers["etag"] == card_two.headers["etag"]


async def test_a_tag_of_another_resource_never_gives_304(
    start_app: StartApp, http: httpx.AsyncClient, mongo_db: Any
) -> None:
    # Two documents at the same version: versions are per partition stream, so
    # documents in different partitions can share one. Only the identity tells them apart.
    for doc_id in ("a", "b"):
        await mongo_db["users"].insert_one({"_id": doc_id, "name": doc_id, "_wb": {"v": [17, 1]}})
    app = await start_app()
    tag_a = (await http.get(f"{app.url}/users/a")).headers["etag"]
    b = await http.get(f"{app.url}/users/b", headers={"If-None-Match": tag_a})
    assert b.status_code == 200 and b.json() == {"_id": "b", "name": "b"}
    assert b.headers["etag"] != tag_a
    card = await http.get(f"{app.url}/users/a/card", headers={"If-None-Match": tag_a})
    assert card.status_code == 200  # the card of a is another resource than a
    assert card.json() == {"id": "a", "title": "A", "initials": "A"}
    card_tag = card.headers["etag"]
    assert card_tag != tag_a
    assert (
        await http.get(f"{app.url}/users/a/card", headers={"If-None-Match": card_tag})
    ).status_code == 304
    other_card = await http.get(f"{app.url}/users/b/card", headers={"If-None-Match": card_tag})
    assert other_card.status_code == 200


async def test_missing_users_and_malformed_conditions(
    start_app: StartApp, http: httpx.AsyncClient
) -> None:
    app = await start_app()
    assert (await http.get(f"{app.url}/users/nobody")).status_code == 404
    assert (await http.get(f"{app.url}/users/nobody/card")).status_code == 404
    missing = await http.get(f"{app.url}/users/nobody", headers={"If-None-Match": "*"})
    assert missing.status_code == 404  # * needs a current representation
    await http.put(f"{app.url}/users/1", json={"name": "Cy"})
    etag = (await http.get(f"{app.url}/users/1")).headers["etag"]
    for header in (etag[1:-1], f"{etag} {etag}", f"w/{etag}", f"*, {etag}"):
        response = await http.get(f"{app.url}/users/1", headers={"If-None-Match": header})
        assert response.status_code == 200, header  # malformed: ignored, never a 304
    star = await http.get(f"{app.url}/users/1", headers={"If-None-Match": "*"})
    assert star.status_code == 304
    assert (await http.put(f"{app.url}/users/1", json=[1, 2])).status_code == 422


async def test_the_card_is_a_cached_computation_recomputed_after_a_put(
    start_app: StartApp, http: httpx.AsyncClient, redis: Redis
) -> None:
    app = await start_app()
    await http.put(f"{app.url}/users/5", json={"name": "Di"})
    first = await http.get(f"{app.url}/users/5/card")
    assert first.status_code == 200 and first.json()["title"] == "DI"
    assert [key async for key in redis.scan_iter(match="*:cv:*card:5")]  # stored in Redis
    conditional = {"If-None-Match": first.headers["etag"]}
    again = await http.get(f"{app.url}/users/5/card", headers=conditional)
    assert again.status_code == 304 and again.content == b""
    # A write to the document it depends on: no invalidation call, a new card and tag.
    await http.put(f"{app.url}/users/5", json={"name": "Ed"})
    changed = await http.get(f"{app.url}/users/5/card", headers=conditional)
    assert changed.status_code == 200 and changed.json()["title"] == "ED"
    assert changed.headers["etag"] != first.headers["etag"]


async def test_head_is_answered_as_get_without_a_body(
    start_app: StartApp, http: httpx.AsyncClient
) -> None:
    """RFC 9110 section 9.3.2: HEAD is GET without the content (before: 405 from the
    example's routes, though the helpers answer HEAD with a 304 too)."""
    app = await start_app()
    await http.put(f"{app.url}/users/1", json={"name": "Di"})
    for path in ("/users/1", "/users/1/card"):
        got = await http.get(f"{app.url}{path}")
        head = await http.head(f"{app.url}{path}")
        assert head.status_code == 200, path
        assert head.content == b""
        assert head.headers["etag"] == got.headers["etag"]
        assert head.headers["cache-control"] == got.headers["cache-control"]
        again = await http.head(f"{app.url}{path}", headers={"If-None-Match": got.headers["etag"]})
        assert again.status_code == 304, path
    assert (await http.head(f"{app.url}/users/nobody")).status_code == 404


async def test_404s_carry_cache_control(start_app: StartApp, http: httpx.AsyncClient) -> None:
    """A 404 is heuristically cacheable (RFC 9111 section 4.2.2): it says how it may be
    kept, or a shared cache could answer 404 after the PUT that creates the user."""
    app = await start_app()
    for path in ("/users/nobody", "/users/nobody/card"):
        missing = await http.get(f"{app.url}{path}")
        assert missing.status_code == 404, path
        assert missing.headers["cache-control"].startswith("private, max-age=0"), path
