"""``kdreg compare``: paired comparisons of two selections of runs, with the statistics a reviewer asks for.

Thin: options → two sides and the common filters → :func:`kdreg.reporting.compare.compare`
(pairs, paired t-tests with scipy, imported only there) → a renderer.
"""

from __future__ import annotations

import inspect
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
    MetricOption,
    ScaleOption,
    SeedOption,
    SinceOption,
    SplitOption,
    StageOption,
    StudentOption,
    TeacherOption,
    UntilOption,
    check_format,
    filters_from_options,
)
from kdreg.cli.output import err_console, print_hints

COMPARE_FORMATS = ("terminal", "markdown", "latex", "csv", "json")

def compare(
    a: Annotated[list[str], typer.Option(
        "--a", metavar="FILTER=VALUE", show_default=False,
        help="Side A: any run filter of `kdreg query` as FILTER=VALUE (stage=pretrain; loss=kl:alpha=0.9); "
             "repeat for more conditions.")],
    b: Annotated[list[str], typer.Option(
        "--b", metavar="FILTER=VALUE", show_default=False,
        help="Side B, like --a (stage=finetune).")],
    by: Annotated[list[str] | None, typer.Option(
        "--by", metavar="DIMENSION", show_default=False,
        help="Also split comparisons by teacher, student, loss, corpus, stage or seed (default: pool them).")
    ] = None,
    lang: LangOption = None,
    teacher: TeacherOption = None,
    student: StudentOption = None,
    loss: LossOption = None,
    benchmark: BenchmarkOption = None,
    corpus: CorpusOption = None,
    stage: StageOption = None,
    seed: SeedOption = None,
    status: Annotated[list[str] | None, typer.Option(
        "--status", metavar="STATUS", help="Run status to include (default: succeeded).", show_default=False,
        rich_help_panel="Filters")] = None,
    metric: MetricOption = None,
    split: SplitOption = None,
    grid: GridOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help=f"Output format: {', '.join(COMPARE_FORMATS)}.")] = "terminal",
    scale: ScaleOption = 100.0,
    digits: Annotated[int, typer.Option("--digits", min=0, max=6, help="Decimals of means and Δ.")] = 1,
    db: DbOption = None,
) -> None:
    """Paired comparison of two sets of runs: per language, source and zero-shot average, the mean
    difference A − B, its 95% CI, a paired t-test's p-value, n pairs and Cohen's d_z.

    Runs of A and B pair when they agree on every dimension both have (teacher, student, loss,
    benchmark, corpus, seed, languages, hyper-parameters) except those --a/--b name. Unpaired
    runs are listed.

    Example: kdreg compare --a stage=pretrain --b stage=finetune --teacher mbert
    """
    from kdreg.errors import ConfigError
    from kdreg.request import split_values

    check_format(fmt, COMPARE_FORMATS)
    filters = filters_from_options(
        lang=lang, teacher=teacher, student=student, loss=loss, benchmark=benchmark, corpus=corpus,
        stage=stage, seed=seed, status=status or ["succeeded"], metric=metric, split=split, grid=grid,
        since=since, until=until, keep_unset=True,
    )
    if len(filters.metrics) > 1 or len(filters.splits) > 1:
        raise ConfigError("kdreg compare compares one metric and split at a time: "
                          "give one --metric and one --split.")
    from kdreg.reporting.compare import compare as run_compare
    from kdreg.reporting.compare import parse_side
    from kdreg.reporting.compare_tables import render
    from kdreg.store.hints import explain_no_match
    from kdreg.store.queries import open_reader

    side_a, side_b = parse_side(a, "--a"), parse_side(b, "--b")
    store = open_reader(db)
    try:
        result = run_compare(store, side_a, side_b, filters, by=list(split_values(by or [])), scale=scale)
        # a --lang the store lacks leaves its row without pairs: say so, even when others pair
        wanted = not result.comparisons or filters.language_columns
        hints = explain_no_match(store, filters) if wanted else []
    finally:
        store.close()
    print_hints(hints)
    import sys

    sys.stdout.write(render(result, fmt, digits))
    if not result.comparisons and fmt == "terminal":
        err_console.print(f"No pairs in {store.label}.")


def register(app: typer.Typer) -> None:
    app.command("compare", help=f"{inspect.cleandoc(compare.__doc__ or '')}\n\n{FILTER_HELP}")(compare)
