"""One error hierarchy: every exception writebehind defines is a ``WriteBehindError``, and
every one but the internal ones is public as ``writebehind.errors``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import writebehind
from writebehind import errors
from writebehind.core import errors as core_errors

INTERNAL = {"BacklogRefused"}
"""Turned into ``BacklogFull`` (or waited out) by the SDK; callers never see it."""


def _defined() -> dict[str, type[BaseException]]:
    return {
        name: cls
        for name, cls in vars(core_errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == core_errors.__name__
    }


def test_every_exception_is_a_write_behind_error() -> None:
    assert [n for n, c in _defined().items() if not issubclass(c, errors.WriteBehindError)] == []


def test_every_exception_but_the_internal_ones_is_public() -> None:
    public = set(errors.__all__)
    assert set(_defined()) - INTERNAL == public
    assert all(getattr(errors, name) is getattr(core_errors, name) for name in public)


def test_no_exception_class_is_defined_outside_the_errors_module() -> None:
    # Private control-flow carriers (``_Transient``, ``_Refused``) never leave their module,
    # and the CLI's click exceptions are click's; anything else belongs in core/errors.py.
    allowed = {"_Transient", "_Refused", "UsageProblem", "Unavailable"}
    found = []
    for module_info in pkgutil.walk_packages(writebehind.__path__, "writebehind."):
        if module_info.name.endswith("__main__"):
            continue  # runs the command
        module = importlib.import_module(module_info.name)
        for name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, BaseException)
                and cls.__module__ == module.__name__
                and module.__name__ != core_errors.__name__
                and name not in allowed
            ):
                found.append(f"{module.__name__}.{name}")
    assert found == []
