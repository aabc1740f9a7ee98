"""Server processes for tests: the package's embedded servers, plus the external-mongod switch."""

from __future__ import annotations

import os

from writebehind.embedded import RedisServer, SecantusServer, ServerProcess, free_port

__all__ = ["RedisServer", "SecantusServer", "ServerProcess", "external_mongo_url", "free_port"]


def external_mongo_url() -> str | None:
    """``WRITEBEHIND_TEST_MONGO_URL`` points the suite at a real ``mongod``."""
    return os.environ.get("WRITEBEHIND_TEST_MONGO_URL") or None
