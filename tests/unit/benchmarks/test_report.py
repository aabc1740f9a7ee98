"""Unit tests for the record of comparisons 7, 8 and 9 (benchmarks.report, report_more)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report, report_more, ycsb
from benchmarks.__main__ import arguments, chosen

SYSTEMS = ("writebehind + near cache", "write-through", "cache-aside", "mongodb alone")


def memory(records: int, start: float, peak: float) -> dict[str, Any]:
    return {
        "records": records,
        "sink": "none",
        "rss start MB": start,
        "rss peak MB": peak,
        "rss end MB": peak,
        "growth (peak / start - 1)": peak / start - 1,
        "growth over the last nine tenths": 0.001,
        "records/s": 1000.0,
        "rss over time [s, MB]": [[0.0, start], [1.0, peak]],
    }


def window(ops: float) -> dict[str, Any]:
    return {
        "ops/s": ops,
        "backlog after window": [1, 2],
        "seconds to drain it": 0.25,
        "operations": {"read": {"count": 10, "p50 us": 100.0, "p99 us": 900.0}},
        "errors": {},
        "read quantiles us": [10.0, 100.0, 1000.0],
    }


def results() -> dict[str, Any]:
    """Comparisons 7-9 only, shaped as the run writes them; writebehind 3.5x MongoDB on A."""
    ops = {"A": (3500, 900, 1200, 1000), "F": (2000, 500, 800, 1000)}
    workloads = {w: dict(zip(SYSTEMS, map(window, o), strict=True)) for w, o in ops.items()}
    ratios = {
        w: {f"x {s}": by[SYSTEMS[0]]["ops/s"] / by[s]["ops/s"] for s in SYSTEMS[1:]}
        for w, by in workloads.items()
    }
    kinds = {
        "bare hget": {"p50 us": 100.0, "p99 us": 300.0, "x bare hget (paired median)": 1.0},
        "sdk get, redis hit": {
            "p50 us": 200.0,
            "p99 us": 500.0,
            "x bare hget (paired median)": 2.0,
            "baseline": "bare hget",
            "x baseline (paired median)": 2.0,
            "p99 x baseline p99": 1.6,
        },
    }
    return {
        "mode": "quick",
        "seconds": 60,
        "machine": {
            "cores": 2,
            "memory_gb": 8,
            "python": "3.11",
            "redis_server": "Redis",
            "mongodb_server": "SecantusDB",
            "redis_py": "8",
            "pymongo": "4",
            "load_at_start": "1 1 1",
        },
        "comparisons": {
            "7 worker memory": {
                "without MongoDB": memory(1_000_000, 50.0, 54.0),
                "into SecantusDB": memory(20_000, 50.0, 60.0),
                "load after": "2 2 2",
            },
            "8 reads": {
                "steps": 2,
                "kinds": kinds,
                "samples_us": {"bare hget": [100.0, 110.0], "sdk get, redis hit": [200.0, 230.0]},
                "load after": "2 2 2",
            },
            "9 ycsb": {
                "records": 100_000,
                "concurrency": 16,
                "seconds per window": 3.0,
                "rounds": 3,
                "warm-up seconds": 1.0,
                "records warmed (most requested)": 10_000,
                "share of requests to them": 0.81,
                "workloads": workloads,
                "writebehind throughput ratios": ratios,
                "load after": "2 2 2",
            },
        },
    }


def test_targets_of_7_8_and_9_are_measured_and_judged() -> None:
    found = report.measured(results())
    assert found["7"] == pytest.approx(0.08)
    assert found["7s"] == pytest.approx(0.2)
    assert found["8"] == 2.0
    assert found["9A"] == pytest.approx(3.5)
    assert found["9F"] == pytest.approx(2.0)
    assert found["9A+"] == pytest.approx(3500 / 1200)  # the closest other system
    assert found["9F+"] == pytest.approx(2000 / 1000)
    text = report.markdown(results())
    lines = text.splitlines()

    def row(what: str) -> str:
        return next(line for line in lines if line.startswith(f"| {what} |"))

    assert row(report_more.TARGETS["7"][0]).endswith("| 0.08 | yes | 2 2 2 |")
    assert row(report_more.TARGETS["7s"][0]).endswith("| 0.20 | **no** | 2 2 2 |")
    assert row(report_more.TARGETS["8"][0]).endswith("| 2.00 | **no** | 2 2 2 |")
    assert row(report_more.TARGETS["9A"][0]).endswith("| 3.50 | yes | 2 2 2 |")
    assert row(report_more.TARGETS["9F"][0]).endswith("| 2.00 | **no** | 2 2 2 |")
    assert "not run" in row(report_more.TARGETS["9B+"][0])
    assert "not run" in row(report.TARGETS["1a"][0])
    assert "## 9. YCSB" in text
    assert "| A | mongodb alone | 1,000 | 3.50 |" in text
    assert "| 1 / 2 (0.2 s) |" in text


def test_plots_of_7_8_and_9_are_written(tmp_path: Path) -> None:
    # matplotlib comes with the dev extra (make bench), not with the test extra.
    pytest.importorskip("matplotlib", reason="matplotlib (the dev extra) is not installed")
    report.plots(results(), tmp_path)
    written = {p.name for p in tmp_path.iterdir()}
    assert written == {"memory.png", "reads.png", "ycsb_throughput.png", "ycsb_read_cdf.png"}


def test_every_comparison_runs_unless_only_names_some() -> None:
    assert arguments([]).only == "123456789"
    assert arguments(["--only", "9,7"]).only == "79"


def test_only_takes_comparison_numbers() -> None:
    assert chosen("7,8,9") == "789"
    assert chosen("9, 7") == "79"
    assert chosen("3,6") == "36"
    for bad in ("0", "10", "", "a", "7;8", "6"):
        with pytest.raises(argparse.ArgumentTypeError, match="comparison"):
            chosen(bad)


def test_rounds_are_summarised_by_their_median_and_pooled_latencies() -> None:
    rounds = [
        {"ops/s": ops, "times": {"read": [t] * 3}, "errors": errors}
        for ops, t, errors in ((100.0, 0.001, {}), (300.0, 0.002, {"X": 1}), (200.0, 0.003, {}))
    ]
    for r, backlog in zip(rounds, (5, 0, 7), strict=True):
        r |= {"backlog after window": backlog, "seconds to drain it": 0.5}
        r["read outcomes"] = {"near/hit": 2.0}
    out = ycsb.summary(rounds)
    assert out["ops/s"] == 200.0
    assert out["ops/s by round"] == [100.0, 300.0, 200.0]
    assert out["operations"]["read"]["count"] == 9
    assert out["operations"]["read"]["p50 us"] == pytest.approx(2000.0)
    assert out["errors"] == {"X": 1}
    assert out["backlog after window"] == [5, 0, 7]
    assert out["seconds to drain it"] == 1.5
    assert out["read outcomes"] == {"near/hit": 6.0}
    assert out["read quantiles us"][0] == 1000.0
    assert out["read quantiles us"][-1] == 3000.0


def test_ratios_are_medians_of_per_round_ratios() -> None:
    def rounds(*ops: float) -> list[dict[str, Any]]:
        return [{"ops/s": o} for o in ops]

    found = {
        SYSTEMS[0]: rounds(300, 100, 200),
        SYSTEMS[1]: rounds(100, 100, 100),  # 3, 1, 2: median 2
        SYSTEMS[2]: rounds(300, 10, 100),  # 1, 10, 2: median 2 (not 600 / 410)
        SYSTEMS[3]: rounds(100, 0, 100),  # a round of nothing: no ratio
    }
    assert ycsb.ratios(found) == {"x write-through": 2.0, "x cache-aside": 2.0}
