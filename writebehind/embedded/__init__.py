"""Private redis-server and SecantusDB processes, and the demo that runs on them.

Used by ``writebehind demo`` and by the tests; not needed by the SDK or the worker.
"""
