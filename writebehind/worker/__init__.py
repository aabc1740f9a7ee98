"""The worker daemon: reads partition streams through a consumer group and applies the
records to MongoDB with batched, version-guarded writes (``runner.Worker``)."""
