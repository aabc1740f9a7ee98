"""What the SDK, the worker and the tools share: ids and keys, versions, the record codec,
the errors, the Lua scripts and the Redis client defaults. No module here imports the
SDK, the worker, the tools or the CLI.
"""
