"""``make bench``: every comparison of issue 16 in one run, each as a ratio to a baseline measured alongside.

Run ``python -m benchmarks [--quick] [--out docs/bench]``; see ``docs/benchmarks.md``.
"""
