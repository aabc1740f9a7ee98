"""The record of a run: a Markdown table (targets met or missed) and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import report_more

DRAIN_RATIO = "x default worker's direct drain"
TARGETS = {
    "1a": ("`set` p50 x minimal XADD+SET script (paired median)", 1.15, "at most"),
    "2": ("`set_many` throughput x bare pipelined script", 0.85, "at least"),
    "3d": ("drain, direct: default worker x best bare loop", 0.9, "at least"),
    "3f": ("drain, 5 ms each way: default worker x best bare loop", 0.9, "at least"),
    "3ad": ("drain, direct: default worker x best fixed concurrency", 0.9, "at least"),
    "3af": ("drain, 5 ms each way: default worker x best fixed concurrency", 0.9, "at least"),
    "5": ("coalescing: MongoDB operations per acknowledged write", 0.2, "at most"),
    **report_more.TARGETS,
}


def measured(results: dict[str, Any]) -> dict[str, float]:
    c = results["comparisons"]
    out = {}
    if "1 set latency" in c:
        out["1a"] = c["1 set latency"]["kinds"]["sdk set"]["x minimal script (paired median)"]
    if "2 set_many throughput" in c:
        out["2"] = c["2 set_many throughput"]["throughput x bare (paired median)"]
    for key, name in (("d", "3 drain, direct"), ("f", "3 drain, 5 ms each way")):
        if name in c:
            out["3" + key] = c[name]["default x best bare"]
            out["3a" + key] = c[name]["default x best fixed"]
    if "5 coalescing" in c:
        out["5"] = c["5 coalescing"]["operations per write"]
    out.update(report_more.measured(c))
    return out


def markdown(results: dict[str, Any]) -> str:
    m, c = results["machine"], results["comparisons"]
    lines = [
        f"# Benchmark run ({results.get('mode', '?')}, {results.get('seconds', 0):.0f} s)",
        "",
        f"{m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}; {m['redis_server']}; "
        f"{m['mongodb_server']}; redis-py {m['redis_py']}, PyMongo {m['pymongo']}. "
        f"Load average at start: {m['load_at_start']}.",
        "",
        "| comparison | target | measured | met | load after |",
        "|---|---|---|---|---|",
    ]
    found = measured(results)
    loads = {
        "1a": "1 set latency", "2": "2 set_many throughput", "3d": "3 drain, direct",
        "3ad": "3 drain, direct", "3f": "3 drain, 5 ms each way",
        "3af": "3 drain, 5 ms each way", "5": "5 coalescing", **report_more.COMPARISON_OF,
    }  # fmt: skip
    for key, (what, target, sense) in TARGETS.items():
        if key not in found:
            lines.append(f"| {what} | {sense} {target} | not run | | |")
            continue
        value = found[key]
        met = value <= target if sense == "at most" else value >= target
        load = c[loads[key]]["load after"]
        lines.append(
            f"| {what} | {sense} {target} | {value:.2f} | {'yes' if met else '**no**'} | {load} |"
        )
    lines.append("")
    if "1 set latency" in c:
        lines += ["## 1. `set` latency (µs; ratios are medians of per-step paired ratios)", ""]
        lines += ["| kind | p50 | p99 | x minimal script | x MongoDB upsert | p99 x minimal p99 |"]
        lines += ["|---|---|---|---|---|---|"]
        for name, k in c["1 set latency"]["kinds"].items():
            lines.append(
                f"| {name} | {k['p50 us']:.0f} | {k['p99 us']:.0f} | "
                f"{k['x minimal script (paired median)']:.2f} | "
                f"{k['x mongodb upsert (paired median)']:.2f} | "
                f"{k['p99 x minimal script p99']:.2f} |"
            )
        lines.append("")
    if "2 set_many throughput" in c:
        t = c["2 set_many throughput"]
        lines += [
            f"## 2. `set_many` of {t['documents per call']} documents: "
            f"{t['sdk set_many docs/s']:,.0f} docs/s against {t['bare pipelined docs/s']:,.0f} "
            f"for the bare pipelined script: **{t['throughput x bare (paired median)']:.2f}x**",
            "",
        ]
    for name in ("3 drain, direct", "3 drain, 5 ms each way"):
        if name not in c:
            continue
        d = c[name]
        lines += [
            f"## {name} ({d['records']:,} records, one per document; records/s, median of "
            f"{d['rounds']} rounds)",
            "",
        ]
        lines += ["| variant | rec/s |", "|---|---|"]
        for size, rate in d["bare loop rec/s by batch size"].items():
            lines.append(f"| bare loop, batches of {size} | {rate:,.0f} |")
        for n, rate in d["fixed concurrency rec/s"].items():
            lines.append(f"| worker, --concurrency {n} | {rate:,.0f} |")
        lines.append(f"| **worker, defaults (adaptive)** | {d['default worker rec/s']:,.0f} |")
        limits = d["adaptive limit samples"]
        if limits:
            lines += [
                "",
                f"Adaptive limit while draining: from {min(limits)} to {max(limits)}, "
                f"mean {sum(limits) / len(limits):.1f}.",
            ]
        lines.append("")
    if "4 worker ceiling" in c:
        w = c["4 worker ceiling"]
        by = w["records/s without MongoDB, by processes"]
        shown = ", ".join(f"{n} process(es): {r:,.0f}/s" for n, r in by.items())
        versus = (
            f" (one process: {w[DRAIN_RATIO]:.1f}x its drain into SecantusDB)"
            if DRAIN_RATIO in w
            else ""
        )
        lines += [f"## 4. The worker's ceiling, MongoDB taken out of the path: {shown}{versus}", ""]
    if "5 coalescing" in c:
        z = c["5 coalescing"]
        lines += [
            f"## 5. Coalescing: {z['writes']:,} Zipfian (0.99) writes over {z['keys']:,} keys: "
            f"{z['mongodb operations']:,} MongoDB operations, "
            f"**{z['operations per write']:.3f} per write** (write-through: 1.0). "
            f"{z['distinct keys written']:,} keys were written: no coalescing can go below "
            f"{z['floor (distinct keys / writes)']:.3f} on this run.",
            "",
        ]
    if "6 lag at half capacity" in c:
        g = c["6 lag at half capacity"]
        lines += [
            "## 6. Lag at half the default worker's direct drain rate "
            f"({g['target rate/s']:,.0f}/s asked, {g['achieved rate/s']:,.0f}/s achieved, "
            f"{g['writes']:,} writes): "
            f"p50 **{g['lag p50 ms']:.1f} ms**, p99 **{g['lag p99 ms']:.1f} ms**",
            "",
        ]
    lines += report_more.sections(c)
    lines += [
        "Plots: `set_latency.png`, `drain.png`, `adaptive_limit.png`, `lag.png`, `memory.png`, "
        "`reads.png`, `ycsb_throughput.png`, `ycsb_read_cdf.png` (those of the comparisons run).",
        "",
    ]
    return "\n".join(lines)


def plots(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = results["comparisons"]
    if "1 set latency" in c:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, samples in c["1 set latency"]["samples_us"].items():
            ordered = sorted(samples)
            ax.plot(ordered, [i / len(ordered) for i in range(len(ordered))], label=name)
        ax.set_xscale("log")
        ax.set_xlabel("call latency (µs, log)")
        ax.set_ylabel("fraction of calls")
        ax.set_title("1. set latency, interleaved calls (CDF)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "set_latency.png", dpi=100)
        plt.close(fig)
    drains = [n for n in ("3 drain, direct", "3 drain, 5 ms each way") if n in c]
    if drains:
        fig, axes = plt.subplots(1, len(drains), figsize=(6 * len(drains), 4), squeeze=False)
        for ax, name in zip(axes[0], drains, strict=True):
            d = c[name]
            labels, values = [], []
            for size, rate in d["bare loop rec/s by batch size"].items():
                labels.append(f"bare {size}")
                values.append(rate)
            for n, rate in d["fixed concurrency rec/s"].items():
                labels.append(f"conc {n}")
                values.append(rate)
            labels.append("default")
            values.append(d["default worker rec/s"])
            ax.bar(labels, values, color=["grey"] * (len(labels) - 1) + ["tab:blue"])
            ax.set_title(name)
            ax.set_ylabel("records/s")
            ax.tick_params(axis="x", rotation=45)
        fig.tight_layout()
        fig.savefig(out / "drain.png", dpi=100)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for name in drains:
            limits = c[name]["adaptive limit samples"]
            ax.plot(
                [i * 0.01 for i in range(len(limits))], limits, label=name, drawstyle="steps-post"
            )
        ax.set_xlabel("seconds draining (the default runs of every round, back to back)")
        ax.set_ylabel("batches allowed in flight")
        ax.set_title("3. the adaptive limit while draining")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "adaptive_limit.png", dpi=100)
        plt.close(fig)
    if "6 lag at half capacity" in c:
        points = c["6 lag at half capacity"]["lag over time"]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot([p[0] for p in points], [p[1] for p in points], ".", markersize=2)
        ax.set_yscale("log")
        ax.set_xlabel("seconds since the first write")
        ax.set_ylabel("set returned -> in MongoDB (ms, log)")
        ax.set_title("6. lag at half the drain capacity")
        fig.tight_layout()
        fig.savefig(out / "lag.png", dpi=100)
        plt.close(fig)
    report_more.plots(c, out)
