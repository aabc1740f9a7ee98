"""Unit tests for benchmarks.distributions: YCSB's request generators and operation mixes."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from benchmarks.distributions import (
    FIELD_LENGTH,
    FIELDS,
    WORKLOADS,
    Chooser,
    InsertCounter,
    Latest,
    Records,
    ScrambledZipf,
    Workload,
    Zipf,
)


def test_zipf_follows_its_law() -> None:
    """Rank r is drawn in proportion to 1 / (r + 1) ** 0.99: rank 0 about twice rank 1."""
    zipf = Zipf(1000, 0.99, random.Random(1))
    draws = Counter(zipf() for _ in range(200_000))
    assert set(draws) <= set(range(1000))
    norm = sum(1 / (k + 1) ** 0.99 for k in range(1000))
    for rank in (0, 1, 9):
        expected = 200_000 / (rank + 1) ** 0.99 / norm
        assert draws[rank] == pytest.approx(expected, rel=0.05)
    assert draws[0] > 1.9 * draws[1]


def test_zipf_refuses_an_empty_key_space() -> None:
    with pytest.raises(ValueError, match="at least one item"):
        Zipf(0, 0.99, random.Random(1))


def test_scrambled_zipf_spreads_the_popular_keys_and_keeps_every_key() -> None:
    scrambled = ScrambledZipf(10_000, 0.99, random.Random(2))
    assert sorted(scrambled.keys) == list(range(10_000))  # a permutation: no two ranks collide
    hottest = scrambled.keys[:10]
    assert hottest != list(range(10))  # not the first keys, in order
    draws = Counter(scrambled() for _ in range(50_000))
    assert draws.most_common(1)[0][0] == scrambled.keys[0]


def test_insert_counter_acknowledges_only_a_gapless_prefix() -> None:
    counter = InsertCounter(100)
    keys = [counter.next_key() for _ in range(4)]
    assert keys == [100, 101, 102, 103]
    assert counter.acknowledged == 99
    counter.acknowledge(101)  # 100 still in flight
    assert counter.acknowledged == 99
    counter.acknowledge(100)
    assert counter.acknowledged == 101
    counter.acknowledge(103)
    counter.acknowledge(102)
    assert counter.acknowledged == 103


def test_latest_favours_the_newest_acknowledged_key() -> None:
    counter = InsertCounter(1000)
    latest = Latest(counter, 1000, 0.99, random.Random(3))
    draws = Counter(latest() for _ in range(20_000))
    assert max(draws) == 999
    assert draws.most_common(1)[0][0] == 999
    key = counter.next_key()
    assert max(latest() for _ in range(5000)) == 999  # not acknowledged yet: never read
    counter.acknowledge(key)
    assert Counter(latest() for _ in range(20_000)).most_common(1)[0][0] == 1000


def test_latest_reads_its_own_inserts_then_the_loaded_records() -> None:
    """A system inserting from key 5000 (others insert elsewhere) reads its newest insert
    most, then the loaded records 0..999: never a key of the gap or another system's."""
    counter = InsertCounter(5000)
    for _ in range(3):
        counter.acknowledge(counter.next_key())
    latest = Latest(counter, 1000, 0.99, random.Random(4))
    draws = Counter(latest() for _ in range(20_000))
    assert set(draws) <= set(range(1000)) | {5000, 5001, 5002}
    assert draws.most_common(1)[0][0] == 5002
    assert draws[5002] > draws[5001] > draws[5000] > draws[999] > draws[998]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("A", {"read": 0.5, "update": 0.5}),
        ("B", {"read": 0.95, "update": 0.05}),
        ("C", {"read": 1.0}),
        ("D", {"read": 0.95, "insert": 0.05}),
        ("F", {"read": 0.5, "rmw": 0.5}),
    ],
)
def test_core_workload_mixes(name: str, expected: dict[str, float]) -> None:
    workload = WORKLOADS[name]
    choose = workload.chooser(random.Random(4))
    draws = Counter(choose() for _ in range(40_000))
    assert set(draws) == set(expected)
    for op, share in expected.items():
        assert draws[op] / 40_000 == pytest.approx(share, abs=0.01)
    assert workload.distribution == ("latest" if name == "D" else "zipfian")


def test_a_mix_must_name_known_operations_and_sum_to_one() -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        Workload("X", {"read": 0.5, "scan": 0.5}, "zipfian")
    with pytest.raises(ValueError, match="summing to 1"):
        Workload("X", {"read": 0.5, "update": 0.4}, "zipfian")


def test_chooser_skips_operations_with_no_share() -> None:
    choose = Chooser({"read": 1.0, "update": 0.0}, random.Random(5))
    assert {choose() for _ in range(1000)} == {"read"}


def test_records_have_ten_fields_of_a_hundred_characters() -> None:
    record = Records(random.Random(6))()
    assert list(record) == [f"field{k}" for k in range(FIELDS)]
    assert all(len(value) == FIELD_LENGTH for value in record.values())
