"""The ``writebehind`` command line: one module per command."""

from __future__ import annotations

import click

from ..demo import demo
from .check import check
from .dlq import dlq
from .replay import replay
from .stats import stats
from .worker import worker


@click.group()
@click.version_option(package_name="writebehind")
def main() -> None:
    """writebehind: Redis-fronted writes, persisted to MongoDB behind them."""


main.add_command(worker)
main.add_command(check)
main.add_command(demo)
main.add_command(dlq)
main.add_command(stats)
main.add_command(replay)
