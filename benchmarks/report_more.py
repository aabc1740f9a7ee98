"""The record of comparisons 7, 8 and 9: their measured targets, sections and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MEMORY = "7 worker memory"
READS = "8 reads"
YCSB = "9 ycsb"
WRITEBEHIND = "writebehind + near cache"
GROWTH = "growth (peak / start - 1)"
BACKLOGS = ("without MongoDB", "into SecantusDB")

TARGETS = {
    "7": ("worker RSS growth draining the large backlog, MongoDB out of the path", 0.1, "at most"),
    "7s": ("worker RSS growth draining a smaller backlog into SecantusDB", 0.1, "at most"),
    "8": ("`get`, Redis hit, x bare `HGET` of the entry (paired median)", 1.1, "at most"),
    "9A": ("YCSB A: writebehind ops/s x MongoDB alone", 3.0, "at least"),
    "9F": ("YCSB F: writebehind ops/s x MongoDB alone", 3.0, "at least"),
    **{
        f"9{w}+": (f"YCSB {w}: writebehind ops/s x the best other system", 1.0, "at least")
        for w in "ABCDF"
    },
}
COMPARISON_OF = {"7": MEMORY, "7s": MEMORY, "8": READS, **{k: YCSB for k in TARGETS if k[0] == "9"}}


def measured(c: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    if MEMORY in c:
        out["7"] = c[MEMORY]["without MongoDB"][GROWTH]
        out["7s"] = c[MEMORY]["into SecantusDB"][GROWTH]
    if READS in c:
        out["8"] = c[READS]["kinds"]["sdk get, redis hit"]["x baseline (paired median)"]
    if YCSB in c:
        for w, ratios in c[YCSB]["writebehind throughput ratios"].items():
            if w in "AF":
                out["9" + w] = ratios["x mongodb alone"]
            out[f"9{w}+"] = min(ratios.values())
    return out


def sections(c: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if MEMORY in c:
        lines += [
            "## 7. Worker memory draining a backlog (one record per document; RSS in MB)",
            "",
            "| backlog | sink | start | peak | end | growth | growth after the first tenth "
            "| drained rec/s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m in (c[MEMORY][k] for k in BACKLOGS):
            lines.append(
                f"| {m['records']:,} | {m['sink']} | {m['rss start MB']:.1f} | "
                f"{m['rss peak MB']:.1f} | {m['rss end MB']:.1f} | {m[GROWTH]:.1%} | "
                f"{m['growth over the last nine tenths']:.1%} | {m['records/s']:,.0f} |"
            )
        lines.append("")
    if READS in c:
        r = c[READS]
        lines += [
            f"## 8. Reads (µs; {r['steps']:,} interleaved steps; ratios are medians of "
            "per-step paired ratios)",
            "",
            "| kind | p50 | p99 | baseline | x baseline | p99 x baseline p99 | x bare HGET |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, k in r["kinds"].items():
            base = k.get("baseline")
            paired = f"{k['x baseline (paired median)']:.2f}" if base else ""
            tail = f"{k['p99 x baseline p99']:.2f}" if base else ""
            lines.append(
                f"| {name} | {k['p50 us']:.0f} | {k['p99 us']:.0f} | {base or ''} | {paired} | "
                f"{tail} | {k['x bare hget (paired median)']:.2f} |"
            )
        lines.append("")
    if YCSB in c:
        lines += _ycsb(c[YCSB])
    return lines


def _ycsb(y: dict[str, Any]) -> list[str]:
    lines = [
        f"## 9. YCSB ({y['records']:,} records of 10 fields x 100 bytes, Zipfian 0.99; "
        f"{y['concurrency']} tasks; {y['rounds']} rounds of {y['seconds per window']:g} s timed "
        f"after {y['warm-up seconds']:g} s of warm-up per workload and system, ops/s the median "
        "round, ratios the median of per-round ratios; caches warmed with the "
        f"{y['records warmed (most requested)']:,} most requested records, "
        f"{y['share of requests to them']:.0%} of requests)",
        "",
        "| workload | system | ops/s | writebehind x this | p50 / p99 µs per operation "
        "| backlog after each round (s to persist them) | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for w, by in y["workloads"].items():
        ratios = y["writebehind throughput ratios"][w]
        for system, window in by.items():
            ops = "; ".join(
                f"{op} {o['p50 us']:.0f} / {o['p99 us']:.0f}"
                for op, o in window["operations"].items()
                if o["count"]
            )
            ratio = ratios.get(f"x {system}")
            lines.append(
                f"| {w} | {system} | {window['ops/s']:,.0f} | "
                f"{'' if ratio is None else f'{ratio:.2f}'} | {ops} | "
                f"{_backlog(window)} | "
                f"{', '.join(f'{k} {v}' for k, v in window['errors'].items())} |"
            )
    lines += [
        "",
        "Where writebehind's reads were answered (SDK read counters, warm-up included):",
        "",
    ]
    for w, by in y["workloads"].items():
        outcomes = by[WRITEBEHIND].get("read outcomes", {})
        shown = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(outcomes.items()))
        lines.append(f"- {w}: {shown}")
    lines.append("")
    return lines


def _backlog(window: dict[str, Any]) -> str:
    if "backlog after window" not in window:
        return ""
    backlogs = " / ".join(f"{n:,}" for n in window["backlog after window"])
    return f"{backlogs} ({window['seconds to drain it']:.1f} s)"


def plots(c: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if MEMORY in c:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for m in (c[MEMORY][k] for k in BACKLOGS):
            points = m["rss over time [s, MB]"]
            label = f"{m['records']:,} records, sink: {m['sink']}"
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label)
        ax.set_xlabel("seconds draining")
        ax.set_ylabel("worker RSS (MB)")
        ax.set_ylim(bottom=0)
        ax.set_title("7. worker memory while draining")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "memory.png", dpi=100)
        plt.close(fig)
    if READS in c:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, samples in c[READS]["samples_us"].items():
            ordered = sorted(samples)
            ax.plot(ordered, [i / len(ordered) for i in range(len(ordered))], label=name)
        ax.set_xscale("log")
        ax.set_xlabel("call latency (µs, log)")
        ax.set_ylabel("fraction of calls")
        ax.set_title("8. reads, interleaved calls (CDF)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "reads.png", dpi=100)
        plt.close(fig)
    if YCSB in c:
        _ycsb_plots(c[YCSB], out, plt)


def _ycsb_plots(y: dict[str, Any], out: Path, plt: Any) -> None:
    workloads = list(y["workloads"])
    systems = list(y["workloads"][workloads[0]])
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(systems)
    for s, system in enumerate(sorted(systems)):
        values = [y["workloads"][w][system]["ops/s"] for w in workloads]
        ax.bar([i + s * width for i in range(len(workloads))], values, width, label=system)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(workloads))], workloads)
    ax.set_ylabel("operations/s")
    ax.set_title(f"9. YCSB throughput, {y['concurrency']} tasks, same client for every system")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "ycsb_throughput.png", dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(workloads), figsize=(4 * len(workloads), 3.5), sharey=True)
    for ax, w in zip(axes, workloads, strict=True):
        for system in sorted(systems):
            q = y["workloads"][w][system]["read quantiles us"]
            if q:
                ax.plot(q, [i / (len(q) - 1) for i in range(len(q))], label=system)
        ax.set_xscale("log")
        ax.set_xlabel("read latency (µs, log)")
        ax.set_title(f"workload {w}")
    axes[0].set_ylabel("fraction of reads")
    axes[-1].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "ycsb_read_cdf.png", dpi=100)
    plt.close(fig)
