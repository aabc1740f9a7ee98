"""Every public method of the SDK's classes that can raise says what it raises.

A method "can raise" when its body has a ``raise`` or goes through the client's
``calling()`` guard (``ClientClosed`` after ``aclose()``); a class whose
constructor checks its arguments says what it raises in its own docstring.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

import pytest

import writebehind
from writebehind import http
from writebehind.settings import Settings

SDK_CLASSES = [
    writebehind.WriteBehind,
    writebehind.Collection,
    writebehind.CachedFunction,
    writebehind.Worker,
]
CHECKED_WHEN_MADE = [
    writebehind.ReadPolicy,
    writebehind.NearCache,
    writebehind.Version,
    writebehind.KeySpace,
    writebehind.WriteBehind,
    writebehind.CachedFunction,
    http.CachePolicy,
    http.EntityTag,
    Settings,
]


def _own_public_methods(cls: type) -> list[tuple[str, Any]]:
    found = []
    for name, member in vars(cls).items():
        if name.startswith("_") and name not in ("__call__", "__aenter__"):
            continue
        if inspect.isfunction(member):
            found.append((name, member))
    return found


def _can_raise(function: Any) -> bool:
    body = textwrap.dedent(inspect.getsource(function))
    return "raise " in body or "calling()" in body


def _says_what_it_raises(doc: str | None) -> bool:
    return doc is not None and "raise" in doc.lower()


@pytest.mark.parametrize("cls", SDK_CLASSES, ids=lambda c: c.__name__)
def test_public_methods_that_can_raise_name_what_they_raise(cls: type) -> None:
    silent = [
        name
        for name, method in _own_public_methods(cls)
        if _can_raise(method) and not _says_what_it_raises(inspect.getdoc(method))
    ]
    assert silent == []


@pytest.mark.parametrize("cls", CHECKED_WHEN_MADE, ids=lambda c: c.__name__)
def test_classes_checked_when_made_say_what_they_raise(cls: type) -> None:
    assert _says_what_it_raises(cls.__doc__), cls.__name__
