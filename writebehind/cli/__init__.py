"""The ``writebehind`` command line: one module per command."""

from __future__ import annotations

import click

from writebehind.cli.check import check
from writebehind.cli.dlq import dlq
from writebehind.cli.invalidate import invalidate
from writebehind.cli.replay import replay
from writebehind.cli.stats import stats
from writebehind.cli.worker import worker
from writebehind.embedded.demo import demo


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
main.add_command(invalidate)
