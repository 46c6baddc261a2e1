"""``kdreg export``: runs and results, flat (one row per result), as CSV, JSON Lines or Parquet.

The rows stream from the database in batches, so exporting a large store needs little
memory; Parquet goes through pyarrow (the ``export`` extra), imported only for it.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from kdreg.cli.options import (
    FILTER_HELP,
    BenchmarkOption,
    CorpusOption,
    DbOption,
    GridOption,
    LangOption,
    LossOption,
    SeedOption,
    SinceOption,
    StageOption,
    StatusOption,
    StudentOption,
    TeacherOption,
    UntilOption,
    check_format,
    filters_from_options,
)
from kdreg.cli.output import err_console, print_hints

EXPORT_FORMATS = ("csv", "jsonl", "parquet")

ExportFormatOption = Annotated[
    str, typer.Option("--format", "-f", help=f"One of: {', '.join(EXPORT_FORMATS)}.")
]
ExportOutOption = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", help="File to write (default: stdout; parquet needs a file).", show_default=False
    ),
]


def export(
    lang: LangOption = None,
    teacher: TeacherOption = None,
    student: StudentOption = None,
    loss: LossOption = None,
    benchmark: BenchmarkOption = None,
    corpus: CorpusOption = None,
    stage: StageOption = None,
    seed: SeedOption = None,
    status: StatusOption = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            metavar="METRIC",
            help="Only these metrics (default: all).",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split",
            metavar="SPLIT",
            help="Only these splits (default: all).",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    grid: GridOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    fmt: ExportFormatOption = "csv",
    out: ExportOutOption = None,
    db: DbOption = None,
) -> None:
    """Write every result of the selected runs with its run's columns (the results_flat view)."""
    check_format(fmt, EXPORT_FORMATS)
    filters = filters_from_options(
        lang=lang,
        teacher=teacher,
        student=student,
        loss=loss,
        benchmark=benchmark,
        corpus=corpus,
        stage=stage,
        seed=seed,
        status=status,
        metric=metric,
        split=split,
        grid=grid,
        since=since,
        until=until,
    )
    from kdreg.reporting.export import write_export
    from kdreg.store.hints import explain_no_match
    from kdreg.store.reading import open_reader

    store = open_reader(db)
    hints: list[str] = []
    try:
        count = write_export(store, filters, fmt, out)
        if not count:
            hints = explain_no_match(store, filters)
    finally:
        store.close()
    print_hints(hints)
    if out is not None:
        err_console.print(f"{count} results → {out}")


def register(app: typer.Typer) -> None:
    app.command("export", help=f"{inspect.cleandoc(export.__doc__ or '')}\n\n{FILTER_HELP}")(export)
