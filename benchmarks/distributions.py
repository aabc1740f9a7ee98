"""The request generators of comparisons 5 and 9 (no IO): Zipfian, scrambled Zipfian,
"latest", the YCSB core workloads' operation mixes, and records of 10 fields x 100 bytes.

The definitions follow YCSB's core workloads (Cooper et al., "Benchmarking Cloud
Serving Systems with YCSB", SoCC 2010, and YCSB's ``workloads/workload[a-f]``):
Zipfian constant 0.99; "zipfian" requests scrambled over the key space so the
popular keys are not neighbours; "latest" (workload D) skewed towards the most
recently inserted key. Two simplifications: the scrambling is a seeded
permutation of the key space (YCSB hashes ranks with FNV, which lets ranks
collide), and "latest" draws its rank from a Zipfian over the initial record
count (YCSB's grows with every insert; the ranks it can draw differ only past
the initial count).
"""

from __future__ import annotations

import bisect
import itertools
import random
import string
from collections.abc import Mapping
from dataclasses import dataclass

OPERATIONS = ("read", "update", "insert", "rmw")


class Zipf:
    """Ranks 0..n-1, drawn with probability proportional to 1 / (rank + 1) ** s (YCSB: s = 0.99)."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        if n < 1:
            raise ValueError(f"a Zipfian needs at least one item: {n}")
        self.n = n
        self.cdf = list(itertools.accumulate(1 / (k + 1) ** s for k in range(n)))
        self.rng = rng

    def __call__(self) -> int:
        return bisect.bisect_left(self.cdf, self.rng.random() * self.cdf[-1])


class ScrambledZipf:
    """Keys 0..n-1 with Zipfian popularity, the popular ones spread over the key space.

    Rank ``r`` (0 the most popular) is key ``permutation[r]``, the permutation
    seeded by ``rng``: every key keeps a distinct rank, unlike YCSB's FNV hash.
    """

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        self.zipf = Zipf(n, s, rng)
        self.keys = list(range(n))
        rng.shuffle(self.keys)

    def __call__(self) -> int:
        return self.keys[self.zipf()]


class InsertCounter:
    """Keys of inserts (workload D): handed out in order from ``start``, acknowledged in any
    order.

    ``acknowledged`` is the highest key below which every insert has returned,
    so a read of a key up to it never asks for a record still being inserted
    (YCSB's ``AcknowledgedCounterGenerator``).
    """

    def __init__(self, start: int) -> None:
        self.start = start
        self._next = start
        self.acknowledged = start - 1
        self._done: set[int] = set()

    def next_key(self) -> int:
        key = self._next
        self._next += 1
        return key

    def acknowledge(self, key: int) -> None:
        self._done.add(key)
        while self.acknowledged + 1 in self._done:
            self.acknowledged += 1
            self._done.discard(self.acknowledged)


class Latest:
    """Keys skewed towards the newest acknowledged insert: the newest minus a Zipfian rank.

    The sequence is the ``records`` loaded (keys 0..records-1), then this
    counter's inserts (keys from ``counter.start``, which may leave a gap so
    that several systems insert keys of their own); a rank past the start of
    the sequence gives key 0.
    """

    def __init__(self, counter: InsertCounter, records: int, s: float, rng: random.Random) -> None:
        self.counter = counter
        self.records = records
        self.zipf = Zipf(records, s, rng)

    def __call__(self) -> int:
        inserted = self.counter.acknowledged - self.counter.start + 1
        at = max(0, self.records + inserted - 1 - self.zipf())
        return at if at < self.records else self.counter.start + at - self.records


@dataclass(frozen=True)
class Workload:
    """One YCSB core workload: the share of each operation, and the request distribution."""

    name: str
    mix: Mapping[str, float]
    distribution: str  # "zipfian" or "latest"

    def __post_init__(self) -> None:
        unknown = set(self.mix) - set(OPERATIONS)
        if unknown or abs(sum(self.mix.values()) - 1.0) > 1e-9:
            raise ValueError(f"workload {self.name}: a mix of {OPERATIONS} summing to 1")

    def chooser(self, rng: random.Random) -> Chooser:
        return Chooser(self.mix, rng)


class Chooser:
    """Draws operations in the proportions of a mix."""

    def __init__(self, mix: Mapping[str, float], rng: random.Random) -> None:
        self.names = [name for name, share in mix.items() if share > 0]
        self.cumulative = list(itertools.accumulate(mix[name] for name in self.names))
        self.rng = rng

    def __call__(self) -> str:
        at = self.rng.random() * self.cumulative[-1]
        return self.names[min(len(self.names) - 1, bisect.bisect_right(self.cumulative, at))]


WORKLOADS = {
    "A": Workload("A", {"read": 0.5, "update": 0.5}, "zipfian"),
    "B": Workload("B", {"read": 0.95, "update": 0.05}, "zipfian"),
    "C": Workload("C", {"read": 1.0}, "zipfian"),
    "D": Workload("D", {"read": 0.95, "insert": 0.05}, "latest"),
    "F": Workload("F", {"read": 0.5, "rmw": 0.5}, "zipfian"),
}
"""YCSB's run order puts D last: its inserts grow the record count."""

FIELDS = 10
FIELD_LENGTH = 100


class Records:
    """Records of ``FIELDS`` fields (``field0``...) of ``FIELD_LENGTH`` characters each.

    Values come from a pool made once, so making a record costs every system
    the same little time and never dominates a call.
    """

    def __init__(self, rng: random.Random, pool: int = 256) -> None:
        letters = string.ascii_letters + string.digits
        self.values = ["".join(rng.choices(letters, k=FIELD_LENGTH)) for _ in range(pool)]
        self.rng = rng

    def __call__(self) -> dict[str, str]:
        return {f"field{k}": self.rng.choice(self.values) for k in range(FIELDS)}
