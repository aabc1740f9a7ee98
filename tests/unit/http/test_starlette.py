"""The Starlette glue on an in-process app (httpx's ASGI transport; no servers)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from writebehind.http import CachePolicy, EntityTag
from writebehind.http.starlette import Tagged, conditional_response

TAG = EntityTag("v1")
POLICY = CachePolicy(max_age=0, vary=("Accept",))
made: list[str] = []


async def item(request: Request) -> Response:
    kind = request.query_params.get("kind", "json")

    async def body() -> Any:
        made.append(kind)
        if kind == "bytes":
            return b"raw"
        if kind == "tagged":
            return Tagged({"v": 2}, EntityTag("v2"))
        if kind == "missing":
            return PlainTextResponse("gone", status_code=404)
        return {"v": 1}

    return await conditional_response(request, TAG, body, POLICY)


APP = Starlette(routes=[Route("/item", item, methods=["GET", "PUT"])])
pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http


def served(status: str) -> float:
    value = REGISTRY.get_sample_value("writebehind_http_responses_total", {"status": status})
    return value or 0.0


async def test_200_with_etag_and_cache_control_then_304_without_a_body(
    client: httpx.AsyncClient,
) -> None:
    made.clear()
    before_200, before_304 = served("200"), served("304")
    first = await client.get("/item")
    assert first.status_code == 200
    assert first.json() == {"v": 1}
    assert first.headers["etag"] == '"v1"'
    assert first.headers["cache-control"] == "private, max-age=0"
    assert first.headers["vary"] == "Accept"
    again = await client.get("/item", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == '"v1"'
    assert again.headers["cache-control"] == "private, max-age=0"
    assert again.headers["vary"] == "Accept"
    assert made == ["json"]  # the 304 made no body
    assert served("200") == before_200 + 1
    assert served("304") == before_304 + 1


@pytest.mark.parametrize("header", ['"v0"', "v1", '"v1" junk', 'w/"v1"'])
async def test_no_match_or_a_malformed_header_gets_the_body(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.get("/item", headers={"If-None-Match": header})
    assert response.status_code == 200 and response.json() == {"v": 1}


async def test_several_field_lines_and_star(client: httpx.AsyncClient) -> None:
    lines = [("If-None-Match", '"a"'), ("If-None-Match", 'W/"v1"')]
    assert (await client.get("/item", headers=lines)).status_code == 304
    assert (await client.get("/item", headers={"If-None-Match": "*"})).status_code == 304


async def test_a_put_with_a_matching_tag_is_not_a_304(client: httpx.AsyncClient) -> None:
    assert (await client.put("/item", headers={"If-None-Match": '"v1"'})).status_code == 200


async def test_bodies_of_each_kind(client: httpx.AsyncClient) -> None:
    raw = await client.get("/item?kind=bytes")
    assert raw.content == b"raw" and raw.headers["content-type"].startswith("application/json")
    tagged = await client.get("/item?kind=tagged")
    assert json.loads(tagged.content) == {"v": 2}
    assert tagged.headers["etag"] == '"v2"'  # the tag of the body sent
    missing = await client.get("/item?kind=missing")
    assert missing.status_code == 404 and "etag" not in missing.headers


def test_importing_writebehind_http_imports_no_web_framework() -> None:
    code = (
        "import writebehind.http, sys\n"
        "print([m for m in sys.modules if m.split('.')[0] in ('starlette', 'fastapi')])"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
