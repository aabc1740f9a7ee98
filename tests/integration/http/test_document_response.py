"""document_response in-process against real servers: 304 from the version alone, counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from writebehind import Collection, WriteBehind
from writebehind.http import CachePolicy, document_etag
from writebehind.http.starlette import document_response

pytestmark = pytest.mark.anyio


def served(status: str) -> float:
    value = REGISTRY.get_sample_value("writebehind_http_responses_total", {"status": status})
    return value or 0.0


class Holder:
    collection: Any = None


HOLDER = Holder()


async def user(request: Request) -> Response:
    policy = CachePolicy(max_age=0)
    return await document_response(request, HOLDER.collection, request.path_params["id"], policy)


APP = Starlette(routes=[Route("/users/{id}", user)])


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=APP), base_url="http://app"
    ) as http:
        yield http


async def test_a_304_reads_no_body_and_each_status_is_counted(
    wb: WriteBehind, redis: Redis, client: httpx.AsyncClient
) -> None:
    users = wb.collection("users")
    HOLDER.collection = users
    v = await users.set("u1", {"name": "Ada"})
    counts = {status: served(status) for status in ("200", "304", "404")}
    first = await client.get("/users/u1")
    assert first.status_code == 200 and first.json() == {"_id": "u1", "name": "Ada"}
    assert first.headers["etag"] == str(document_etag("users", "u1", v))
    entry = wb.keys.cache(wb.keys.partition_of("users", "u1"), "users", "u1")
    await redis.hset(entry, "d", b"not bson")  # a body no read could decode
    again = await client.get("/users/u1", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert (await client.get("/users/nobody")).status_code == 404
    assert served("200") == counts["200"] + 1
    assert served("304") == counts["304"] + 1
    assert served("404") == counts["404"] + 1


class WriteAfterVersion:
    """A collection where another write lands between the version read and the body read."""

    def __init__(self, real: Collection) -> None:
        self.real = real
        self.name = real.name
        self.reads = real.reads

    async def version(self, doc_id: Any) -> Any:
        version = await self.real.version(doc_id)
        await self.real.set(doc_id, {"name": "newer"})
        return version

    async def get_versioned(self, doc_id: Any) -> Any:
        return await self.real.get_versioned(doc_id)


async def test_the_200_carries_the_tag_of_the_body_it_sends(
    wb: WriteBehind, client: httpx.AsyncClient
) -> None:
    users = wb.collection("users")
    await users.set("u2", {"name": "old"})
    HOLDER.collection = WriteAfterVersion(users)
    response = await client.get("/users/u2", headers={"If-None-Match": '"something else"'})
    assert response.status_code == 200
    assert response.json() == {"_id": "u2", "name": "newer"}
    newest = await users.version("u2")
    assert newest is not None
    assert response.headers["etag"] == str(document_etag("users", "u2", newest))


async def test_a_404_says_how_it_may_be_cached(wb: WriteBehind, client: httpx.AsyncClient) -> None:
    """A 404 is heuristically cacheable (RFC 9111 section 4.2.2): without Cache-Control a
    shared cache may keep answering 404 after the document is created. It carries the
    policy's Cache-Control and Vary, as a 200 would (before: no Cache-Control at all)."""
    users = wb.collection("users")
    HOLDER.collection = users
    missing = await client.get("/users/nobody")
    assert missing.status_code == 404
    assert missing.headers["cache-control"] == "private, max-age=0"  # the route's policy
    assert "etag" not in missing.headers
