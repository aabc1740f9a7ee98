"""docs/architecture.md's module table matches the tree, and pure modules have unit tests.

The table ("The code") lists every module of the package by folder, each with
whether it does IO. A row names modules in backticks: ``sdk/reading/xfetch.py``,
then ``breaker.py`` in the same folder; a folder (``cli/``) stands for every
module in it. Modules the table calls pure ("no") are the ones ``tests/unit``
mirrors one to one (``core/keys.py`` -> ``tests/unit/core/test_keys.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "writebehind"
PAGE = ROOT / "docs" / "architecture.md"
HEADER = "| module | role | IO? |"
IO_VALUES = {"yes", "no", "scripts", "sleeps"}

PURE_WITHOUT_OWN_TESTS = {
    # Only declarations: the metric objects and a re-export (of core/errors.py).
    "sdk/metrics.py",
    "http/metrics.py",
    "errors.py",
    "worker/settings.py",
    "worker/counters.py",
}
"""Pure modules with nothing to unit-test on their own, each for the reason given."""


def package_modules() -> set[str]:
    return {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }


def table_rows() -> list[tuple[list[str], str]]:
    """(the modules a row names, its IO cell) for each row of the module table."""
    lines = PAGE.read_text().splitlines()
    start = lines.index(HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        names, folder = [], ""
        for name in re.findall(r"`([^`]+)`", cells[0]):
            if "/" in name:
                folder = name.rpartition("/")[0]
                names.append(name)
            else:
                names.append(f"{folder}/{name}" if folder else name)
        rows.append((names, cells[-1]))
    return rows


def covered(name: str) -> set[str]:
    if name.endswith("/"):
        return {m for m in package_modules() if m.startswith(name)}
    return {name}


def io_of_each(names: list[str], io: str) -> list[str]:
    """``no; yes`` gives each module of a row its own answer, in order."""
    parts = [p.strip() for p in io.split(";")]
    return parts if len(parts) == len(names) else [io] * len(names)


def test_every_module_is_in_the_table_once_and_every_name_exists() -> None:
    listed: list[str] = []
    for names, _ in table_rows():
        for name in names:
            found = covered(name)
            assert found and all((PACKAGE / m).is_file() for m in found), name
            listed += sorted(found)
    assert sorted(set(listed)) == sorted(listed), "a module is listed twice"
    assert set(listed) == package_modules()


def test_the_table_goes_folder_by_folder() -> None:
    folders = [names[0].rstrip("/").rpartition("/")[0] for names, _ in table_rows()]
    runs = [f for i, f in enumerate(folders) if i == 0 or folders[i - 1] != f]
    assert len(runs) == len(set(runs)), f"a folder's rows are split: {runs}"


def test_every_row_says_whether_it_does_io() -> None:
    for names, io in table_rows():
        assert set(io_of_each(names, io)) <= IO_VALUES, (names, io)


def test_unit_tests_mirror_the_pure_modules() -> None:
    missing = []
    for names, io in table_rows():
        for name, answer in zip(names, io_of_each(names, io), strict=True):
            for module in covered(name):
                if answer != "no" or module in PURE_WITHOUT_OWN_TESTS:
                    continue
                path = Path(module)
                mirror = ROOT / "tests" / "unit" / path.parent / f"test_{path.name}"
                if not mirror.is_file():
                    missing.append(f"{module} -> {mirror.relative_to(ROOT)}")
    assert missing == []
