"""``If-None-Match`` (RFC 9110 section 13.1.2): parsing and evaluation (no IO).

The field is ``"*"`` or a list of entity tags (``#entity-tag``, section 5.6.1:
elements separated by commas with optional spaces or tabs around them, empty
elements allowed and ignored). Several field lines combine into one list
(section 5.3). A value that does not parse is ignored as a whole: the
request is then answered as if it had no precondition (a full 200), never
with a 304 taken from a value that could not be read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from writebehind.core.errors import InvalidInput
from writebehind.http.etag import EntityTag, checked_tag, is_etagc

ANY: Final = "*"
"""The parsed ``If-None-Match: *``: any current representation."""

IfNoneMatch = Literal["*"] | tuple[EntityTag, ...]
"""A parsed field: ``"*"`` or the tags listed (possibly none)."""

_OWS = " \t"
_SAFE_METHODS = ("GET", "HEAD")


def parse_if_none_match(values: str | Iterable[str] | None) -> IfNoneMatch | None:
    """The field's value(s) parsed, or ``None`` when absent or malformed.

    ``values`` is the field value, or every field line's value in order (a
    framework's ``headers.getlist("if-none-match")``). Malformed: anything
    outside the grammar, such as an unquoted tag, a ``"`` or control
    character inside one, a lower-case ``w/``, ``*`` within a list, or a
    character beyond Latin-1 (header bytes are read as Latin-1).
    """
    if values is None:
        return None
    lines = _lines(values)
    if not lines:
        return None
    text = ",".join(lines)
    if text.strip(_OWS) == ANY:
        return ANY
    tags: list[EntityTag] = []
    pos, end = 0, len(text)
    while pos < end:
        pos = _skip_ows(text, pos)
        if pos >= end:
            break
        if text[pos] == ",":  # an empty element
            pos += 1
            continue
        parsed = _entity_tag(text, pos)
        if parsed is None:
            return None
        tag, pos = parsed
        tags.append(tag)
        pos = _skip_ows(text, pos)
        if pos < end and text[pos] != ",":
            return None
        pos += 1
    return tuple(tags)


def _lines(values: Any) -> list[str]:
    """The field lines given; ``InvalidInput`` for anything but a ``str`` or ``str``s
    (a wrong type is the caller's mistake, not a malformed field)."""
    if isinstance(values, str):
        return [values]
    if isinstance(values, bytes) or not isinstance(values, Iterable):
        raise InvalidInput(
            f"If-None-Match must be given as a str or str lines, not {type(values).__name__}"
        )
    lines = list(values)
    for line in lines:
        if not isinstance(line, str):
            raise InvalidInput(f"an If-None-Match line must be a str, not {type(line).__name__}")
    return lines


def _parsed(condition: Any) -> bool:
    return isinstance(condition, tuple) and all(isinstance(t, EntityTag) for t in condition)


def _skip_ows(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _OWS:
        pos += 1
    return pos


def _entity_tag(text: str, pos: int) -> tuple[EntityTag, int] | None:
    """``[ W/ ] DQUOTE *etagc DQUOTE`` at ``pos`` (``W`` is case-sensitive: %s"W/")."""
    weak = text.startswith("W/", pos)
    if weak:
        pos += 2
    if pos >= len(text) or text[pos] != '"':
        return None
    close = text.find('"', pos + 1)
    if close < 0:
        return None
    opaque = text[pos + 1 : close]
    if not all(is_etagc(c) for c in opaque):
        return None
    return EntityTag(opaque, weak), close + 1


def none_match_fails(condition: IfNoneMatch | None, current: EntityTag | None) -> bool:
    """Whether ``If-None-Match`` evaluates to false (RFC 9110 section 13.1.2).

    ``current`` is the selected representation's tag, ``None`` when there is
    no current representation. ``"*"`` fails when there is one; a list fails
    when one of its tags matches ``current`` by weak comparison (``W/``
    ignored, section 8.8.3.2). An absent or malformed field never fails.
    Raises ``InvalidInput`` for a ``condition`` not parsed by ``parse_if_none_match``
    or a ``current`` that is not an ``EntityTag`` or ``None``.
    """
    checked_tag(current)
    if condition not in (None, ANY) and not _parsed(condition):
        raise InvalidInput(f"condition must be parse_if_none_match's result, not {condition!r:.60}")
    if condition is None:
        return False
    if condition == ANY:
        return current is not None
    return current is not None and any(tag.weak_match(current) for tag in condition)


def answer_not_modified(
    if_none_match: str | Iterable[str] | None,
    current: EntityTag | None,
    *,
    method: str = "GET",
) -> bool:
    """Whether to answer 304 (Not Modified) instead of the representation.

    RFC 9110 section 13.1.2: when the condition is false, a GET or HEAD is
    answered with 304; any other method would get 412 (Precondition Failed),
    which is not this function's business: it returns ``False`` for them.
    ``current`` is ``None`` when the resource has no current representation.
    Raises ``InvalidInput`` for arguments of the wrong type.
    """
    if not isinstance(method, str):
        raise InvalidInput(f"method must be a str, not {type(method).__name__}")
    checked_tag(current)
    if method.upper() not in _SAFE_METHODS:
        return False
    return none_match_fails(parse_if_none_match(if_none_match), current)
