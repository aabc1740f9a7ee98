"""What the SDK, the worker and the tools share: ids and keys, versions, the record codec,
the errors, the Lua scripts, the Redis client defaults and reply helpers, the consumer-group
lookup, the partition-count record, backoff, and the dead-letter record format. No module
here imports the SDK, the worker, the tools or the CLI.
"""
