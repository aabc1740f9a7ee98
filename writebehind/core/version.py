"""Versions: a document's version is the id of the stream entry that carried it.

Stream ids are compared as the integer pair ``(ms, seq)``, never as text:
``"5-10"`` sorts before ``"5-9"`` as a string but is the newer entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from writebehind.core.errors import InvalidVersion

_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, order=True, slots=True)
class Version:
    """An immutable, totally ordered write version; ``str(v)`` is the stream id.

    ``collection``, ``doc_id`` and ``deleted`` say which document the write was
    for and whether it deleted it, so that ``wait_persisted(v)`` needs nothing
    else. They take no part in ordering or equality: two versions are equal when
    their stream ids are.

    Raises ``InvalidVersion`` when made with an ``ms`` or ``seq`` that is not an
    int in [0, 2**63).
    """

    ms: int
    seq: int
    collection: str | None = field(default=None, compare=False, repr=False)
    doc_id: Any = field(default=None, compare=False, repr=False)
    deleted: bool = field(default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        ms, seq = self.ms, self.seq
        # One test on the common path: every write and every read builds versions.
        if (
            type(ms) is int
            and type(seq) is int
            and 0 <= ms <= _INT64_MAX
            and 0 <= seq <= _INT64_MAX
        ):
            return
        for name, value in (("ms", ms), ("seq", seq)):
            if type(value) is not int or not 0 <= value <= _INT64_MAX:
                raise InvalidVersion(f"Version.{name} must be an int in [0, 2**63), got {value!r}")

    @classmethod
    def parse(
        cls,
        text: str | bytes,
        collection: str | None = None,
        doc_id: Any = None,
        deleted: bool = False,
    ) -> Version:
        """Parse a stream entry id such as ``"1718000000000-3"``; raises ``InvalidVersion``.

        ``collection``, ``doc_id``, ``deleted``: as ``for_document`` (one object, not two).
        """
        if isinstance(text, bytes):
            text = text.decode("ascii", errors="replace")
        ms, sep, seq = text.partition("-")
        if not sep or not _is_ascii_digits(ms) or not _is_ascii_digits(seq):
            raise InvalidVersion(f"not a stream entry id: {text!r}")
        return cls(int(ms), int(seq), collection, doc_id, deleted)

    @classmethod
    def from_pair(cls, pair: Any) -> Version:
        """Build from the ``[ms, seq]`` pair stored in MongoDB under ``_wb.v``.

        Raises ``InvalidVersion`` for anything but a pair of ints in [0, 2**63).
        """
        try:
            ms, seq = pair
            return cls(int(ms), int(seq))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidVersion):
                raise
            raise InvalidVersion(f"not a version pair [ms, seq]: {pair!r}") from None

    def as_pair(self) -> list[int]:
        return [self.ms, self.seq]

    def for_document(self, collection: str, doc_id: Any, deleted: bool = False) -> Version:
        return Version(self.ms, self.seq, collection, doc_id, deleted)

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


ZERO = Version(0, 0)
