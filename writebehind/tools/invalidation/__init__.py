"""The invalidator: MongoDB change streams evict the cache for writes that bypass the SDK.

``decide`` is the pure rule (which changes leave the cache alone); ``daemon``
the IO around it (the change stream, the resume token, the EVICT script).
"""
