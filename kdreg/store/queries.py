"""Reading the store: user filters as bound parameters, and the SQL that scores runs.

Every filter value reaches the database as a bound parameter — no filter text ever
becomes SQL. Repeating an option means OR within it; different options combine with AND.
A run dimension matches by plugin name or by full spec (``--loss kl`` matches
``loss = 'kl'`` or ``loss_spec = 'kl'``), and languages match through their normalised
code (``--lang de`` finds ``de``, ``deu`` and ``deu_Latn``) or the benchmark's own code.

Two shapes of statement, both aggregating in SQL so a 1.6 M-result store never travels
into Python:

* :func:`select_run_scores` — one row per (run, metric, split): the source-language
  score, the zero-shot average (mean over non-source languages) and one column per
  selected language (a pivot with ``CASE``, cheap for the few languages a person asks for);
* :func:`select_language_sums` / :func:`select_zero_shot_sums` — seed statistics
  (count, mean, sum of squares) per group of runs that differ only by seed, in long
  form (group × language), so any number of languages costs one sort, not one
  aggregate per language per row. ``kdreg.reporting.aggregate`` turns them into
  mean ± std.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    case,
    distinct,
    exists,
    false,
    func,
    not_,
    or_,
    select,
)

from kdreg.errors import ConfigError
from kdreg.store.filters import Filters, LanguageColumn, normalized
from kdreg.store.reading import grid_runs, open_reader, read_connection, results, runs

__all__ = ["open_reader", "read_connection"]  # re-exported: the read path in one import

DIMENSIONS = {
    "teacher": (runs.c.teacher, runs.c.teacher_spec),
    "student": (runs.c.student, runs.c.student_spec),
    "loss": (runs.c.loss, runs.c.loss_spec),
    "benchmark": (runs.c.benchmark, runs.c.benchmark_spec),
    "corpus": (runs.c.corpus, runs.c.corpus_spec),
}
"""Run dimensions matched by name or full spec."""

GROUP_KEY = (
    "teacher_spec", "student_spec", "stage", "loss_spec", "benchmark_spec", "corpus_spec", "setup_hash"
)
"""What identifies a group of runs that differ only by seed: their setup (and the specs people read)."""


# --------------------------------------------------------------------------- conditions
def language_match(table: object, column: LanguageColumn | Sequence[LanguageColumn]) -> ColumnElement[bool]:
    """A results row is in ``column``: its normalised code, or the benchmark's own code as typed."""
    columns = [column] if isinstance(column, LanguageColumn) else list(column)
    if not columns:
        return false()
    c = table.c  # type: ignore[attr-defined]
    codes = [col.code for col in columns]
    typed = [t for col in columns for t in col.typed]
    return or_(c.lang.in_(codes), c.language.in_(typed))


def run_conditions(f: Filters, *, with_langs: bool = True) -> list[ColumnElement[bool]]:
    """WHERE conditions on ``runs`` for every filter (languages, metrics, splits: EXISTS on results)."""
    conds: list[ColumnElement[bool]] = []
    for dimension, (name_col, spec_col) in DIMENSIONS.items():
        values = getattr(f, dimension)
        if not values:
            continue
        cond = or_(name_col.in_(values), spec_col.in_(values))
        if f.keep_unset and dimension in ("student", "loss", "corpus"):
            cond = or_(cond, name_col.is_(None))
        conds.append(cond)
    if f.stage:
        conds.append(runs.c.stage.in_(f.stage))
    if f.seed:
        conds.append(runs.c.seed.in_(f.seed))
    if f.status:
        conds.append(runs.c.status.in_(f.status))
    if f.since is not None:
        conds.append(runs.c.created_at >= f.since)
    if f.until is not None:
        conds.append(runs.c.created_at < f.until)
    if f.grid:
        conds.append(exists().where(grid_runs.c.run_id == runs.c.id, grid_runs.c.grid_id.in_(f.grid)))
    if with_langs and (f.language_columns or f.metric or f.split):
        # A language, metric or split asked for by name selects runs that have such a result;
        # without them, runs with no result yet (pending, failed) are listed too.
        r = results.alias("result_filter")
        wanted = [r.c.run_id == runs.c.id, r.c.metric.in_(f.metrics), r.c.split.in_(f.splits)]
        if f.language_columns:
            wanted.append(language_match(r, f.language_columns))
        conds.append(exists().where(*wanted))
    return conds


def select_run_ids(f: Filters) -> Select:
    """Ids of the runs passing every filter."""
    return select(runs.c.id).where(*run_conditions(f))


# --------------------------------------------------------------------------- per-run scores
RUN_COLUMNS = {
    "run": runs.c.id,
    "hash": runs.c.config_hash,
    "teacher": runs.c.teacher_spec,
    "student": runs.c.student_spec,
    "stage": runs.c.stage,
    "loss": runs.c.loss_spec,
    "benchmark": runs.c.benchmark_spec,
    "corpus": runs.c.corpus_spec,
    "seed": runs.c.seed,
    "status": runs.c.status,
    "created": runs.c.created_at,
}
"""Run fields of a query row (display forms of the plugins)."""

SCORE_COLUMNS = ("source", "zero_shot", "targets")
ASCENDING_BY_DEFAULT = frozenset(
    {"teacher", "student", "stage", "loss", "benchmark", "corpus", "seed", "status"}
)


def lang_label(index: int) -> str:
    """SQL label of the i-th selected language column (user text never names a column)."""
    return f"lang_{index}"


def _scores_subquery(f: Filters, run_ids: Select | None) -> Subquery:
    r = results.alias("r")
    columns = [
        r.c.run_id,
        r.c.metric,
        r.c.split,
        func.max(case((r.c.is_source, r.c.lang))).label("source_lang"),
        func.avg(case((r.c.is_source, r.c.value))).label("source"),
        func.avg(case((not_(r.c.is_source), r.c.value))).label("zero_shot"),
        func.count(case((not_(r.c.is_source), r.c.value))).label("targets"),
    ]
    columns += [
        func.avg(case((language_match(r, col), r.c.value))).label(lang_label(i))
        for i, col in enumerate(f.language_columns)
    ]
    wanted = [r.c.metric.in_(f.metrics), r.c.split.in_(f.splits)]
    if run_ids is not None:
        wanted.append(r.c.run_id.in_(run_ids))
    return select(*columns).where(*wanted).group_by(r.c.run_id, r.c.metric, r.c.split).subquery("scores")


def sort_key_names(f: Filters) -> tuple[str, ...]:
    """What ``--sort`` accepts: run fields, score columns and each selected language code."""
    return (*RUN_COLUMNS, *SCORE_COLUMNS, *(col.code for col in f.language_columns))


def _language_sort_key(f: Filters, sort: str) -> str:
    """``--sort deu`` or ``--sort deu_Latn`` names the column of ``--lang de``: any spelling works."""
    if sort in sort_key_names(f):
        return sort
    for col in f.language_columns:
        if sort in col.typed or normalized(sort) == col.code:
            return col.code
    return sort


MAX_LIMIT = 2**63 - 1
"""The largest row limit SQL takes (a 64-bit integer); no store holds that many rows anyway."""


def check_limit(limit: int | None) -> None:
    """Refuse a row limit SQL cannot take (``kdreg query -n 99999999999999999999``)."""
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(
            f"--limit {str(limit)[:30]} is out of range: give 1 to {MAX_LIMIT:,} (SQL's largest integer), "
            "or leave it out (--format csv lists every row)."
        )


def select_run_scores(
    f: Filters, *, sort: str = "run", descending: bool | None = None, limit: int | None = None
) -> Select:
    """One row per (run, metric, split): run fields, source score, zero-shot average, selected languages.

    Runs without any result in the chosen metric/split still appear (scores empty), unless
    languages are selected, which asks for runs that have them. When sorting by a run field
    the limit is applied before any result is read, so ``--limit 20`` reads 20 runs' results.
    """
    check_limit(limit)
    codes = [col.code for col in f.language_columns]
    sort = _language_sort_key(f, sort)
    if sort not in sort_key_names(f):
        hint = "" if f.language_columns else f" (to sort by a language, select it too: --lang {sort[:20]})"
        raise ConfigError(
            f"Cannot sort by {sort[:40]!r}; use one of: {', '.join(sort_key_names(f))}{hint}."
        )
    if descending is None:
        descending = sort not in ASCENDING_BY_DEFAULT
    by_run_field = sort in RUN_COLUMNS

    def ordered(column: ColumnElement) -> list[ColumnElement]:
        primary = column.desc() if descending else column.asc()
        if not by_run_field:
            primary = primary.nulls_last()
        return [primary, runs.c.id.desc()]

    run_ids: Select | None
    if by_run_field and limit is not None:
        run_ids = select_run_ids(f).order_by(*ordered(RUN_COLUMNS[sort])).limit(limit)
    else:
        # With languages selected, "has a score in one of them" (the WHERE below) already
        # is the language filter: testing it again per run (EXISTS) would double the work.
        conditions = run_conditions(f, with_langs=not codes)
        run_ids = select(runs.c.id).where(*conditions) if conditions else None
    scores = _scores_subquery(f, run_ids)
    lang_columns = [scores.c[lang_label(i)].label(code) for i, code in enumerate(codes)]
    stmt = (
        select(
            *(column.label(name) for name, column in RUN_COLUMNS.items()),
            runs.c.heartbeat_at.label("heartbeat_at"),
            scores.c.metric,
            scores.c.split,
            scores.c.source_lang,
            scores.c.source,
            *lang_columns,
            scores.c.zero_shot,
            scores.c.targets,
        )
        .select_from(runs.outerjoin(scores, scores.c.run_id == runs.c.id))
    )
    if run_ids is not None:
        stmt = stmt.where(runs.c.id.in_(run_ids))
    if codes:
        stmt = stmt.where(or_(*(scores.c[lang_label(i)].is_not(None) for i in range(len(codes)))))
    if by_run_field:
        key = RUN_COLUMNS[sort]
    elif sort in SCORE_COLUMNS:
        key = scores.c[sort]
    else:
        key = scores.c[lang_label(codes.index(sort))]
    stmt = stmt.order_by(*ordered(key), scores.c.metric, scores.c.split)
    return stmt.limit(limit) if limit is not None else stmt


# --------------------------------------------------------------------------- seed statistics
def _grouped_runs(f: Filters, key: Sequence[str]) -> Subquery:
    """Filtered run ids with a group id: the smallest run id among runs that share ``key``.

    The smallest id (rather than a rank) keeps a group's id stable while a grid is adding
    runs, so the two statements of a report agree on it. Ordered by id, so the results
    index is then read front to back rather than jumping around.
    """
    key_columns = [runs.c[name] for name in key]
    return (
        select(runs.c.id, func.min(runs.c.id).over(partition_by=key_columns).label("gid"))
        .where(*run_conditions(f))
        .order_by(runs.c.id)
        .subquery("grouped")
    )


def select_language_sums(f: Filters, metric: str, split: str, key: Sequence[str] = GROUP_KEY) -> Select:
    """Per (group, language, is_source): count, mean and sum of squares of the run values.

    With languages selected, only those (and each run's source language) are read.
    """
    g = _grouped_runs(f, key)
    r = results.alias("r")
    stmt = (
        select(
            g.c.gid,
            r.c.lang,
            r.c.is_source,
            func.count(r.c.value).label("n"),
            func.avg(r.c.value).label("mean"),
            func.sum(r.c.value * r.c.value).label("sumsq"),
        )
        .select_from(r.join(g, g.c.id == r.c.run_id))
        .where(r.c.metric == metric, r.c.split == split)
        .group_by(g.c.gid, r.c.lang, r.c.is_source)
    )
    if f.language_columns:
        stmt = stmt.where(or_(language_match(r, f.language_columns), r.c.is_source))
    return stmt


def select_language_spellings(f: Filters, metric: str, split: str,
                              key: Sequence[str] = GROUP_KEY) -> Select:
    """Per (benchmark, normalised code): the benchmark's own spellings (min and max), for headers.

    Read from one run per group (the spelling is the benchmark's, the same in every run of
    it), so this costs a few index lookups per group rather than a scan of the results.
    """
    representatives = select(func.min(runs.c.id)).where(*run_conditions(f)).group_by(
        *(runs.c[name] for name in key)
    )
    r = results.alias("r")
    return (
        select(
            runs.c.benchmark_spec,
            r.c.lang,
            func.min(r.c.language).label("first"),
            func.max(r.c.language).label("last"),
        )
        .select_from(r.join(runs, runs.c.id == r.c.run_id))
        .where(r.c.run_id.in_(representatives), r.c.metric == metric, r.c.split == split)
        .group_by(runs.c.benchmark_spec, r.c.lang)
    )


def select_zero_shot_sums(f: Filters, metric: str, split: str, key: Sequence[str] = GROUP_KEY) -> Select:
    """Per group: its id and key, #runs, #distinct seeds, and count/mean/sum of squares of the
    runs' zero-shot averages (each run's mean over all its non-source languages).

    ``min(id)`` of a GROUP BY is the same group id as :func:`_grouped_runs`' window gives, so
    this statement needs no window of its own.
    """
    r = results.alias("r")
    zero_shot = (
        select(r.c.run_id, func.avg(r.c.value).label("zs"))
        .where(r.c.metric == metric, r.c.split == split, not_(r.c.is_source))
        .group_by(r.c.run_id)
        .subquery("zs")
    )
    key_columns = [runs.c[name] for name in key]
    return (
        select(
            func.min(runs.c.id).label("gid"),
            *key_columns,
            func.count(runs.c.id).label("runs"),
            func.count(distinct(runs.c.seed)).label("seeds"),
            func.count(zero_shot.c.zs).label("n"),
            func.avg(zero_shot.c.zs).label("mean"),
            func.sum(zero_shot.c.zs * zero_shot.c.zs).label("sumsq"),
        )
        .select_from(runs.outerjoin(zero_shot, zero_shot.c.run_id == runs.c.id))
        .where(*run_conditions(f))
        .group_by(*key_columns)
    )


# --------------------------------------------------------------------------- flat export
FLAT_COLUMNS = {
    "run_id": runs.c.id,
    "config_hash": runs.c.config_hash,
    **{
        name: runs.c[name]
        for name in (
            "teacher",
            "teacher_spec",
            "student",
            "student_spec",
            "loss",
            "loss_spec",
            "benchmark",
            "benchmark_spec",
            "corpus",
            "corpus_spec",
            "stage",
            "seed",
            "status",
            "created_at",
            "finished_at",
        )
    },
    **{name: results.c[name] for name in ("language", "lang", "split", "metric", "value", "is_source")},
}
"""One row per result with its run's columns — the same columns as the ``results_flat`` view."""


def select_flat(f: Filters) -> Select:
    """Every result of the filtered runs (metric/split/language filters apply to the results too)."""
    stmt = (
        select(*(column.label(name) for name, column in FLAT_COLUMNS.items()))
        .select_from(runs.join(results, results.c.run_id == runs.c.id))
        .where(*run_conditions(f, with_langs=False))
    )
    if f.metric:
        stmt = stmt.where(results.c.metric.in_(f.metric))
    if f.split:
        stmt = stmt.where(results.c.split.in_(f.split))
    if f.language_columns:
        stmt = stmt.where(language_match(results, f.language_columns))
    return stmt.order_by(runs.c.id, results.c.split, results.c.metric, results.c.language)
