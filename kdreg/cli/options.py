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


# --------------------------------------------------------------------------- store filters
# Shared by `query`, `report` and `export`: repeat an option (or comma-separate values)
# for OR within it; different options combine with AND.
_MANY = "Repeat or comma-separate for several (OR); options combine with AND."
LangOption = Annotated[
    list[str] | None,
    typer.Option("--lang", "-l", help=f"Language: de, deu and deu_Latn are the same language. {_MANY}",
                 show_default=False),
]
TeacherOption = Annotated[
    list[str] | None,
    typer.Option("--teacher", help=f"Teacher name or full spec. {_MANY}", show_default=False),
]
StudentOption = Annotated[
    list[str] | None,
    typer.Option("--student", help=f"Student name or full spec. {_MANY}", show_default=False),
]
LossOption = Annotated[
    list[str] | None, typer.Option("--loss", help=f"Loss name or full spec (kl, kl:alpha=0.5). {_MANY}",
                                   show_default=False)
]
BenchmarkOption = Annotated[
    list[str] | None, typer.Option("--benchmark", help=f"Benchmark name or spec. {_MANY}", show_default=False)
]
CorpusOption = Annotated[
    list[str] | None, typer.Option("--corpus", help=f"Corpus name or spec. {_MANY}", show_default=False)
]
StageOption = Annotated[
    list[str] | None,
    typer.Option("--stage", help=f"Stage: teacher, none, finetune, pretrain, both. {_MANY}",
                 show_default=False),
]
SeedOption = Annotated[list[str] | None, typer.Option("--seed", help=f"Seed. {_MANY}", show_default=False)]
StatusOption = Annotated[
    list[str] | None,
    typer.Option("--status", help=f"Run status: pending, running, succeeded, failed, interrupted. {_MANY}",
                 show_default=False),
]
MetricOption = Annotated[
    list[str] | None,
    typer.Option("--metric", help=f"Metric to show (default accuracy). {_MANY}", show_default=False),
]
SplitOption = Annotated[
    list[str] | None,
    typer.Option("--split", help=f"Evaluation split to show (default test). {_MANY}", show_default=False),
]
GridOption = Annotated[
    list[str] | None, typer.Option("--grid", help=f"Only runs of this grid id. {_MANY}", show_default=False)
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Runs created on or after this ISO date/time (UTC).",
                             show_default=False)
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", help="Runs created before the end of this ISO date (or before this time).",
                 show_default=False),
]


def split_values(values: list[str] | None) -> list[str]:
    """Repeated options and comma lists, keeping ``name:a=1,b=2`` parameters together.

    A comma-separated piece that looks like ``key=value`` (no plugin name before ``=``)
    belongs to the spec before it, so ``--loss kl:alpha=1,temperature=2`` stays one value.
    """
    out: list[str] = []
    for value in values or ():
        for piece in str(value).split(","):
            piece = piece.strip()
            if not piece:
                continue
            if out and "=" in piece and ":" not in piece.split("=", 1)[0]:
                out[-1] = f"{out[-1]},{piece}"
            else:
                out.append(piece)
    return out


def filters_from_options(
    *,
    lang: list[str] | None = None,
    teacher: list[str] | None = None,
    student: list[str] | None = None,
    loss: list[str] | None = None,
    benchmark: list[str] | None = None,
    corpus: list[str] | None = None,
    stage: list[str] | None = None,
    seed: list[str] | None = None,
    status: list[str] | None = None,
    metric: list[str] | None = None,
    split: list[str] | None = None,
    grid: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    keep_unset: bool = False,
):  # type: ignore[no-untyped-def]  # returns kdreg.store.filters.Filters (imported lazily)
    """The store filters of a command's options (validated; a bad value is one ConfigError line)."""
    from kdreg.store.filters import build_filters

    return build_filters(
        lang=split_values(lang), teacher=split_values(teacher), student=split_values(student),
        loss=split_values(loss), benchmark=split_values(benchmark), corpus=split_values(corpus),
        stage=split_values(stage), seed=split_values(seed), status=split_values(status),
        metric=split_values(metric), split=split_values(split), grid=split_values(grid),
        since=since, until=until, keep_unset=keep_unset,
    )
