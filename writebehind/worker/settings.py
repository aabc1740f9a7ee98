"""The worker's tunables: the one settings model, ``writebehind.settings.Settings``.

``WorkerSettings`` is that model under the name earlier releases used, so
``Worker(redis, db, WorkerSettings(batch_size=100))`` keeps working.
"""

from __future__ import annotations

from writebehind.settings import Settings, default_consumer_name

WorkerSettings = Settings

__all__ = ["WorkerSettings", "default_consumer_name"]
