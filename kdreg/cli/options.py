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
ScaleOption = Annotated[float, typer.Option("--scale", help="Multiply values (100 shows accuracy in %).")]
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
# Shared by `query`, `report`, `compare`, `claims` and `export`: repeat an option (or comma-separate values)
# for OR within it; different options combine with AND (said once, in each command's help).
FILTER_HELP = (
    "Filters: repeat an option or comma-separate values for OR (--seed 0,1,2); "
    "different options combine with AND. Names match a plugin's name or its full spec."
)


def _filter(flag: str, metavar: str, text: str, *short: str) -> typer.models.OptionInfo:
    """A filter option, listed under its own heading in ``--help``."""
    return typer.Option(flag, *short, metavar=metavar, help=text, show_default=False,
                        rich_help_panel="Filters")


LangOption = Annotated[
    list[str] | None, _filter("--lang", "CODE", "Language; de, deu and deu_Latn are one language.", "-l")
]
TeacherOption = Annotated[list[str] | None, _filter("--teacher", "NAME", "Teacher (mbert, hf:path=…).")]
StudentOption = Annotated[list[str] | None, _filter("--student", "NAME", "Student (layers, layers:k=6).")]
LossOption = Annotated[list[str] | None, _filter("--loss", "NAME", "Loss (kl, kl:alpha=0.5).")]
BenchmarkOption = Annotated[list[str] | None, _filter("--benchmark", "NAME", "Benchmark (xnli, sib200).")]
CorpusOption = Annotated[list[str] | None, _filter("--corpus", "NAME", "Pretraining corpus.")]
StageOption = Annotated[
    list[str] | None, _filter("--stage", "STAGE", "teacher, none, finetune, pretrain or both.")
]
SeedOption = Annotated[list[str] | None, _filter("--seed", "SEED", "Seed.")]
StatusOption = Annotated[
    list[str] | None, _filter("--status", "STATUS", "pending, running, succeeded, failed or interrupted.")
]
MetricOption = Annotated[
    list[str] | None, _filter("--metric", "METRIC", "Metric to show (default accuracy).")
]
SplitOption = Annotated[list[str] | None, _filter("--split", "SPLIT", "Split to show (default test).")]
GridOption = Annotated[list[str] | None, _filter("--grid", "ID", "Runs planned by this grid.")]
SinceOption = Annotated[str | None, _filter("--since", "DATE", "Created on or after (ISO date/time, UTC).")]
UntilOption = Annotated[
    str | None, _filter("--until", "DATE", "Created before the end of this date (or before this time).")
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
