"""Entity tags (RFC 9110 section 8.8.3) made from writebehind versions (no IO).

A tag is a quoted base64url SHA-256 digest, so it is the same in every process
and after every restart (never ``hash()``, which ``PYTHONHASHSEED`` changes).
A document's tag digests its collection, its id (type-tagged, as
``core.keys.encode_id`` writes it: ``42`` and ``"42"`` differ) and its
version: a tag taken from one document never matches another's. Every input is
length-prefixed before it is digested, so no two different inputs meet.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from writebehind.core.errors import InvalidEntityTag, InvalidInput
from writebehind.core.keys import encode_id
from writebehind.core.version import ZERO, Version

_DOCUMENT = "wb-document-1"
_PARTS = "wb-validators-1"


def is_etagc(char: str) -> bool:
    """RFC 9110 section 8.8.3: etagc = %x21 / %x23-7E / obs-text (%x80-FF)."""
    code = ord(char)
    return code == 0x21 or 0x23 <= code <= 0x7E or 0x80 <= code <= 0xFF


@dataclass(frozen=True, slots=True)
class EntityTag:
    """An entity tag: ``opaque`` is the text between the quotes; ``weak`` its ``W/`` prefix.

    ``str(tag)`` is the field value (``"abc"`` or ``W/"abc"``). Raises
    ``InvalidEntityTag`` when ``opaque`` holds a character an entity tag may
    not (RFC 9110 section 8.8.3: no ``"``, no spaces or controls).
    """

    opaque: str
    weak: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.opaque, str) or not all(is_etagc(c) for c in self.opaque):
            raise InvalidEntityTag(f"not an entity tag's opaque part: {self.opaque!r}")

    def __str__(self) -> str:
        return f'{"W/" if self.weak else ""}"{self.opaque}"'

    def strong_match(self, other: EntityTag) -> bool:
        """RFC 9110 section 8.8.3.2: both strong and the same opaque text."""
        return not self.weak and not other.weak and self.opaque == other.opaque

    def weak_match(self, other: EntityTag) -> bool:
        """RFC 9110 section 8.8.3.2: the same opaque text, ``W/`` or not."""
        return self.opaque == other.opaque


def checked_tag(etag: Any) -> EntityTag | None:
    """``etag`` if it is an ``EntityTag`` or ``None``; else ``InvalidInput``."""
    if etag is not None and not isinstance(etag, EntityTag):
        raise InvalidInput(
            f"expected an EntityTag or None, not {type(etag).__name__}: {etag!r:.60}"
        )
    return etag


def has_validator(version: Version | None) -> bool:
    """Whether ``version`` can make a tag: ``None`` (absent) and ``0-0`` cannot.

    ``0-0`` is the version of a document MongoDB holds without a writebehind
    version (written there directly): every such document has it, whatever
    its content, so it validates nothing. Raises ``InvalidInput`` for anything
    but a ``Version`` or ``None``.
    """
    if version is not None and not isinstance(version, Version):
        raise InvalidInput(f"expected a Version or None, not {type(version).__name__}")
    return version is not None and version != ZERO


def document_etag(collection: str, doc_id: Any, version: Version) -> EntityTag:
    """The strong tag of one document at one version (RFC 9110 section 8.8.3).

    Raises:
        InvalidInput: ``collection`` is not a non-empty ``str``, ``version`` is
            not a ``Version``, or it is ``0-0`` (see ``has_validator``).
        UnsupportedIdType: ``doc_id`` is not a type a document id can have.
    """
    if not isinstance(collection, str) or not collection:
        raise InvalidInput(f"a collection name must be a non-empty str: {collection!r}")
    if not isinstance(version, Version):
        raise InvalidInput(f"an entity tag needs a Version, not {type(version).__name__}")
    if not has_validator(version):
        raise InvalidInput("version 0-0 (a document written to MongoDB directly) validates nothing")
    return _tag(_DOCUMENT, [collection, encode_id(doc_id), str(version)])


def validators_etag(parts: Iterable[str | Version], *, resource: str = "") -> EntityTag:
    """The strong tag of a computed response, from what it was computed from.

    ``parts`` are the validators of its inputs, in a fixed order: document
    versions, generations, or the ``validator`` string of a cached
    computation. ``resource`` names the response (a route and its arguments,
    say), so that two responses computed from the same inputs get different
    tags. A ``Version`` and the ``str`` of its stream id give different tags.

    Raises ``InvalidInput`` for a part that is neither ``str`` nor ``Version``,
    or a ``resource`` that is not a ``str``.
    """
    if not isinstance(resource, str):
        raise InvalidInput(f"resource must be a str, not {type(resource).__name__}")
    if isinstance(parts, str | bytes) or not isinstance(parts, Iterable):
        raise InvalidInput(f"parts must be an iterable of str or Version, not {parts!r:.60}")
    fields = [resource]
    for part in parts:
        if isinstance(part, Version):
            fields.append("v" + str(part))
        elif isinstance(part, str):
            fields.append("s" + part)
        else:
            raise InvalidInput(f"a validator part must be a str or Version, not {part!r:.60}")
    return _tag(_PARTS, fields)


def _tag(kind: str, fields: list[str]) -> EntityTag:
    digest = hashlib.sha256()
    for text in [kind, *fields]:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return EntityTag(base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii"))
