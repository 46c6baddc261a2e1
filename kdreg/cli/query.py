"""``kdreg query``: runs and their scores, filtered on every run dimension.

Thin: options → :class:`~kdreg.store.filters.Filters` → one SQL statement
(:func:`kdreg.store.queries.select_run_scores`) or the seed aggregation → print. Only
typer, rich and SQLAlchemy are imported, so a query starts in a fraction of a second.
"""

from __future__ import annotations

import inspect
from datetime import datetime
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
from kdreg.cli.output import err_console, print_hints, render_rows

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
    bool, typer.Option("--group-seeds", help="Collapse runs that differ only by seed into mean ± std (n).")
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


def _status(row: dict[str, Any]) -> str:
    """'running (beat 4s ago)', 'stale (no beat for 3m05s)', or the status as it is."""
    from kdreg.store.liveness import describe_age

    age = row.get("heartbeat_age")
    if age is None:
        return str(row["status"])
    if row["status"] == "running":
        return f"running (beat {describe_age(age)} ago)"
    return f"{row['status']} (no beat for {describe_age(age)})"


def run_rows(
    rows: list[dict[str, Any]], codes: list[str], fmt: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per-run rows and columns for ``fmt`` (full for machines, compact for people)."""
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
    if fmt in ("table", "markdown"):
        rows = [{**r, "hash": (r["hash"] or "")[:8], "created": _when(r["created"]),
                 "status": _status(r)} for r in rows]
    else:
        columns.insert(columns.index("status") + 1, "heartbeat_age")
        rows = [{**r, "created": r["created"].isoformat() if r["created"] else None} for r in rows]
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
    from kdreg.store.liveness import db_now, liveness
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
                found = [dict(r) for r in conn.execute(stmt).mappings()]
                now = db_now(conn)
            for row in found:  # a running run says how alive it is; one whose process died is 'stale'
                row["status"], row["heartbeat_age"] = liveness(row["status"], row.pop("heartbeat_at"),
                                                               now)
            rows, columns = run_rows(found, codes, fmt)
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
    if fmt == "table":
        columns, shared = for_people(rows, [c for c in columns if c not in ("hash", "targets")], keep=scores)
        title = f"{'first ' if more else ''}{len(rows)} {what}" + (f" · {shared}" if shared else "")
    numbers = ("run", "seed", "runs", "seeds", "created") + (() if group_seeds else scores)
    render_rows(rows, columns, fmt=fmt, title=title, no_wrap=numbers)
    if more:
        err_console.print(f"More {what} match: --limit N shows more, --format csv all of them.")


def register(app: typer.Typer) -> None:
    app.command("query", help=f"{inspect.cleandoc(query.__doc__ or '')}\n\n{FILTER_HELP}")(query)
