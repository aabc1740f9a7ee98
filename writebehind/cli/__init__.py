"""The ``writebehind`` command line: one module per command."""

from __future__ import annotations

import click

from ..demo import demo
from .worker import worker


@click.group()
@click.version_option(package_name="writebehind")
def main() -> None:
    """writebehind: Redis-fronted writes, persisted to MongoDB behind them."""


main.add_command(worker)
main.add_command(demo)
