"""A cached function's ``depends_on`` documents: listing them, filling their cache
entries before a capture, and keeping near copies older than the capture out of the
computation's reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from writebehind.core.errors import InvalidInput, InvalidVersion
from writebehind.core.keys import encode_id, validate_collection_name
from writebehind.core.version import Version
from writebehind.sdk.computing.keys import Plan

if TYPE_CHECKING:
    from writebehind.sdk.client import WriteBehind
    from writebehind.sdk.collection import Collection


def listed(
    depends_on: Callable[..., Any] | None, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> list[tuple[str, Any]]:
    """The ``(collection, id)`` pairs ``depends_on`` gives for a call, duplicates dropped.

    Raises ``InvalidInput`` for anything but an iterable of 2-tuples (one pair alone
    included: the message says to return a list), or a bad collection name.
    """
    if depends_on is None:
        return []
    given = depends_on(*args, **kwargs)
    if isinstance(given, str | bytes) or not isinstance(given, Iterable):
        raise InvalidInput(f"depends_on must return (collection, id) pairs, not {given!r}")
    if isinstance(given, tuple) and len(given) == 2 and isinstance(given[0], str):
        raise InvalidInput(
            f"depends_on returned one pair {given!r:.80}: return a list of "
            "(collection, id) pairs, such as [(collection, id)]"
        )
    deps: list[tuple[str, Any]] = []
    for pair in given:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InvalidInput(f"depends_on must return (collection, id) pairs: {pair!r}")
        deps.append((validate_collection_name(pair[0]), pair[1]))
    return list(dict.fromkeys(deps))


async def fill_entries(wb: WriteBehind, readers: dict[str, Collection], plan: Plan) -> None:
    """Fill the dependencies' cache entries (fenced by version; negative entries for
    absent documents), so that their versions can be captured. ``readers`` caches the
    collections by name."""
    by_collection: dict[str, list[Any]] = {}
    for name, doc_id in plan.deps:
        by_collection.setdefault(name, []).append(doc_id)
    for name, ids in by_collection.items():
        reader = readers.get(name)
        if reader is None:
            reader = readers[name] = wb.collection(name)
        await reader.warm(ids)


def forget_older_near_copies(wb: WriteBehind, plan: Plan, values: Sequence[str]) -> None:
    """Evict near copies older than the versions captured (``values``, in
    ``plan.stamp_keys`` order; a dependency's is ``<version>/<sha1>``).

    The function may read its dependencies through a near cache, whose feed may
    not have applied those versions yet (it may lag ``max_stale``): a value made
    from an older copy would be stored under the newer stamp, and served until
    its TTL.
    """
    stamps = values[len(plan.generations) :]
    for (collection, doc_id), stamp in zip(plan.deps, stamps, strict=True):
        try:
            version = Version.parse(stamp.split("/", 1)[0])
        except InvalidVersion:  # no entry (''), or not written by the SDK: nothing to say
            continue
        wb.near.newer_seen(collection, encode_id(doc_id), version)
