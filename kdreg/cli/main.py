"""The ``kdreg`` command: one Typer app, one thin module per command group.

``main()`` is the single place errors become output: a :class:`KdregError` is one red
line on stderr and exit code 1 (``KDREG_DEBUG=1`` re-raises it with its traceback).
Anything else that escapes a command is a bug (in kdreg or a plugin): it is one red line
too, naming the exception and asking for ``KDREG_DEBUG=1`` and a report, because a
user's terminal is no place for a traceback they did not ask for.
Command modules import heavy libraries only inside the commands that train, so
``--help``, ``plugins``, ``db``, ``query`` and ``report`` start fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from kdreg import __version__
from kdreg.cli.output import print_error
from kdreg.errors import KdregError

COMMAND_MODULES = (
    "kdreg.cli.run",
    "kdreg.cli.status",
    "kdreg.cli.query",
    "kdreg.cli.show",
    "kdreg.cli.report",
    "kdreg.cli.compare",
    "kdreg.cli.claims",
    "kdreg.cli.export",
    "kdreg.cli.plugins",
    "kdreg.cli.db",
    "kdreg.cli.cache",
)

def debug() -> bool:
    """Whether to show full tracebacks (``KDREG_DEBUG=1``)."""
    return os.environ.get("KDREG_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


class KdregGroup(TyperGroup):
    """Turns a KdregError from any command into one red line and exit code 1.

    Doing it here (not only in ``main``) gives the same behaviour under Typer's
    CliRunner in tests as in the installed command.
    """

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # Typer's own ways out: usage errors, --help, exit codes
        except KdregError as exc:
            if debug():
                raise
            print_error(str(exc))
            raise typer.Exit(1) from None
        except Exception as exc:
            if debug():
                raise
            print_error(unexpected(exc))
            raise typer.Exit(1) from None


def unexpected(exc: BaseException) -> str:
    """The one line for an error kdreg did not foresee (a bug): what it was, and how to see more."""
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return (f"unexpected {type(exc).__name__}: {first} "
            "(a bug in kdreg or a plugin: KDREG_DEBUG=1 shows the traceback; please report it).")


app = typer.Typer(
    cls=KdregGroup,
    name="kdreg",
    help="Knowledge-distillation experiment registry: run grids of teacher × student × loss × stage, "
    "log every per-language result, query and report them.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kdreg {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Knowledge-distillation experiment registry."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``kdreg`` console script and ``python -m kdreg``."""
    try:
        app(args=argv, prog_name="kdreg")
    except KdregError as exc:
        if debug():
            raise
        print_error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        print_error("Interrupted.")
        sys.exit(130)
