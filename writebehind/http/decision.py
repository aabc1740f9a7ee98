"""The conditional GET decision: 304 or 200, and the headers either carries (no IO)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from writebehind.core.errors import InvalidInput
from writebehind.http.cache_control import CachePolicy
from writebehind.http.conditions import answer_not_modified
from writebehind.http.etag import EntityTag, checked_tag
from writebehind.http.metrics import HTTP_RESPONSES


@dataclass(frozen=True, slots=True)
class Decision:
    """``status`` is 304 (send no body) or 200 (send the representation); ``headers``
    are ``ETag``, ``Cache-Control`` and ``Vary``, the same for both (RFC 9110 section
    15.4.5: a 304 carries the fields a 200 would have, among them these three)."""

    status: int
    headers: dict[str, str]

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def response_headers(etag: EntityTag | None, policy: CachePolicy) -> dict[str, str]:
    """``ETag`` (when there is one) and the policy's ``Cache-Control`` and ``Vary``.

    Raises ``InvalidInput`` for an ``etag`` not an ``EntityTag`` (or ``None``), or a
    ``policy`` not a ``CachePolicy``.
    """
    checked_tag(etag)
    _checked_policy(policy)
    headers = {} if etag is None else {"ETag": str(etag)}
    headers.update(policy.headers())
    return headers


def decide(
    if_none_match: str | Iterable[str] | None,
    etag: EntityTag | None,
    policy: CachePolicy,
    *,
    method: str = "GET",
) -> Decision:
    """304 when ``If-None-Match`` fails for ``etag`` on a GET or HEAD (RFC 9110 section
    13.1.2), else 200. ``etag`` ``None``: no validator, never 304, not even for ``*``
    (which RFC 9110 would answer with 304 when a representation exists without a
    tag: a 200 is the safe answer, and only a document written to MongoDB directly,
    version ``0-0``, has one)."""
    _checked_policy(policy)
    not_modified = answer_not_modified(if_none_match, etag, method=method)
    return Decision(304 if not_modified else 200, response_headers(etag, policy))


def counted(status: int) -> None:
    """Count a response the helpers served (``writebehind_http_responses_total``).

    Raises ``InvalidInput`` for a ``status`` that is not an int HTTP status (100-599).
    """
    if type(status) is not int or not 100 <= status <= 599:
        raise InvalidInput(f"status must be an HTTP status code (an int, 100-599): {status!r}")
    HTTP_RESPONSES.labels(str(status)).inc()


def _checked_policy(policy: Any) -> None:
    if not isinstance(policy, CachePolicy):
        raise InvalidInput(f"policy must be a CachePolicy, not {type(policy).__name__}")
