"""Evaluate the dashboard's instant queries over scraped /metrics, as Prometheus would.

The expressions are parsed by ``promql-parser`` (the Rust PromQL parser the
GreptimeDB and others use); the evaluator covers the subset an instant gauge
panel needs: vector selectors with equality matchers, and ``sum``/``max``/
``min``/``count``/``avg`` with ``by``/``without``, nested. Each scrape gets an
``instance`` label, as Prometheus adds one per target. With ``counters_since_start``,
``rate(c[w])`` and ``increase(c[w])`` read the counter itself: its increase since
the processes started, which is what a window covering their whole life would
give (ratios of two such panels are then exact); otherwise range functions are
refused. Vector ``/`` vector matches series with the same labels (``__name__``
aside), as Prometheus's one-to-one matching does.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]

_FOLD: dict[str, Callable[[list[float]], float]] = {
    "sum": sum,
    "max": max,
    "min": min,
    "count": lambda values: float(len(values)),
    "avg": lambda values: sum(values) / len(values),
}


def scrape(instances: dict[str, str]) -> Vector:
    """Samples of several /metrics texts, by ``instance`` name; ``__name__`` is a label."""
    vector: Vector = {}
    for instance, text in instances.items():
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = {**sample.labels, "__name__": sample.name, "instance": instance}
                vector[frozenset(labels.items())] = float(sample.value)
    return vector


def evaluate(expression: str, samples: Vector, *, counters_since_start: bool = False) -> Vector:
    """The instant vector ``expression`` yields over ``samples``."""
    return _eval(promql_parser.parse(expression), samples, counters_since_start)


def scalar(expression: str, samples: Vector, *, counters_since_start: bool = False) -> float:
    """The one value of an expression that aggregates everything away."""
    result = evaluate(expression, samples, counters_since_start=counters_since_start)
    assert len(result) == 1, (expression, result)
    return next(iter(result.values()))


def _matches(matcher: Any, labels: dict[str, str]) -> bool:
    value = labels.get(matcher.name, "")
    if matcher.op == promql_parser.MatchOp.Equal:
        return bool(value == matcher.value)
    if matcher.op == promql_parser.MatchOp.NotEqual:
        return bool(value != matcher.value)
    if matcher.op == promql_parser.MatchOp.Re:
        return re.fullmatch(matcher.value, value) is not None
    raise AssertionError(f"unsupported matcher {matcher}")


def _eval(node: Any, samples: Vector, counters: bool) -> Vector:
    if isinstance(node, promql_parser.VectorSelector):
        out = {}
        for labels, value in samples.items():
            named = dict(labels)
            if node.name and named["__name__"] != node.name:
                continue
            if all(_matches(m, named) for m in node.matchers.matchers):
                out[labels] = value
        return out
    if isinstance(node, promql_parser.ParenExpr):
        return _eval(node.expr, samples, counters)
    if isinstance(node, promql_parser.Call) and str(node.func.name) in ("rate", "increase"):
        assert counters, f"range function {node.func.name}: pass counters_since_start=True"
        [matrix] = node.args
        return _eval(matrix.vector_selector, samples, counters)
    if isinstance(node, promql_parser.BinaryExpr) and str(node.op) == "/":
        lhs, rhs = _eval(node.lhs, samples, counters), _eval(node.rhs, samples, counters)
        out = {}
        for labels, value in lhs.items():
            key = _without_name(labels)
            match = [v for other, v in rhs.items() if _without_name(other) == key]
            if match and match[0] != 0:
                out[key] = value / match[0]
        return out
    if isinstance(node, promql_parser.AggregateExpr):
        inner = _eval(node.expr, samples, counters)
        groups: dict[Labels, list[float]] = defaultdict(list)
        for labels, value in inner.items():
            groups[_group(labels, node.modifier)].append(value)
        fold = _FOLD[str(node.op)]
        return {labels: float(fold(values)) for labels, values in groups.items()}
    raise AssertionError(f"unsupported in this evaluator: {type(node).__name__} {node}")


def _without_name(labels: Labels) -> Labels:
    return frozenset((k, v) for k, v in labels if k != "__name__")


def _group(labels: Labels, modifier: Any) -> Labels:
    if modifier is None:
        return frozenset()
    names = set(modifier.labels)
    if modifier.type == promql_parser.AggModifierType.Without:
        return frozenset((k, v) for k, v in labels if k not in names and k != "__name__")
    return frozenset((k, v) for k, v in labels if k in names)


def metric_names(expression: str) -> Iterable[str]:
    """Every metric an expression reads (for checking the dashboard against what is exported)."""
    return re.findall(r"\b(writebehind_[a-z_]+)", expression)
