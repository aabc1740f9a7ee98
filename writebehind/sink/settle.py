"""Settling a batch after a bulk write: what is acknowledged, dead-lettered or retried (no IO).

The rule, per document (a ``DocumentWrites`` whose newest record was written):

- written (``None``): the document is persisted; every record of it in the
  batch is acknowledged, the older ones being covered by the newest;
- refused for good (``Failure.PERMANENT``): the newest record is
  dead-lettered, and the next newest gets its turn in the next round, so the
  outcome does not depend on how records were batched; a document with no
  record left is done;
- anything else (transient): the document is retried as it is, after a backoff.

The worker (``BatchProcessor``) and the re-apply path of replay and
dead-letter re-drives (``sink.reapply.Reapplier``) both settle with this rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from writebehind.sink.classify import ErrorInfo, Failure
from writebehind.sink.guards import Pending
from writebehind.sink.plan import DocumentWrites


@dataclass(slots=True)
class Settlement:
    """One round's decisions, each list in the order of the documents given."""

    persisted: list[DocumentWrites] = field(default_factory=list)
    """Documents whose newest record is in MongoDB: acknowledge all their records."""
    refused: list[tuple[Pending, ErrorInfo]] = field(default_factory=list)
    """Records MongoDB refused for good, with why: dead-letter each."""
    retry: list[DocumentWrites] = field(default_factory=list)
    """Documents to write again: after a transient failure, or with the next newest record."""
    transient: ErrorInfo | None = None
    """The last transient failure of the round; ``None`` when there was none (retry at once)."""


def settle(groups: Sequence[DocumentWrites], results: Sequence[ErrorInfo | None]) -> Settlement:
    """Apply the rule above to one bulk write's per-document ``results``.

    ``results[i]`` is the outcome of writing ``groups[i].newest``. A refused
    document loses its newest record (``drop_newest``): the groups are updated
    in place. Raises ``ValueError`` when the two lengths differ (a caller bug).
    """
    if len(groups) != len(results):
        raise ValueError(f"{len(groups)} documents but {len(results)} results")
    out = Settlement()
    for group, result in zip(groups, results, strict=True):
        if result is None:
            out.persisted.append(group)
        elif result.kind is Failure.PERMANENT:
            out.refused.append((group.drop_newest(), result))
            if group.records:
                out.retry.append(group)
        else:
            out.transient = result
            out.retry.append(group)
    return out
