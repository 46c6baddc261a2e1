"""``kdreg report``: the paper table — mean ± std over seeds per (teacher, student, stage, loss).

Thin: options → filters → :func:`kdreg.reporting.report.build_report` (aggregated in SQL)
→ a renderer. ``--out DIR`` writes every format at once, plus the plot the HTML page
embeds (matplotlib, an optional extra, is imported only then).
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
from kdreg.cli.output import console, err_console, print_hints

REPORT_FORMATS = ("terminal", "markdown", "latex", "csv", "html")

ReportFormatOption = Annotated[
    str, typer.Option("--format", "-f", help=f"Output format: {', '.join(REPORT_FORMATS)}.")
]
OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", help="Write every format (and the plot) into this folder.", show_default=False
    ),
]
PlotFormatOption = Annotated[str, typer.Option("--plot-format", help="Plot file type: png or svg.")]
DigitsOption = Annotated[int, typer.Option("--digits", min=0, max=6, help="Decimals in cells.")]
BaselinesOption = Annotated[
    bool,
    typer.Option(
        "--baselines/--no-baselines",
        help="Keep rows a --student/--loss/--corpus filter does not apply to (the teacher's own row, "
        "the no-KD stage 'none').",
    ),
]


def plot_or_note(tables: list, plot_format: str) -> tuple[bytes | None, str | None]:  # type: ignore[type-arg]
    """The plot, or why there is none (said on stderr): tables never fail for want of a plot."""
    from kdreg.errors import KdregError
    from kdreg.reporting.plot import matplotlib_available, plot_report

    if not matplotlib_available():
        note = "No plot: matplotlib is not installed (pip install 'kdreg[report]')."
    else:
        try:
            return plot_report(tables, plot_format), None
        except KdregError as exc:
            note = f"No plot: {exc}"
    err_console.print(note)
    return None, note


def write_all(tables: list, out: Path, plot_format: str,  # type: ignore[type-arg]
              protect: list[Path] | None = None) -> list[Path]:
    """Every format into ``out``; the plot when matplotlib is there (the HTML page embeds it).

    ``protect`` are the database's files: a report never overwrites them.
    """
    from kdreg.errors import ConfigError
    from kdreg.reporting.output_files import check_target, write_file
    from kdreg.reporting.tables import EXTENSIONS, render

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Cannot create the output folder {out}: {exc.strerror or exc}.") from None
    guarded = protect or []
    names = [f"report.{plot_format}", *(f"report.{ext}" for ext in EXTENSIONS.values())]
    for name in names:  # every target is checked before the first is written
        check_target(out / name, guarded)
    written: list[Path] = []
    plot, note = plot_or_note(tables, plot_format)
    if plot is not None:
        target = out / f"report.{plot_format}"
        write_file(target, lambda handle: handle.write(plot), protect=guarded)
        written.append(target)
    for fmt, ext in EXTENSIONS.items():
        options = {"plot": plot, "plot_format": plot_format, "plot_note": note} if fmt == "html" else {}
        target = out / f"report.{ext}"
        text = render(tables, fmt, **options)
        write_file(target, lambda handle, text=text: handle.write(text.encode("utf-8")), protect=guarded)
        written.append(target)
    return written


def report(
    lang: LangOption = None,
    teacher: TeacherOption = None,
    student: StudentOption = None,
    loss: LossOption = None,
    benchmark: BenchmarkOption = None,
    corpus: CorpusOption = None,
    stage: StageOption = None,
    seed: SeedOption = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Run status to include (default: succeeded).",
            show_default=False,
            rich_help_panel="Filters",
        ),
    ] = None,
    metric: MetricOption = None,
    split: SplitOption = None,
    grid: GridOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    baselines: BaselinesOption = True,
    fmt: ReportFormatOption = "terminal",
    out: OutOption = None,
    plot_format: PlotFormatOption = "png",
    scale: ScaleOption = 100.0,
    digits: DigitsOption = 1,
    db: DbOption = None,
) -> None:
    """Mean ± std over seeds per (teacher, student, stage, loss) × language; best per column in bold.

    The seed study in one command: kdreg report --teacher mbert --student distilmbert
    """
    check_format(fmt, REPORT_FORMATS)
    check_format(plot_format, ("png", "svg"))
    filters = filters_from_options(
        lang=lang,
        teacher=teacher,
        student=student,
        loss=loss,
        benchmark=benchmark,
        corpus=corpus,
        stage=stage,
        seed=seed,
        status=status or ["succeeded"],
        metric=metric,
        split=split,
        grid=grid,
        since=since,
        until=until,
        keep_unset=baselines,
    )
    from kdreg.reporting.chance import chance_from
    from kdreg.reporting.report import build_report
    from kdreg.store.hints import explain_no_match
    from kdreg.store.queries import open_reader

    store = open_reader(db)
    hints: list[str] = []
    try:
        tables = build_report(store, filters, scale=scale, digits=digits, chance=chance_from(store))
        if not tables:
            hints = explain_no_match(store, filters)
    finally:
        store.close()
    if not tables:
        print_hints(hints)
        err_console.print(f"No results match in {store.label} (report counts succeeded runs; see --status).")
        return
    if out is not None:
        from kdreg.reporting.output_files import database_files

        for path in write_all(tables, out, plot_format, database_files(store)):
            console.print(str(path))
        return
    if fmt == "terminal":
        from kdreg.reporting.tables import render_terminal

        color = console.is_terminal and not console.no_color
        # a terminal gets every line within its width; piped output the whole table (see layout.py)
        width = console.width if console.is_terminal else None
        console.file.write(render_terminal(tables, color=color, width=width))
        return
    import sys

    from kdreg.reporting.tables import render

    options = {}
    if fmt == "html":
        plot, note = plot_or_note(tables, plot_format)
        options = {"plot": plot, "plot_format": plot_format, "plot_note": note}
    sys.stdout.write(render(tables, fmt, **options))


def register(app: typer.Typer) -> None:
    app.command("report", help=f"{inspect.cleandoc(report.__doc__ or '')}\n\n{FILTER_HELP}")(report)
