"""Reading the store: user filters as bound parameters, and the SQL that scores runs.

Every filter value reaches the database as a bound parameter — no filter text ever
becomes SQL. Repeating an option means OR within it; different options combine with AND.
A run dimension matches by plugin name or by full spec (``--loss kl`` matches
``loss = 'kl'`` or ``loss_spec = 'kl'``), and languages match through their normalised
code (``--lang de`` finds ``de``, ``deu`` and ``deu_Latn``) or the benchmark's own code.

The statements are SQL text for every back-end (:mod:`kdreg.store.sqltext`; run by
:mod:`kdreg.store.reading`), in two shapes, both aggregating in SQL so a 1.6 M-result store never travels
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

from kdreg.errors import ConfigError
from kdreg.store.filters import Filters, LanguageColumn, normalized
from kdreg.store.reading import open_reader, read_connection
from kdreg.store.sqltext import NOTHING, Params, Sql, any_of, where

__all__ = ["open_reader", "read_connection"]  # re-exported: the read path in one import

DIMENSIONS = ("teacher", "student", "loss", "benchmark", "corpus")
"""Run dimensions matched by name (column ``teacher``) or full spec (``teacher_spec``)."""

GROUP_KEY = (
    "teacher_spec", "student_spec", "stage", "loss_spec", "benchmark_spec", "corpus_spec", "setup_hash"
)
"""What identifies a group of runs that differ only by seed: their setup (and the specs people read)."""


# --------------------------------------------------------------------------- conditions
def language_match(p: Params, table: str, column: LanguageColumn | Sequence[LanguageColumn]) -> str:
    """A row of ``table`` (results) is in ``column``: its normalised code, or its code as typed."""
    columns = [column] if isinstance(column, LanguageColumn) else list(column)
    if not columns:
        return NOTHING
    codes = [col.code for col in columns]
    typed = [t for col in columns for t in col.typed]
    return any_of([p.is_in(f"{table}.lang", codes), p.is_in(f"{table}.language", typed)])


def run_conditions(f: Filters, p: Params, *, with_langs: bool = True) -> list[str]:
    """Conditions on ``runs`` for every filter (languages, metrics, splits: EXISTS on results)."""
    conds: list[str] = []
    for dimension in DIMENSIONS:
        values = getattr(f, dimension)
        if not values:
            continue
        either = [p.is_in(f"runs.{dimension}", values), p.is_in(f"runs.{dimension}_spec", values)]
        if f.keep_unset and dimension in ("student", "loss", "corpus"):
            either.append(f"runs.{dimension} IS NULL")
        conds.append(any_of(either))
    if f.stage:
        conds.append(p.is_in("runs.stage", f.stage))
    if f.seed:
        conds.append(p.is_in("runs.seed", f.seed))
    if f.status:
        conds.append(p.is_in("runs.status", f.status))
    if f.since is not None:
        conds.append(f"runs.created_at >= {p(f.since)}")
    if f.until is not None:
        conds.append(f"runs.created_at < {p(f.until)}")
    if f.grid:
        conds.append("EXISTS (SELECT 1 FROM grid_runs WHERE grid_runs.run_id = runs.id"
                     f" AND {p.is_in('grid_runs.grid_id', f.grid)})")
    if with_langs and (f.language_columns or f.metric or f.split):
        # A language, metric or split asked for by name selects runs that have such a result;
        # without them, runs with no result yet (pending, failed) are listed too.
        wanted = ["rf.run_id = runs.id", p.is_in("rf.metric", f.metrics), p.is_in("rf.split", f.splits)]
        if f.language_columns:
            wanted.append(language_match(p, "rf", f.language_columns))
        conds.append(f"EXISTS (SELECT 1 FROM results AS rf{where(wanted)})")
    return conds


def count_runs(f: Filters) -> Sql:
    """How many runs pass every filter (one row, column ``n``)."""
    p = Params()
    return p.sql(f"SELECT count(*) AS n FROM runs{where(run_conditions(f, p))}")


# --------------------------------------------------------------------------- per-run scores
RUN_COLUMNS = {
    "run": "runs.id",
    "hash": "runs.config_hash",
    "teacher": "runs.teacher_spec",
    "student": "runs.student_spec",
    "stage": "runs.stage",
    "loss": "runs.loss_spec",
    "benchmark": "runs.benchmark_spec",
    "corpus": "runs.corpus_spec",
    "seed": "runs.seed",
    "status": "runs.status",
    "created": "runs.created_at",
}
"""Run fields of a query row (display forms of the plugins) and the columns they come from."""

SCORE_COLUMNS = ("source", "zero_shot", "targets")
ASCENDING_BY_DEFAULT = frozenset(
    {"teacher", "student", "stage", "loss", "benchmark", "corpus", "seed", "status"}
)


def lang_label(index: int) -> str:
    """SQL label of the i-th selected language column (user text never names a column)."""
    return f"lang_{index}"


def _scores_subquery(f: Filters, p: Params, run_ids: str | None) -> str:
    columns = [
        "r.run_id AS run_id",
        "r.metric AS metric",
        "r.split AS split",
        "max(CASE WHEN r.is_source THEN r.lang END) AS source_lang",
        'avg(CASE WHEN r.is_source THEN r.value END) AS "source"',
        "avg(CASE WHEN NOT r.is_source THEN r.value END) AS zero_shot",
        "count(CASE WHEN NOT r.is_source THEN r.value END) AS targets",
    ]
    columns += [
        f"avg(CASE WHEN {language_match(p, 'r', col)} THEN r.value END) AS {lang_label(i)}"
        for i, col in enumerate(f.language_columns)
    ]
    wanted = [p.is_in("r.metric", f.metrics), p.is_in("r.split", f.splits)]
    if run_ids is not None:
        wanted.append(f"r.run_id IN ({run_ids})")
    group = "GROUP BY r.run_id, r.metric, r.split"
    return f"SELECT {', '.join(columns)} FROM results AS r{where(wanted)} {group}"


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
) -> Sql:
    """One row per (run, metric, split): run fields, source score, zero-shot average, selected languages.

    Runs without any result in the chosen metric/split still appear (scores empty), unless
    languages are selected, which asks for runs that have them. When sorting by a run field
    the limit is applied before any result is read, so ``--limit 20`` reads 20 runs' results.
    Language columns are labelled ``lang_0``… in SQL and named by their codes in the rows.
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

    def ordered(column: str) -> str:
        primary = f"{column} {'DESC' if descending else 'ASC'}"
        return f"{primary}, runs.id DESC" if by_run_field else f"{primary} NULLS LAST, runs.id DESC"

    p = Params()
    run_ids: str | None
    if by_run_field and limit is not None:
        run_ids = (f"SELECT runs.id FROM runs{where(run_conditions(f, p))}"
                   f" ORDER BY {ordered(RUN_COLUMNS[sort])} LIMIT {p(limit)}")
    else:
        # With languages selected, "has a score in one of them" (the WHERE below) already
        # is the language filter: testing it again per run (EXISTS) would double the work.
        conditions = run_conditions(f, p, with_langs=not codes)
        run_ids = f"SELECT runs.id FROM runs{where(conditions)}" if conditions else None
    scores = _scores_subquery(f, p, run_ids)
    columns = [f'{column} AS "{name}"' for name, column in RUN_COLUMNS.items()]
    columns += ["runs.heartbeat_at AS heartbeat_at", "scores.metric AS metric", "scores.split AS split",
                "scores.source_lang AS source_lang", 'scores.source AS "source"']
    columns += [f"scores.{lang_label(i)} AS {lang_label(i)}" for i in range(len(codes))]
    columns += ["scores.zero_shot AS zero_shot", "scores.targets AS targets"]
    conditions = []
    if run_ids is not None:
        conditions.append(f"runs.id IN ({run_ids})")
    if codes:
        conditions.append(any_of(f"scores.{lang_label(i)} IS NOT NULL" for i in range(len(codes))))
    if by_run_field:
        key = RUN_COLUMNS[sort]
    elif sort in SCORE_COLUMNS:
        key = f"scores.{sort}"
    else:
        key = f"scores.{lang_label(codes.index(sort))}"
    text = (f"SELECT {', '.join(columns)} FROM runs LEFT OUTER JOIN ({scores}) AS scores"
            f" ON scores.run_id = runs.id{where(conditions)}"
            f" ORDER BY {ordered(key)}, scores.metric, scores.split")
    if limit is not None:
        text += f" LIMIT {p(limit)}"
    return Sql(text, dict(p.values), {lang_label(i): code for i, code in enumerate(codes)})


# --------------------------------------------------------------------------- seed statistics
def _key_columns(key: Sequence[str]) -> str:
    return ", ".join(f"runs.{name}" for name in key)


def _grouped_runs(f: Filters, p: Params, key: Sequence[str]) -> str:
    """Filtered run ids with a group id: the smallest run id among runs that share ``key``.

    The smallest id (rather than a rank) keeps a group's id stable while a grid is adding
    runs, so the two statements of a report agree on it. Ordered by id, so the results
    index is then read front to back rather than jumping around.
    """
    return (f"SELECT runs.id AS id, min(runs.id) OVER (PARTITION BY {_key_columns(key)}) AS gid"
            f" FROM runs{where(run_conditions(f, p))} ORDER BY runs.id")


def select_language_sums(f: Filters, metric: str, split: str, key: Sequence[str] = GROUP_KEY) -> Sql:
    """Per (group, language, is_source): count, mean and sum of squares of the run values.

    With languages selected, only those (and each run's source language) are read.
    """
    p = Params()
    grouped = _grouped_runs(f, p, key)
    wanted = [f"r.metric = {p(metric)}", f"r.split = {p(split)}"]
    if f.language_columns:
        wanted.append(any_of([language_match(p, "r", f.language_columns), "r.is_source"]))
    return p.sql(
        "SELECT grouped.gid AS gid, r.lang AS lang, r.is_source AS is_source, count(r.value) AS n,"
        " avg(r.value) AS mean, sum(r.value * r.value) AS sumsq"
        f" FROM results AS r JOIN ({grouped}) AS grouped ON grouped.id = r.run_id{where(wanted)}"
        " GROUP BY grouped.gid, r.lang, r.is_source"
    )


def select_language_spellings(f: Filters, metric: str, split: str,
                              key: Sequence[str] = GROUP_KEY) -> Sql:
    """Per (benchmark, normalised code): the benchmark's own spellings (min and max), for headers.

    Read from one run per group (the spelling is the benchmark's, the same in every run of
    it), so this costs a few index lookups per group rather than a scan of the results.
    """
    p = Params()
    representatives = (f"SELECT min(runs.id) FROM runs{where(run_conditions(f, p))}"
                       f" GROUP BY {_key_columns(key)}")
    wanted = [f"r.run_id IN ({representatives})", f"r.metric = {p(metric)}", f"r.split = {p(split)}"]
    return p.sql(
        'SELECT runs.benchmark_spec AS benchmark_spec, r.lang AS lang, min(r.language) AS "first",'
        ' max(r.language) AS "last"'
        f" FROM results AS r JOIN runs ON runs.id = r.run_id{where(wanted)}"
        " GROUP BY runs.benchmark_spec, r.lang"
    )


def select_zero_shot_sums(f: Filters, metric: str, split: str, key: Sequence[str] = GROUP_KEY) -> Sql:
    """Per group: its id and key, #runs, #distinct seeds, and count/mean/sum of squares of the
    runs' zero-shot averages (each run's mean over all its non-source languages).

    ``min(id)`` of a GROUP BY is the same group id as :func:`_grouped_runs`' window gives, so
    this statement needs no window of its own.
    """
    p = Params()
    zero_shot = ("SELECT r.run_id AS run_id, avg(r.value) AS zs FROM results AS r"
                 f" WHERE r.metric = {p(metric)} AND r.split = {p(split)} AND NOT r.is_source"
                 " GROUP BY r.run_id")
    return p.sql(
        f"SELECT min(runs.id) AS gid, {', '.join(f'runs.{name} AS {name}' for name in key)},"
        ' count(runs.id) AS "runs", count(DISTINCT runs.seed) AS seeds, count(zs.zs) AS n,'
        " avg(zs.zs) AS mean, sum(zs.zs * zs.zs) AS sumsq"
        f" FROM runs LEFT OUTER JOIN ({zero_shot}) AS zs ON zs.run_id = runs.id"
        f"{where(run_conditions(f, p))} GROUP BY {_key_columns(key)}"
    )


# --------------------------------------------------------------------------- flat export
FLAT_COLUMNS = {
    "run_id": "runs.id",
    "config_hash": "runs.config_hash",
    **{
        name: f"runs.{name}"
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
    **{name: f"results.{name}" for name in ("language", "lang", "split", "metric", "value", "is_source")},
}
"""One row per result with its run's columns — the same columns as the ``results_flat`` view."""


def select_flat(f: Filters) -> Sql:
    """Every result of the filtered runs (metric/split/language filters apply to the results too)."""
    p = Params()
    conditions = run_conditions(f, p, with_langs=False)
    if f.metric:
        conditions.append(p.is_in("results.metric", f.metric))
    if f.split:
        conditions.append(p.is_in("results.split", f.split))
    if f.language_columns:
        conditions.append(language_match(p, "results", f.language_columns))
    columns = ", ".join(f'{column} AS "{name}"' for name, column in FLAT_COLUMNS.items())
    return p.sql(
        f"SELECT {columns} FROM runs JOIN results ON results.run_id = runs.id{where(conditions)}"
        " ORDER BY runs.id, results.split, results.metric, results.language"
    )
