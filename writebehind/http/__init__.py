"""HTTP caching from writebehind versions, framework-neutral (README, "HTTP caching").

- ``document_etag``/``validators_etag``: strong entity tags (RFC 9110 section 8.8.3),
  the same in every process and after restarts.
- ``parse_if_none_match``/``answer_not_modified``: ``If-None-Match`` (RFC 9110
  section 13.1.2) with weak comparison.
- ``CachePolicy``: ``Cache-Control`` (RFC 9111 section 5.2.2, RFC 5861) and ``Vary``.
- ``decide``: the 304-or-200 decision and its headers.

Starlette/FastAPI glue is in ``writebehind.http.starlette`` (the ``http`` extra);
importing this package imports no web framework.
"""

from __future__ import annotations

from writebehind.http.cache_control import CachePolicy
from writebehind.http.conditions import (
    ANY,
    answer_not_modified,
    none_match_fails,
    parse_if_none_match,
)
from writebehind.http.decision import Decision, counted, decide, response_headers
from writebehind.http.etag import EntityTag, document_etag, has_validator, validators_etag

__all__ = [
    "ANY",
    "CachePolicy",
    "Decision",
    "EntityTag",
    "answer_not_modified",
    "counted",
    "decide",
    "document_etag",
    "has_validator",
    "none_match_fails",
    "parse_if_none_match",
    "response_headers",
    "validators_etag",
]
