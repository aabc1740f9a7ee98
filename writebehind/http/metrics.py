"""The HTTP helpers' Prometheus metrics, in the application's default registry."""

from __future__ import annotations

from prometheus_client import Counter

HTTP_RESPONSES = Counter(
    "writebehind_http_responses",
    "Responses decided by writebehind.http's helpers, by status: 304 (not modified: "
    "If-None-Match matched the current ETag, answered from the version alone, no body), "
    "200 (the representation sent with its ETag), 404 (document_response: no such document).",
    ["status"],
)
