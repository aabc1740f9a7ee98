"""The read path with a near cache in front: the process first, then Redis (``Reader``).

A near-cache hit answers with no Redis command. It is served only while the
change feed is within ``max_stale`` seconds of the streams' head; otherwise,
and on a miss, the read goes on to ``Reader`` and its answer is kept, with its
version, unless the feed saw a newer write or an invalidation of that
document while the read was in flight (``store.Ticket``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import bson

from writebehind.core.codec import decode_document
from writebehind.core.keys import encode_id
from writebehind.core.version import Version
from writebehind.sdk.metrics import SDK_NEAR_READS, SDK_READS
from writebehind.sdk.reading.policy import ReadPolicy
from writebehind.sdk.reading.reader import Answer, Reader

if TYPE_CHECKING:
    from writebehind.sdk.client import WriteBehind

_OUTCOMES = ("hit", "negative_hit")
_KEPT_LEVELS = ("redis", "mongodb")
"""Answers worth keeping: a degraded answer (Redis unreachable) is not, the feed is down too."""


class NearReader(Reader):
    """A ``Reader`` with the collection's near cache in front of it."""

    def __init__(self, wb: WriteBehind, collection: str, policy: ReadPolicy) -> None:
        super().__init__(wb, collection, policy)
        assert policy.near is not None
        self._near = policy.near
        self._layer = wb.near
        self._store = wb.near.store(collection, policy.near)
        # Label lookups cost as much as the hit itself: taken once.
        self._hits = SDK_NEAR_READS.labels(collection, "hit")
        self._misses = SDK_NEAR_READS.labels(collection, "miss")
        self._stale = SDK_NEAR_READS.labels(collection, "stale")
        self._answered = {o: SDK_READS.labels(collection, "near", o) for o in _OUTCOMES}

    def wrote(self, doc_id: Any, version: Version) -> None:
        """Read your own writes: this process's write evicts its near-cache copy at once."""
        self._store.written(encode_id(doc_id), version, "own_write")

    async def warm(self, ids: Iterable[Any]) -> int:
        """``Reader.warm``, filling the near cache too: a reply is kept only once the feed
        has its position, so warming (a start-up call, made before any read started the
        feed) first waits for that, for at most the policy's ``redis_timeout`` seconds."""
        await self._layer.wait_positioned(self.policy.redis_timeout)
        return await super().warm(ids)

    async def version(self, doc_id: Any) -> Version | None:
        """The near cache's version when it holds the document and may be served, else
        ``Reader.version`` (whose answer is not kept: it has no body to keep)."""
        key = encode_id(doc_id)
        self._layer.start()
        held = self._held({doc_id: key}).get(doc_id)
        if held is not None:
            return self._versioned(doc_id, held).version
        return await super().version(doc_id)

    async def _answers(self, ids: Iterable[Any]) -> dict[Any, Answer]:
        wanted = list(dict.fromkeys(ids))
        keys = {doc_id: encode_id(doc_id) for doc_id in wanted}  # bad ids raise first
        if not keys:
            return {}
        self._layer.start()
        answers = self._held(keys)
        rest = [doc_id for doc_id in wanted if doc_id not in answers]
        if rest:
            answers.update(await self._through(rest, keys))
        return {doc_id: answers[doc_id] for doc_id in wanted}

    def _held(self, keys: dict[Any, str]) -> dict[Any, Answer]:
        """The near cache's answers, if it may be served now."""
        if not self._layer.servable(self._near):
            self._stale.inc(len(keys))
            return {}
        now = time.monotonic()
        answers: dict[Any, Answer] = {}
        for doc_id, key in keys.items():
            held = self._store.get(key, now)
            if held is None:
                continue
            doc = None if held.doc is None else decode_document(held.doc, self._wb.codec_options)
            answers[doc_id] = Answer(doc, "near", held.outcome, version=held.version)
            self._answered[held.outcome].inc()
        if answers:
            self._hits.inc(len(answers))
        if len(keys) > len(answers):
            self._misses.inc(len(keys) - len(answers))
        return answers

    async def _through(self, ids: list[Any], keys: dict[Any, str]) -> dict[Any, Answer]:
        """Read ``ids`` from Redis (or MongoDB) and keep what the feed did not overtake."""
        tickets = {doc_id: self._store.begin(keys[doc_id]) for doc_id in ids}
        try:
            answers = await super()._answers(ids)
            now = time.monotonic()
            for doc_id, answer in answers.items():
                if answer.version is None or answer.level not in _KEPT_LEVELS:
                    continue
                body = (
                    None
                    if answer.doc is None
                    else bson.encode(answer.doc, codec_options=self._wb.codec_options)
                )
                outcome = "hit" if answer.doc is not None else "negative_hit"
                self._store.put(tickets[doc_id], body, answer.version, now, outcome)
        finally:
            for ticket in tickets.values():
                self._store.end(ticket)
        return answers
