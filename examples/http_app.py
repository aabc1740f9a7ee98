"""A FastAPI app serving writebehind documents with HTTP caching (README, "HTTP caching").

    WRITEBEHIND_REDIS_URL=redis://127.0.0.1:6379/0 \\
    WRITEBEHIND_MONGO_URL=mongodb://127.0.0.1:27017 \\
    uvicorn --app-dir examples http_app:app --port 8000

``WRITEBEHIND_DATABASE`` names the MongoDB database (default ``app``). A worker
(``writebehind worker``, same addresses) moves the writes on to MongoDB; reads
and writes work without one.

- ``GET /users/{id}``: the document, ``ETag`` from its version; ``If-None-Match``
  with that tag gets a 304 answered from the version alone.
- ``PUT /users/{id}``: stores the JSON body as the document; the reply carries
  the new version's ``ETag``.
- ``GET /users/{id}/card``: a response computed from the document, tagged with
  the validators it was computed from. This is the place for a cached
  computation: its ``validator`` goes where the version goes now.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from writebehind import WriteBehind
from writebehind.http import CachePolicy, document_etag, response_headers, validators_etag
from writebehind.http.starlette import Tagged, conditional_response, document_response


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with WriteBehind(
        redis_url=os.environ.get("WRITEBEHIND_REDIS_URL", "redis://127.0.0.1:6379/0"),
        mongo_url=os.environ.get("WRITEBEHIND_MONGO_URL", "mongodb://127.0.0.1:27017"),
        database=os.environ.get("WRITEBEHIND_DATABASE", "app"),
    ) as wb:
        app.state.wb = wb
        yield


app = FastAPI(lifespan=lifespan)


def users(request: Request) -> Any:
    return request.app.state.wb.collection("users")


@app.get("/users/{user_id}")
async def get_user(user_id: str, request: Request) -> Response:
    return await document_response(request, users(request), user_id)


@app.put("/users/{user_id}")
async def put_user(user_id: str, request: Request) -> Response:
    doc = await request.json()
    if not isinstance(doc, dict):
        raise HTTPException(422, "the body must be a JSON object")
    collection = users(request)
    version = await collection.set(user_id, doc)
    policy = CachePolicy.from_reads(collection.reads)
    headers = response_headers(document_etag(collection.name, user_id, version), policy)
    return JSONResponse({"version": str(version)}, headers=headers)


# -- a computed response: the spot for a cached computation -------------------


def card(doc: dict[str, Any]) -> dict[str, Any]:
    """What /users/{id}/card shows: computed from the document alone."""
    name = str(doc.get("name", ""))
    return {"id": doc["_id"], "title": name.upper(), "initials": name[:1].upper()}


@app.get("/users/{user_id}/card")
async def get_card(user_id: str, request: Request) -> Response:
    collection = users(request)
    version = await collection.version(user_id)
    if version is None:
        raise HTTPException(404, "Not Found")
    resource = f"card:{user_id}"
    etag = validators_etag([version], resource=resource)

    async def body() -> Tagged:
        read = await collection.get_versioned(user_id)
        if read.document is None or read.version is None:
            raise HTTPException(404, "Not Found")
        return Tagged(card(read.document), validators_etag([read.version], resource=resource))

    return await conditional_response(request, etag, body, CachePolicy.from_reads(collection.reads))
