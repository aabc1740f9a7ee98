"""Every module of the package imports, with whatever dependency versions are installed.

The floors run of `.ci/run` installs the lowest versions pyproject.toml allows
(redis-py 6.0, PyMongo 4.13): a name only a newer driver has
(``RedisClusterUnreachableError``, redis-py 8) once broke a worker module's import
there, and only for the tests that happened to import that module.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import writebehind

OPTIONAL = ("writebehind.http.starlette",)
"""Modules of an extra (``http``), skipped when the extra is not installed."""


def modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(writebehind.__path__, prefix="writebehind.")
        if not info.name.endswith("__main__")
    )


def test_the_walk_finds_the_package() -> None:
    assert "writebehind.worker.startup" in modules()


@pytest.mark.parametrize("name", modules())
def test_module_imports(name: str) -> None:
    if name.startswith(OPTIONAL):
        pytest.importorskip("starlette", reason="the http extra (starlette) is not installed")
    importlib.import_module(name)
