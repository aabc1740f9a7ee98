"""A FastAPI app serving writebehind documents with HTTP caching (README, "HTTP caching").

    WRITEBEHIND_REDIS_URL=redis://127.0.0.1:6379/0 \\
    WRITEBEHIND_MONGO_URL=mongodb://127.0.0.1:27017 \\
    uvicorn --app-dir examples http_app:app --port 8000

``WRITEBEHIND_DATABASE`` names the MongoDB database (default ``app``). A worker
(``writebehind worker``, same addresses) moves the writes on to MongoDB; reads
and writes work without one.

- ``GET /users/{id}``: the document, ``ETag`` from its version; ``If-None-Match``
  with that tag gets a 304 answered from the version alone.
- ``PUT /users/{id}``: stores the JSON body as the document; the reply's JSON
  names the new version and the ``ETag`` a GET of it carries (no ``ETag``
  header: RFC 9110 section 9.3.4, the stored representation is not the PUT's
  content unchanged).
- ``GET /users/{id}/card``: a response computed from the document by a cached
  computation (``wb.cached``, README "Caching computations"): computed once,
  then served from Redis until the user document changes (``depends_on``), its
  tag is invalidated, or its TTL ends. Its ``ETag`` is made from the
  computation's validator (the versions and generations it was computed
  under), so a write to the user gives the card a new tag too.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from writebehind import CachedFunction, WriteBehind
from writebehind.http import CachePolicy, document_etag, validators_etag
from writebehind.http.starlette import conditional_response, document_response, not_found


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with WriteBehind(
        redis_url=os.environ.get("WRITEBEHIND_REDIS_URL", "redis://127.0.0.1:6379/0"),
        mongo_url=os.environ.get("WRITEBEHIND_MONGO_URL", "mongodb://127.0.0.1:27017"),
        database=os.environ.get("WRITEBEHIND_DATABASE", "app"),
    ) as wb:
        app.state.wb = wb
        app.state.card = make_card(wb)
        yield


app = FastAPI(lifespan=lifespan)


def users(request: Request) -> Any:
    return request.app.state.wb.collection("users")


@app.api_route("/users/{user_id}", methods=["GET", "HEAD"])  # FastAPI: HEAD is not implied
async def get_user(user_id: str, request: Request) -> Response:
    return await document_response(request, users(request), user_id)


@app.put("/users/{user_id}")
async def put_user(user_id: str, request: Request) -> Response:
    doc = await request.json()
    if not isinstance(doc, dict):
        raise HTTPException(422, "the body must be a JSON object")
    collection = users(request)
    version = await collection.set(user_id, doc)
    # No ETag header: RFC 9110 section 9.3.4 forbids a validator in a PUT's reply unless
    # the stored representation is the request's content unchanged, and a GET renders
    # it otherwise (with its _id, as Extended JSON). The tag a GET will carry is data here.
    tag = document_etag(collection.name, user_id, version)
    return JSONResponse({"version": str(version), "etag": str(tag)})


# -- a computed response: a cached computation ------------------------------


def make_card(wb: WriteBehind) -> CachedFunction[[str], dict[str, Any] | None]:
    """The user's card, cached in Redis and recomputed when the user document changes."""

    @wb.cached(
        ttl=300,
        key="card:{user_id}",
        tags=["user:{user_id}"],
        namespace="cards",
        depends_on=lambda user_id: [("users", user_id)],
    )
    async def card(user_id: str) -> dict[str, Any] | None:
        doc = await wb.collection("users").get(user_id)
        if doc is None:
            return None  # cached briefly: the read policy's negative TTL
        name = str(doc.get("name", ""))
        return {"id": user_id, "title": name.upper(), "initials": name[:1].upper()}

    return card


@app.api_route("/users/{user_id}/card", methods=["GET", "HEAD"])
async def get_card(user_id: str, request: Request) -> Response:
    computed = await request.app.state.card.validated(user_id)
    policy = CachePolicy.from_reads(users(request).reads)
    if computed.value is None:
        return not_found(policy)  # with Cache-Control: a 404 is heuristically cacheable
    # No validator when Redis was unavailable and the card was computed fresh: no ETag.
    etag = (
        validators_etag([computed.validator], resource=f"card:{user_id}")
        if computed.validator
        else None
    )
    return await conditional_response(request, etag, lambda: computed.value, policy)
