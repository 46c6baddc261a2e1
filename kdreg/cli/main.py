"""The ``kdreg`` command: one Typer app, one thin module per command group.

``main()`` is the single place errors become output: a :class:`KdregError` is one red
line on stderr and exit code 1 (``KDREG_DEBUG=1`` re-raises it with its traceback).
Anything else that escapes a command is a bug (in kdreg or a plugin): it is one red line
too, naming the exception and asking for ``KDREG_DEBUG=1`` and a report, because a
user's terminal is no place for a traceback they did not ask for.
Command modules are imported only when their command is used (see
:mod:`kdreg.cli.loading`), and import heavy libraries only inside the commands that
train, so ``--help``, ``plugins``, ``db``, ``query`` and ``report`` start fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from kdreg import __version__
from kdreg.cli.loading import LazyCommands, build_command, use_light_params
from kdreg.cli.output import print_error
from kdreg.errors import KdregError

COMMAND_MODULES = (
    "kdreg.cli.run",
    "kdreg.cli.status",
    "kdreg.cli.collect",
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
"""Every command, in the order ``--help`` lists them: one line per module, whose ``register(app)``
adds the command named after the module's last part. Imported when that command is used."""


def debug() -> bool:
    """Whether to show full tracebacks (``KDREG_DEBUG=1``)."""
    return os.environ.get("KDREG_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


class KdregGroup(TyperGroup):
    """Turns a KdregError from any command into one red line and exit code 1.

    Doing it here (not only in ``main``) gives the same behaviour under Typer's
    CliRunner in tests as in the installed command. Its command table is lazy
    (:class:`~kdreg.cli.loading.LazyCommands` over :data:`COMMAND_MODULES`).
    """

    def __init__(self, *, commands: Any = None, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(
            COMMAND_MODULES, lambda module: build_command(module, rich_markup_mode=self.rich_markup_mode),
            built=commands if isinstance(commands, dict) else None,
        )
        use_light_params(self)

    def list_commands(self, ctx):  # type: ignore[no-untyped-def]
        return list(self.commands)  # names only: building each command would import its module

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
            # Typer's own ways out (usage errors, --help, exit codes); and a reader that went
            # away (`kdreg export | head`), which Typer ends quietly with exit code 1
            raise
        except KdregError as exc:
            if debug():
                raise
            print_error(str(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM/SIGHUP where a command handles them
            from kdreg.execution.signals import exit_code

            print_error("Interrupted.")
            raise typer.Exit(exit_code(interrupt)) from None
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
    # Click's plain help: Typer's rich help imports rich's Markdown, markdown-it and pygments
    # (about 50 ms of a 110 ms `kdreg --help`), and plain text wraps as a terminal expects.
    rich_markup_mode=None,
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``kdreg`` console script and ``python -m kdreg``."""
    from kdreg.threads import prepare_threads

    prepare_threads()  # torch's threads wait passively: set before anything imports torch
    try:
        app(args=argv, prog_name="kdreg")
    except KdregError as exc:
        if debug():
            raise
        print_error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt as interrupt:
        from kdreg.execution.signals import exit_code

        print_error("Interrupted.")
        sys.exit(exit_code(interrupt))
