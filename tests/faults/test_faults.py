"""Randomized fault trials (see tests/faults/trials.py) with the oracle of tests/faults/oracle.py.

The default slice runs ``DEFAULT_TRIALS`` of each type with seeds derived from
``WRITEBEHIND_FAULT_SEED`` (random when unset; printed). ``make test-faults``
runs the slow set: ``WRITEBEHIND_FAULT_TRIALS`` (default 40) of each type.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.faults.trials import CLUSTER_TRIALS, TRIALS, run_trial

pytestmark = pytest.mark.anyio

DEFAULT_TRIALS = 2
FULL_TRIALS = int(os.environ.get("WRITEBEHIND_FAULT_TRIALS", "40"))
_seed_text = os.environ.get("WRITEBEHIND_FAULT_SEED")
BASE_SEED = int(_seed_text) if _seed_text else random.SystemRandom().randrange(2**32)
print(f"\nwritebehind fault suite: WRITEBEHIND_FAULT_SEED={BASE_SEED}")


def trial_seed(kind: str, number: int) -> int:
    """One seed per (type, number), reproducible from the base seed."""
    return random.Random(f"{BASE_SEED}:{kind}:{number}").randrange(2**32)


@pytest.mark.parametrize("number", range(DEFAULT_TRIALS))
@pytest.mark.parametrize("kind", list(TRIALS))
async def test_fault_trial(kind: str, number: int, tmp_path: Path) -> None:
    await run_trial(kind, trial_seed(kind, number), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("number", range(FULL_TRIALS))
@pytest.mark.parametrize("kind", list(TRIALS))
async def test_fault_trial_full(kind: str, number: int, tmp_path: Path) -> None:
    await run_trial(kind, trial_seed(kind, 1000 + number), tmp_path)


@pytest.mark.parametrize("kind", CLUSTER_TRIALS)
async def test_fault_trial_on_a_redis_cluster(kind: str, tmp_path: Path) -> None:
    """One trial of each worker- and MongoDB-side fault type on a local Redis Cluster."""
    await run_trial(kind, trial_seed(f"cluster-{kind}", 0), tmp_path, cluster=True)
