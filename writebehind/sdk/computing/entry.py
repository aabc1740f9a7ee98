"""Computed values in Redis: their BSON encoding, their stamps, the scripts' replies (no IO).

A value is stored as the BSON document ``{"v": value}`` (never pickled: an
entry tampered with in Redis can at worst fail to decode, which is a miss).
Its stamps are the generation values and dependency versions captured before
the computation ran, joined by ``,`` in the order of ``Plan.stamp_keys``
(generations are decimal µs; a dependency's is its version, a ``<ms>-<seq>``
stream id, ``/`` the SHA-1 hex of its cache entry's body: no commas).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions
from bson.errors import InvalidDocument as BsonInvalidDocument

from writebehind.core.errors import NotDecodable, NotEncodable
from writebehind.core.replies import as_text

NO_STAMP = ""
"""A captured dependency with no cache entry: its version is unknown, nothing is stored."""


def encode_value(value: Any, options: CodecOptions[Any]) -> bytes:
    """The value as BSON (``{"v": value}``). Tuples come back as lists, like any BSON array.

    Raises ``NotEncodable`` (an ``InvalidInput``) for what BSON cannot hold (an
    object, a set, an int outside int64, a mapping with non-str keys).
    """
    try:
        return bson.encode({"v": value}, codec_options=options)
    except (BsonInvalidDocument, TypeError, OverflowError, ValueError) as exc:
        raise NotEncodable(
            f"a cached function returned a value BSON cannot encode ({type(value).__name__}): {exc}"
        ) from exc


def decode_value(body: bytes, options: CodecOptions[Any]) -> Any:
    """The value of an entry's body; ``NotDecodable`` for anything but ``{"v": ...}`` BSON."""
    try:
        doc = bson.decode(body, codec_options=options)
    except Exception as exc:  # bson raises several types for damaged input
        raise NotDecodable(f"a computed entry's body is not BSON: {exc}") from exc
    if set(doc) != {"v"}:
        raise NotDecodable(f"a computed entry's body has fields {sorted(doc)}, not just 'v'")
    return doc["v"]


def join_stamps(values: Sequence[str]) -> str:
    return ",".join(values)


def complete(values: Sequence[str]) -> bool:
    """Whether every stamp was captured (a dependency without cache entry was not)."""
    return all(v != NO_STAMP for v in values)


def validator(entry: str, stamps: str, body: bytes) -> str:
    """A stable name of a stored value: its entry key, its stamps and its BSON body
    (``b""`` for ``None``).

    The same in every process and after restarts; different for another entry
    (another function, key or namespace), after any tag, namespace or
    dependency changed, and whenever the value differs, even under the same
    stamps (``invalidate``, ``refresh`` or an expiry move no generation): so it
    can be a strong ETag's basis (RFC 9110 section 8.8.3). Hex, 32 characters.
    """
    digest = hashlib.sha256(f"{entry}\n{stamps}\n".encode())
    digest.update(hashlib.sha256(body).digest())
    return digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class CheckReply:
    """The CHECK script's reply.

    ``status``: ``hit`` (a current entry: its fields follow), ``miss`` (none
    current, no lease asked), ``lease`` (this caller holds the fill lease now),
    ``wait`` (another caller holds it). ``reason`` why no entry was served:
    ``miss`` (none), ``generation`` (a tag or namespace was invalidated since),
    ``dependency`` (a document in ``depends_on`` changed, or its cache entry is
    gone), ``shape`` (stored under other tags or dependencies), ``damaged`` (the
    key holds another Redis type), ``''`` on a hit.
    ``ttl_ms`` the entry's PTTL, ``load_ms`` how long its computation took.
    """

    status: str
    now_ms: int
    reason: str
    body: bytes | None = None
    negative: bool = False
    load_ms: int | None = None
    ttl_ms: int = -2
    stamps: str = ""


_STATUS = {"h": "hit", "m": "miss", "l": "lease", "w": "wait"}


def parse_check(reply: Sequence[Any]) -> CheckReply:
    """``{status, now ms, reason[, body, negative, load ms, pttl, stamps]}``."""
    status = _STATUS[as_text(reply[0])]
    now_ms, reason = int(reply[1]), as_text(reply[2])
    if status != "hit":
        return CheckReply(status, now_ms, reason)
    body, negative, load_ms, ttl_ms, stamps = reply[3:8]
    return CheckReply(
        status,
        now_ms,
        "",
        bytes(body),
        as_text(negative) == "1",
        int(load_ms) if as_text(load_ms).isdigit() else None,
        int(ttl_ms),
        as_text(stamps),
    )


def parse_capture(reply: Sequence[Any]) -> tuple[list[str], list[str]]:
    """``{values, reset}``: the captured values, in ``Plan.stamp_keys`` order (``NO_STAMP``
    for a missing entry), and the damaged generation keys CAPTURE reset."""
    values, reset = reply
    return [as_text(value) if value else NO_STAMP for value in values], parse_reset(reset)


def parse_reset(reset: Sequence[Any]) -> list[str]:
    """The generation keys a script reset because they held no counter (CAPTURE, BUMP)."""
    return [as_text(key) for key in reset]
