"""Metrics and health: what a worker exposes over HTTP for Prometheus and probes."""
