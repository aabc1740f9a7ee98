"""Computed values' Redis keys, and the rendering of key and tag templates (no IO).

    {wb}:cv:<len>:<namespace>:<key>        computed entry (hash: b body, s stamps,
                                           k fingerprint, a negative, x load ms)
    {wb}:cvlease:<len>:<namespace>:<key>   its fill lease (owner token, short TTL)
    {wb}:cvfill:<len>:<namespace>:<key>    pub/sub channel: a fill of it ended
    {wb}:gen:t:<tag>                       a tag's generation (Redis µs)
    {wb}:gen:ns:<namespace>                a namespace's generation
    {wb}:gen:all                           every computed value's generation (a journal
                                           that overflowed bumps it)

The namespace is length-prefixed, so no (namespace, key) pair spells another.
Every key has the ``{<prefix>}`` hash tag: one slot (``cached`` refuses a cluster).
"""

from __future__ import annotations

import hashlib
import inspect
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bson
from bson.errors import InvalidDocument as BsonInvalidDocument
from bson.son import SON

from writebehind.core.codec import DEFAULT_CODEC_OPTIONS
from writebehind.core.errors import ConfigurationError, InvalidInput

_FIELD_HEAD = re.compile(r"[.\[]")


def entry_key(prefix: str, namespace: str, key: str) -> str:
    return f"{{{prefix}}}:cv:{len(namespace)}:{namespace}:{key}"


def lease_key(prefix: str, namespace: str, key: str) -> str:
    return f"{{{prefix}}}:cvlease:{len(namespace)}:{namespace}:{key}"


def lease_of(entry: str) -> str:
    """The lease key of an entry key (the prefix holds no colon: the first ``:cv:`` is ours)."""
    return entry.replace(":cv:", ":cvlease:", 1)


def channel_of(entry: str) -> str:
    """The fill channel of an entry key (as ``lease_of``)."""
    return entry.replace(":cv:", ":cvfill:", 1)


def fill_channel(prefix: str, namespace: str, key: str) -> str:
    return f"{{{prefix}}}:cvfill:{len(namespace)}:{namespace}:{key}"


def tag_generation(prefix: str, tag: str) -> str:
    return f"{{{prefix}}}:gen:t:{tag}"


def namespace_generation(prefix: str, namespace: str) -> str:
    return f"{{{prefix}}}:gen:ns:{namespace}"


def global_generation(prefix: str) -> str:
    return f"{{{prefix}}}:gen:all"


def check_name(what: str, value: Any) -> str:
    """A namespace, tag or key: a non-empty ``str``; else ``InvalidInput``."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} must be a non-empty str: {value!r}")
    return value


def check_template(template: str, parameters: Sequence[str], what: str) -> None:
    """Refuse a template naming no parameter of the function, at decoration time.

    Templates are ``str.format`` templates over the arguments by name
    (``"profile:{user_id}"``, ``"{user.id}"``); positional fields are refused.
    Raises ``ConfigurationError``.
    """
    if not isinstance(template, str) or not template:
        raise ConfigurationError(f"{what} must be a non-empty str template: {template!r}")
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template)]
    except ValueError as exc:
        raise ConfigurationError(f"{what} {template!r} is not a format template: {exc}") from exc
    for field in fields:
        if field is None:
            continue
        head = _FIELD_HEAD.split(field, maxsplit=1)[0]
        if head not in parameters:
            raise ConfigurationError(
                f"{what} {template!r} names {{{field}}}, which is not a parameter of the "
                f"function ({', '.join(parameters) or 'none'})"
            )


def render(template: str, arguments: Mapping[str, Any], what: str) -> str:
    """The template filled with the bound arguments; ``InvalidInput`` if it cannot be."""
    try:
        text = string.Formatter().vformat(template, (), dict(arguments))
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} {template!r} cannot be filled: {exc!r}") from exc
    return check_name(what, text)


def bind(
    signature: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults applied; ``InvalidInput`` if they
    do not fit the signature (the call the function itself would refuse)."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidInput(f"arguments do not fit the function: {exc}") from exc
    bound.apply_defaults()
    return dict(bound.arguments)


def default_key(function: str, arguments: Mapping[str, Any]) -> str:
    """``<function>:<sha256 hex>`` of the canonical BSON of the arguments.

    Canonical: mappings with their fields sorted (at every depth), tuples as
    lists, under the SDK's codec options (UUIDs as subtype 4). So the key is the
    same in every process and after restarts (no ``hash()``). Raises
    ``InvalidInput`` for an argument BSON cannot encode (give ``key=`` then).
    """
    doc = SON([("f", function), ("a", [[name, _canonical(v)] for name, v in arguments.items()])])
    try:
        raw = bson.encode(doc, codec_options=DEFAULT_CODEC_OPTIONS)
    except (BsonInvalidDocument, TypeError, OverflowError, ValueError) as exc:
        raise InvalidInput(
            f"the arguments of {function} cannot make a cache key (BSON cannot encode them: "
            f"{exc}); give the decorator a key= template or callable"
        ) from exc
    return f"{function}:{hashlib.sha256(raw).hexdigest()}"


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        try:
            items = sorted(value.items())
        except TypeError as exc:
            raise InvalidInput(f"a mapping argument with unsortable keys: {exc}") from exc
        return SON((k, _canonical(v)) for k, v in items)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def call_key(key: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """A ``key=`` callable's key for the call; ``InvalidInput`` unless a non-empty ``str``."""
    return check_name("key", key(*args, **kwargs))


@dataclass(frozen=True, slots=True)
class Plan:
    """Every Redis key one call of a cached function touches.

    ``generations``: the tags', the namespace's and the global generation key;
    ``dependencies``: the cache entries of the documents in ``depends_on``
    (``deps`` names them as (collection, id)). ``fingerprint`` names the list of
    keys whose values an entry's stamps hold: an entry stored under another
    list (other tags, other dependencies) is stale.
    """

    namespace: str
    key: str
    tags: tuple[str, ...]
    entry: str
    lease: str
    channel: str
    generations: tuple[str, ...]
    dependencies: tuple[str, ...]
    deps: tuple[tuple[str, Any], ...]

    @property
    def stamp_keys(self) -> tuple[str, ...]:
        return self.generations + self.dependencies

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.stamp_keys).encode()).hexdigest()[:32]


def make_plan(
    prefix: str,
    namespace: str,
    key: str,
    tags: Sequence[str],
    deps: Sequence[tuple[str, Any]],
    dependency_entries: Sequence[str],
) -> Plan:
    """The plan of one call; ``tags`` are rendered, duplicates dropped in order."""
    unique = tuple(dict.fromkeys(tags))
    generations = [tag_generation(prefix, t) for t in unique]
    generations += [namespace_generation(prefix, namespace), global_generation(prefix)]
    return Plan(
        namespace,
        key,
        unique,
        entry_key(prefix, namespace, key),
        lease_key(prefix, namespace, key),
        fill_channel(prefix, namespace, key),
        tuple(generations),
        tuple(dependency_entries),
        tuple(deps),
    )
