"""Evaluate the dashboard's instant queries over scraped /metrics, as Prometheus would.

The expressions are parsed by ``promql-parser`` (the Rust PromQL parser the
GreptimeDB and others use); the evaluator covers the subset an instant gauge
panel needs: vector selectors with equality matchers, and ``sum``/``max``/
``min``/``count``/``avg`` with ``by``/``without``, nested. Each scrape gets an
``instance`` label, as Prometheus adds one per target. Range functions
(``rate``) are refused: counters are per worker, summing them is right.
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


def evaluate(expression: str, samples: Vector) -> Vector:
    """The instant vector ``expression`` yields over ``samples``."""
    return _eval(promql_parser.parse(expression), samples)


def scalar(expression: str, samples: Vector) -> float:
    """The one value of an expression that aggregates everything away."""
    result = evaluate(expression, samples)
    assert len(result) == 1, (expression, result)
    return next(iter(result.values()))


def _eval(node: Any, samples: Vector) -> Vector:
    if isinstance(node, promql_parser.VectorSelector):
        wanted = {("__name__", node.name)} if node.name else set()
        for matcher in node.matchers.matchers:
            assert matcher.op == promql_parser.MatchOp.Equal, f"unsupported matcher {matcher}"
            wanted.add((matcher.name, matcher.value))
        return {labels: v for labels, v in samples.items() if wanted <= labels}
    if isinstance(node, promql_parser.ParenExpr):
        return _eval(node.expr, samples)
    if isinstance(node, promql_parser.AggregateExpr):
        inner = _eval(node.expr, samples)
        groups: dict[Labels, list[float]] = defaultdict(list)
        for labels, value in inner.items():
            groups[_group(labels, node.modifier)].append(value)
        fold = _FOLD[str(node.op)]
        return {labels: float(fold(values)) for labels, values in groups.items()}
    raise AssertionError(f"unsupported in this evaluator: {type(node).__name__} {node}")


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
