"""Shared test machinery: real server processes and helpers to wait on them."""
