"""Starlette/FastAPI glue for ``writebehind.http`` (the ``http`` extra: ``pip install
"writebehind[http]"``). Nothing else in writebehind imports Starlette."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bson import json_util

from writebehind.http.cache_control import CachePolicy
from writebehind.http.decision import counted, decide, response_headers
from writebehind.http.etag import EntityTag, document_etag, has_validator
from writebehind.sdk.collection import Collection

try:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "writebehind.http.starlette needs Starlette: pip install 'writebehind[http]'"
    ) from exc

__all__ = ["Tagged", "conditional_response", "document_response", "not_found", "render_document"]

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Tagged:
    """A body with the tag of exactly that body, when it may differ from the tag the
    304 decision was made with (the resource changed in between)."""

    body: Any
    etag: EntityTag | None


BodyFactory = Callable[[], Any]
"""Makes the 200 body, sync or async: ``bytes``/``str`` (sent with ``media_type``), a
Starlette ``Response`` (sent as it is, with the headers added), a ``Tagged``, or
anything else, sent as JSON."""


def _if_none_match(request: Request) -> list[str]:
    return request.headers.getlist("if-none-match")


async def conditional_response(
    request: Request,
    etag: EntityTag | None,
    body_factory: BodyFactory,
    policy: CachePolicy | None = None,
    *,
    media_type: str = JSON,
) -> Response:
    """304 with ``ETag``, ``Cache-Control`` and ``Vary`` and no body when the request's
    ``If-None-Match`` matches ``etag`` (RFC 9110 sections 13.1.2, 15.4.5), else 200
    with the same headers and the body ``body_factory`` makes (called only then).

    ``policy`` defaults to ``CachePolicy()`` (``private``). A ``Tagged`` body
    replaces ``etag`` in the 200's headers. Counted in ``writebehind_http_responses_total``.
    """
    policy = policy or CachePolicy()
    decision = decide(_if_none_match(request), etag, policy, method=request.method)
    if decision.not_modified:
        counted(304)
        return Response(status_code=304, headers=decision.headers)
    body = body_factory()
    if inspect.isawaitable(body):
        body = await body
    headers = decision.headers
    if isinstance(body, Tagged):
        headers = response_headers(body.etag, policy)
        body = body.body
    response = _response(body, media_type)
    if response.status_code == 200:
        response.headers.update(headers)
    counted(response.status_code)
    return response


async def document_response(
    request: Request,
    collection: Collection,
    doc_id: Any,
    policy: CachePolicy | None = None,
    *,
    render: Callable[[dict[str, Any]], Any] | None = None,
) -> Response:
    """A document as an HTTP resource: 304 from its version alone (``Collection.version``:
    no body read), else 200 with the document and the tag of the version read with it
    (``get_versioned``), or 404 when it is absent.

    ``render`` turns the document into a body (default: Extended JSON, relaxed,
    so ObjectIds and datetimes survive). ``policy`` defaults to
    ``CachePolicy.from_reads(collection.reads)``. A document written to MongoDB
    directly (version ``0-0``) gets no ``ETag``. Raises as ``Collection.get``.
    """
    policy = policy or CachePolicy.from_reads(collection.reads)
    version = await collection.version(doc_id)
    if version is None:
        counted(404)
        return not_found(policy)
    current = document_etag(collection.name, doc_id, version) if has_validator(version) else None

    async def body() -> Any:
        read = await collection.get_versioned(doc_id)
        if read.document is None:  # deleted since the version was read
            return not_found(policy)
        etag = None
        if has_validator(read.version):
            assert read.version is not None
            etag = document_etag(collection.name, doc_id, read.version)
        return Tagged((render or render_document)(read.document), etag)

    return await conditional_response(request, current, body, policy)


def not_found(policy: CachePolicy) -> Response:
    """A JSON 404 with the policy's ``Cache-Control`` and ``Vary``: a 404 is heuristically
    cacheable (RFC 9111 section 4.2.2), so without them a shared cache may keep
    answering 404 after the resource is created."""
    return JSONResponse({"detail": "Not Found"}, status_code=404, headers=policy.headers())


def render_document(doc: dict[str, Any]) -> bytes:
    """A document as relaxed Extended JSON (MongoDB's JSON for BSON types), UTF-8."""
    return json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS).encode()


def _response(body: Any, media_type: str) -> Response:
    if isinstance(body, Response):
        return body
    if isinstance(body, bytes | str):
        return Response(body, media_type=media_type)
    return JSONResponse(body)
