"""Operator tools: stream replay, dead letters, stream statistics and the deployment check."""
