"""``make bench``: issue 16's comparisons in one run, each a ratio to a baseline measured alongside.

Run ``python -m benchmarks [--quick] [--out docs/bench]``; see ``docs/benchmarks.md``.
"""
