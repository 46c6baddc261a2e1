"""``kdreg claims``: the seed study's three claims judged on the store, and the block ending ``kdreg run``.

Thin: options → filters → :func:`kdreg.reporting.claims.evaluate_claims` (paired t-tests
with scipy, imported only there) → a renderer.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from kdreg.cli.options import (
    FILTER_HELP,
    BenchmarkOption,
    CorpusOption,
    DbOption,
    GridOption,
    LossOption,
    MetricOption,
    ScaleOption,
    SeedOption,
    SinceOption,
    SplitOption,
    StudentOption,
    TeacherOption,
    UntilOption,
    check_format,
    filters_from_options,
)
from kdreg.cli.output import console, err_console, print_hints, print_json

CLAIMS_FORMATS = ("terminal", "markdown", "json")


def claims(
    teacher: TeacherOption = None,
    student: StudentOption = None,
    loss: LossOption = None,
    benchmark: BenchmarkOption = None,
    corpus: CorpusOption = None,
    seed: SeedOption = None,
    metric: MetricOption = None,
    split: SplitOption = None,
    grid: GridOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help=f"Output format: {', '.join(CLAIMS_FORMATS)}.")] = "terminal",
    scale: ScaleOption = 100.0,
    digits: Annotated[int, typer.Option("--digits", min=0, max=6, help="Decimals of Δ.")] = 1,
    db: DbOption = None,
) -> None:
    """The seed study's claims on the succeeded runs: (1) KD in pretraining beats KD in fine-tuning
    on zero-shot targets, (2) KD in fine-tuning may hurt zero-shot transfer, (3) a larger teacher
    distils a better student — each supported, contradicted or inconclusive, with the paired
    comparison behind it (Δ, 95% CI, p, n). Each claim reads the zero-shot average (and, for
    the third, the source language), so there is no --lang.

    Example: kdreg claims --grid 3
    """
    from kdreg.errors import ConfigError

    check_format(fmt, CLAIMS_FORMATS)
    filters = filters_from_options(
        teacher=teacher, student=student, loss=loss, benchmark=benchmark, corpus=corpus,
        seed=seed, status=["succeeded"], metric=metric, split=split, grid=grid, since=since, until=until,
        keep_unset=True,
    )
    if len(filters.metrics) > 1 or len(filters.splits) > 1:
        raise ConfigError("kdreg claims judges one metric and split at a time: "
                          "give one --metric and one --split.")
    from kdreg.store.hints import explain_no_match
    from kdreg.store.queries import open_reader

    store = open_reader(db)
    try:
        # A filter value no run has, or no run at all, would read as three "inconclusive" verdicts.
        # (Teacher and no-KD rows match any --student/--loss/--corpus: hence the hints first.)
        hints = explain_no_match(store, filters)
        if hints or not matched_runs(store, filters):
            print_hints(hints)
            err_console.print(f"No succeeded runs match in {store.label}; the claims need runs to compare.")
            if fmt == "json":
                from kdreg.reporting.claims_tables import claims_record

                print_json(claims_record([], metric=filters.metrics[0], split=filters.splits[0], scale=scale))
            return
        text = claims_text(store, filters, fmt=fmt, scale=scale, digits=digits, width=console.width)
    finally:
        store.close()
    import sys

    sys.stdout.write(text)


def matched_runs(store: Any, filters: Any) -> int:
    """How many stored runs pass ``filters``."""
    from kdreg.store.queries import count_runs, read_connection

    with read_connection(store) as connection:
        return int(connection.execute(count_runs(filters)).scalar())


def claims_text(source: Any, filters: Any, *, fmt: str = "terminal", scale: float = 100.0,
                digits: int = 1, width: int | None = None) -> str:
    from kdreg.reporting.claims import evaluate_claims
    from kdreg.reporting.claims_tables import render

    metric, split = filters.metrics[0], filters.splits[0]
    found = evaluate_claims(source, filters, metric=metric, split=split, scale=scale)
    return render(found, fmt, metric=metric, split=split, scale=scale, digits=digits, width=width)


def print_claims(store: Any, grid_id: int) -> None:
    """The verdict block under ``kdreg run``'s table: the claims on this grid's succeeded runs.

    Judged in the metric the grid's table shows (accuracy when the benchmark has it).
    """
    from kdreg.cli.summary import table_metric
    from kdreg.store.filters import build_filters

    results = store.test_results([run.id for run in store.grid_runs(grid_id)])
    metrics = list(dict.fromkeys(r.metric for r in results))
    if not metrics:
        return
    metric = table_metric(metrics)
    filters = build_filters(grid=grid_id, status="succeeded", metric=metric, keep_unset=True)
    console.print()
    console.print(claims_text(store, filters, width=console.width).rstrip(), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("claims", help=f"{inspect.cleandoc(claims.__doc__ or '')}\n\n{FILTER_HELP}")(claims)
