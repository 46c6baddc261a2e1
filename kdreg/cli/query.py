"""``kdreg query``: runs and their scores, filtered on every run dimension.

Thin: options → :class:`~kdreg.store.filters.Filters` → one SQL statement
(:func:`kdreg.store.queries.select_run_scores`) or the seed aggregation → print. Only
typer, rich and SQLAlchemy are imported, so a query starts in a fraction of a second.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from operator import itemgetter
from typing import Annotated, Any

import typer

from kdreg.cli.options import (
    FILTER_HELP,
    BenchmarkOption,
    CorpusOption,
    DbOption,
    FormatOption,
    GridOption,
    LangOption,
    LossOption,
    MetricOption,
    SeedOption,
    SinceOption,
    SplitOption,
    StageOption,
    StatusOption,
    StudentOption,
    TeacherOption,
    UntilOption,
    check_format,
    filters_from_options,
)
from kdreg.cli.output import cell_text, console, err_console, print_hints, render_rows

SortOption = Annotated[
    str,
    typer.Option(
        "--sort",
        metavar="KEY",
        help="Order by: run, created, teacher, student, stage, loss, benchmark, corpus, seed, status, "
        "source, zero_shot or a --lang code (scores best first, runs newest first).",
    ),
]
OrderOption = Annotated[bool | None, typer.Option("--desc/--asc", help="Override the sort direction.")]
LimitOption = Annotated[
    int | None, typer.Option("--limit", "-n", min=1, metavar="N", help="At most this many rows.")
]
GroupSeedsOption = Annotated[
    bool, typer.Option("--group-seeds", help="Collapse runs that differ only by seed into mean ± std (n); "
                       "succeeded runs unless --status is given, as kdreg report counts.")
]

GROUP_LABELS = ("teacher", "student", "stage", "loss", "benchmark", "corpus", "setup")
TABLE_ROWS = 100
"""Rows a terminal table shows when no --limit is given."""


def _when(value: Any) -> Any:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else value


def for_people(
    rows: list[dict[str, Any]], columns: list[str], keep: tuple[str, ...]
) -> tuple[list[str], str]:
    """Columns worth a terminal's width, and a caption naming what every row shares.

    Empty columns are dropped and a column with one value in every row moves to the
    caption (``benchmark=xnli · status=succeeded``), so the scores stay readable at 80
    characters.
    """
    shown, shared = [], []
    for c in columns:
        values = {r.get(c) for r in rows}
        if values == {None}:
            continue
        if len(rows) > 1 and len(values) == 1 and c not in keep:
            shared.append(f"{c}={values.pop()}")
        else:
            shown.append(c)
    return shown, " · ".join(shared)


IDENTIFYING = ("run", "teacher", "student", "stage", "loss", "benchmark", "corpus", "seed")
"""Columns that say which run (or seed group) a row is: repeated on every page of a folded table."""
SPECS = ("teacher", "student", "loss", "benchmark", "corpus")
"""Columns holding plugin specifications, which get short labels in a terminal."""


def print_fitted_rows(rows: list[dict[str, Any]], columns: list[str], title: str, shared: str, *,
                      numeric: tuple[str, ...], width: int) -> None:
    """The table for a terminal of ``width`` columns (:mod:`kdreg.reporting.layout`).

    What every row shares is a line above it; long specifications get short labels and a
    legend; the identifying columns are on every page and the others folded into pages.
    """
    from kdreg.reporting.layout import TextColumn, render_text_table, short_labels

    legend: list[str] = []
    laid: list[TextColumn] = []
    for name in columns:
        cells = [cell_text(r.get(name)) for r in rows]
        if name in SPECS:
            labels, explained = short_labels(cells)
            legend += [f"{name} {line}" for line in explained]
            cells = [labels.get(c, c) for c in cells]
        laid.append(TextColumn(name, tuple(cells), numeric=name in numeric, key=name in IDENTIFYING,
                               unique=name == "run"))
    above = [item.replace("=", " ", 1) for item in shared.split(" · ")] if shared else []
    console.file.write(render_text_table(title, laid, width=width, above=above, below=legend) + "\n")


def _status(status: str, age: float | None) -> str:
    """'running (beat 4s ago)', 'stale (no beat for 3m05s)', or the status as it is."""
    from kdreg.store.liveness import describe_age

    if age is None:
        return status
    if status == "running":
        return f"running (beat {describe_age(age)} ago)"
    return f"{status} (no beat for {describe_age(age)})"


def run_rows(
    found: list[Any], names: list[str], codes: list[str], fmt: str, now: Any = None
) -> tuple[list[Any], list[str]]:
    """Per-run rows and columns for ``fmt`` (full for machines, compact for people).

    ``found`` are the statement's rows (tuples in ``names`` order). For CSV they stay
    tuples, put in column order in one pass (100,000 runs are no rarity there); the other
    formats get dicts. ``now`` is the database's clock, for a running run's heartbeat age.
    """
    from kdreg.store.liveness import liveness

    columns = [
        "run",
        "hash",
        "teacher",
        "student",
        "stage",
        "loss",
        "benchmark",
        "corpus",
        "seed",
        "status",
        "metric",
        "split",
        "source_lang",
        "source",
        *codes,
        "zero_shot",
        "targets",
        "created",
    ]
    created = names.index("created")
    status, beat = names.index("status"), names.index("heartbeat_at")
    before = itemgetter(*(names.index(c) for c in columns[:-1]))  # every column but the last, created
    at = columns.index("status")

    def cells(r: Any) -> tuple[list[Any], float | None]:
        values = list(before(r))
        age = None
        if r[status] == "running":  # a running run says how alive it is; one whose process died is 'stale'
            values[at], age = liveness(r[status], r[beat], now)
        return values, age

    if fmt != "table" and fmt != "markdown":
        columns = [*columns[: at + 1], "heartbeat_age", *columns[at + 1 :]]
    if fmt == "csv":
        out = []
        for r in found:
            values, age = cells(r)
            when = r[created].isoformat() if r[created] else None
            out.append((*values[: at + 1], age, *values[at + 1 :], when))
        return out, columns
    rows = []
    for r in found:
        values, age = cells(r)
        if fmt in ("table", "markdown"):
            row = dict(zip(columns, (*values, r[created]), strict=True))
            row["hash"], row["created"] = (row["hash"] or "")[:8], _when(row["created"])
            row["status"] = _status(row["status"], age)
        else:
            row = dict(zip(columns, (*values[: at + 1], age, *values[at + 1 :], r[created]), strict=True))
            row["created"] = row["created"].isoformat() if row["created"] else None
        rows.append(row)
    return rows, columns
    return rows, columns


def group_rows(
    groups: list[Any], codes: list[str], fmt: str, sort: str, descending: bool | None, limit: int | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Seed-group rows: numeric ``_mean/_std/_n`` columns for machines, ``mean ± std (n)`` for people."""
    from kdreg.errors import ConfigError

    value_columns = ["source", *codes, "zero_shot"]
    allowed = (*GROUP_LABELS, "runs", "seeds", *value_columns)
    if sort in ("run", "created"):
        sort = "default"
    elif sort not in allowed:
        raise ConfigError(f"Cannot sort seed groups by {sort[:40]!r}; use one of: {', '.join(allowed)}.")
    records = [(g, g.cells(codes)) for g in groups]
    if sort in value_columns:
        present = [r for r in records if r[1][sort] is not None]
        missing = [r for r in records if r[1][sort] is None]
        present.sort(key=lambda r: r[1][sort].mean, reverse=descending is not False)
        records = present + missing
    elif sort in ("runs", "seeds"):
        records.sort(key=lambda r: getattr(r[0], sort), reverse=descending is not False)
    elif sort != "default":
        records.sort(key=lambda r: {**r[0].key, "setup": r[0].setup}.get(sort) or "",
                     reverse=bool(descending))
    if limit is not None:
        records = records[:limit]
    rows = []
    for g, cells in records:
        row = g.record(codes)
        if fmt in ("table", "markdown"):
            row.update({name: cell.text(3) if cell is not None else None for name, cell in cells.items()})
        rows.append(row)
    columns = [*GROUP_LABELS, "metric", "split", "runs", "seeds", "source_lang"]
    if fmt in ("table", "markdown"):
        columns += value_columns
    else:
        columns.insert(len(GROUP_LABELS), "setup_hash")
        columns += [f"{name}_{part}" for name in value_columns for part in ("mean", "std", "n")]
    return rows, columns


def query(
    lang: LangOption = None,
    teacher: TeacherOption = None,
    student: StudentOption = None,
    loss: LossOption = None,
    benchmark: BenchmarkOption = None,
    corpus: CorpusOption = None,
    stage: StageOption = None,
    seed: SeedOption = None,
    status: StatusOption = None,
    metric: MetricOption = None,
    split: SplitOption = None,
    grid: GridOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    sort: SortOption = "run",
    descending: OrderOption = None,
    limit: LimitOption = None,
    group_seeds: GroupSeedsOption = False,
    fmt: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """List runs with their source-language score, chosen languages and zero-shot average.

    Example: kdreg query --lang de --lang fr --teacher mbert --stage finetune,both --sort zero_shot -n 20
    """
    check_format(fmt)
    if group_seeds and not status:
        status = ["succeeded"]  # aggregates count what `kdreg report` counts
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
    from kdreg.store.hints import explain_no_match
    from kdreg.store.queries import open_reader, read_connection, select_run_scores

    codes = [col.code for col in filters.language_columns]
    # A terminal table of 100,000 runs helps nobody and takes rich minutes to draw: without
    # --limit the table shows the first rows and says so (machine formats get everything).
    shown = limit if limit is not None or fmt != "table" else TABLE_ROWS
    limit = shown + 1 if limit is None and shown is not None else limit
    store = open_reader(db)
    hints: list[str] = []
    try:
        if group_seeds:
            from kdreg.reporting.aggregate import seed_groups

            groups = [
                g for m in filters.metrics for s in filters.splits for g in seed_groups(store, filters, m, s)
            ]
            rows, columns = group_rows(groups, codes, fmt, sort, descending, limit)
            what = "seed groups"
        else:
            with read_connection(store) as conn:
                stmt = select_run_scores(filters, sort=sort, descending=descending, limit=limit)
                result = conn.execute(stmt)
                names, found = list(result.keys()), result.all()
                now = conn.now()
            rows, columns = run_rows(found, names, codes, fmt, now)
            what = "runs"
        if not rows:
            hints = explain_no_match(store, filters)
    finally:
        store.close()
    if not rows:
        print_hints(hints)
        if fmt == "table":
            err_console.print(f"No {what} match in {store.label}.")
            return
    more = shown is not None and len(rows) > shown
    rows = rows[:shown] if shown is not None else rows
    title = None
    scores = ("source", *codes, "zero_shot")
    numbers = ("run", "seed", "runs", "seeds", "created") + (() if group_seeds else scores)
    if fmt == "table":
        columns, shared = for_people(rows, [c for c in columns if c not in ("hash", "targets")], keep=scores)
        title = f"{'first ' if more else ''}{len(rows)} {what}" + (f" · {shared}" if shared else "")
        if console.is_terminal:  # every line within the terminal's width; piped: the whole table as is
            print_fitted_rows(rows, columns, f"{'first ' if more else ''}{len(rows)} {what}", shared,
                              numeric=(*numbers, *scores), width=console.width)
        else:
            render_rows(rows, columns, fmt=fmt, title=title, no_wrap=numbers)
    else:
        render_rows(rows, columns, fmt=fmt, title=title, no_wrap=numbers)
    if more:
        err_console.print(f"More {what} match: --limit N shows more, --format csv all of them.")


def register(app: typer.Typer) -> None:
    app.command("query", help=f"{inspect.cleandoc(query.__doc__ or '')}\n\n{FILTER_HELP}")(query)
