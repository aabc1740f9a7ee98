"""Turn the fault suite's JSON lines (WRITEBEHIND_FAULT_REPORT) into docs/reliability.md tables.

Usage: python scripts/reliability_report.py FILE [--command CMD] [--seed SEED]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def load(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            rows.append(json.loads(line))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by[row["type"]].append(row)
    out = [
        "| fault type | trials | passed | writes acknowledged | unknown | failed | lost | "
        "stale overwrites | resurrections | dead letters expected / found | "
        "longest recovery (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    totals: defaultdict[str, int] = defaultdict(int)
    for kind in sorted(by):
        group = by[kind]
        fig = {
            "trials": len(group),
            "passed": sum(1 for r in group if r.get("ok")),
            "acknowledged": sum(r.get("acknowledged", 0) for r in group),
            "unknown": sum(r.get("unknown", 0) for r in group),
            "failed": sum(r.get("failed", 0) for r in group),
            "lost": sum(r.get("lost", 0) for r in group),
            "stale": sum(r.get("stale_overwrites", 0) for r in group),
            "resurrections": sum(r.get("resurrections", 0) for r in group),
            "dl_expected": sum(r.get("dead_letters_expected", 0) for r in group),
            "dl_found": sum(r.get("dead_letters_found", 0) for r in group),
        }
        for k, v in fig.items():
            totals[k] += v
        recovery = max((r.get("recovery_s", 0.0) for r in group), default=0.0)
        out.append(
            f"| `{kind}` | {fig['trials']} | {fig['passed']} | {fig['acknowledged']} | "
            f"{fig['unknown']} | {fig['failed']} | {fig['lost']} | {fig['stale']} | "
            f"{fig['resurrections']} | {fig['dl_expected']} / {fig['dl_found']} | {recovery:.2f} |"
        )
    out.append(
        f"| **all** | {totals['trials']} | {totals['passed']} | {totals['acknowledged']} | "
        f"{totals['unknown']} | {totals['failed']} | {totals['lost']} | {totals['stale']} | "
        f"{totals['resurrections']} | {totals['dl_expected']} / {totals['dl_found']} | |"
    )
    return "\n".join(out)


def failures(rows: list[dict[str, Any]]) -> str:
    bad = [r for r in rows if not r.get("ok")]
    if not bad:
        return "No trial failed."
    return "\n".join(
        f"- `{r['type']}` seed {r['seed']}: {str(r.get('error', '')).splitlines()[0]}" for r in bad
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--command", default="WRITEBEHIND_FAULT_REPORT=FILE make test-faults")
    parser.add_argument("--seed", default=None, help="the run's WRITEBEHIND_FAULT_SEED")
    args = parser.parse_args(argv)
    rows = load(args.file)
    if not rows:
        print(f"{args.file}: no trials", file=sys.stderr)
        return 1
    print(f"Command: `{args.command}`" + (f", seed `{args.seed}`" if args.seed else ""))
    print()
    print(table(rows))
    print()
    print(failures(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
