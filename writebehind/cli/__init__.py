"""The ``writebehind`` command line: one module per command.

Every failure ends as one ``Error: ...`` line on stderr with a documented exit
status (``writebehind.cli.failures``), never a traceback; set
``WRITEBEHIND_TRACEBACK=1`` to see one anyway.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from writebehind.cli.check import check
from writebehind.cli.dlq import dlq
from writebehind.cli.failures import EXIT_INTERRUPTED, explain
from writebehind.cli.invalidate import invalidate
from writebehind.cli.partitions import partitions
from writebehind.cli.replay import replay
from writebehind.cli.stats import stats
from writebehind.cli.worker import worker
from writebehind.embedded.demo import demo


class _Commands(click.Group):
    """A group whose commands fail with one line and an exit status."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except SystemExit:
            raise
        except click.exceptions.Abort as exc:
            # Click turns Ctrl-C into Abort; a declined confirmation is one too.
            if isinstance(exc.__cause__, KeyboardInterrupt) and not os.environ.get(
                "WRITEBEHIND_TRACEBACK"
            ):
                _fail("interrupted", EXIT_INTERRUPTED)
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except BaseException as exc:  # the CLI's one exit point
            if os.environ.get("WRITEBEHIND_TRACEBACK"):
                raise
            if isinstance(exc, KeyboardInterrupt):
                _fail("interrupted", EXIT_INTERRUPTED)
            explained = explain(exc)
            _fail(explained.line, explained.code)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(line: str, code: int) -> NoReturn:
    click.echo(f"Error: {line}", err=True)
    sys.exit(code)


@click.group(cls=_Commands)
@click.version_option(package_name="writebehind")
def main() -> None:
    """writebehind: Redis-fronted writes, persisted to MongoDB behind them.

    Exit status of every command: 0 done; 1 failed; 2 bad usage or
    configuration; 3 replay history gap; 4 dead letters remain; 5 a server
    stayed unreachable past --timeout; 130 interrupted.
    """


main.add_command(worker)
main.add_command(check)
main.add_command(demo)
main.add_command(dlq)
main.add_command(stats)
main.add_command(replay)
main.add_command(invalidate)
main.add_command(partitions)
