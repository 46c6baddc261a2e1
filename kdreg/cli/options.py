"""Option definitions shared by several commands (one definition, one help text)."""

from __future__ import annotations

from typing import Annotated

import typer

from kdreg.cli.output import FORMATS

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL or SQLite file of the experiment store "
        "(default: $KDREG_DB, else a file under $KDREG_HOME).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
FormatOption = Annotated[
    str,
    typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)}."),
]


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    """Validate a --format value (a KdregError names the allowed ones)."""
    from kdreg.errors import ConfigError

    if fmt not in allowed:
        raise ConfigError(f"Unknown format {fmt[:40]!r}; use one of: {', '.join(allowed)}.")
    return fmt
