"""Reading one side of a comparison: its runs, their configs, and their scores in one metric and split.

Two statements on the light read path (no ORM): the runs that pass both the common
filters and the side's, and their results in the chosen metric and split. A side's
runs are few compared with a store's results, so the per-language values are gathered
in Python (a language a benchmark spells twice in one run, ``deu`` and ``deu_Latn``,
is averaged, as reports do).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from kdreg.reporting.pairing import PLUGIN_DIMENSIONS, ScoredRun
from kdreg.store.filters import Filters


def read_side(source: Any, common: Filters, side: Filters, metric: str, split: str) -> list[ScoredRun]:
    """The runs passing ``common`` and ``side``, with their scores; ``source``: a Reader or Store."""
    from kdreg.store.queries import run_conditions
    from kdreg.store.reading import fetch_all
    from kdreg.store.sqltext import Params, where

    def chosen(p: Params) -> str:
        both = [run_conditions(f, p, with_langs=False) for f in (common, side)]
        return where([*both[0], *both[1]])

    spec_columns = ", ".join(f"runs.{name}_spec AS {name}" for name in PLUGIN_DIMENSIONS)
    p, q = Params(), Params()
    run_rows, result_rows = fetch_all(source, [
        p.sql(f"SELECT runs.id AS id, runs.config AS config, runs.seed AS seed, runs.stage AS stage,"
              f" {spec_columns} FROM runs{chosen(p)} ORDER BY runs.id"),
        q.sql("SELECT results.run_id AS run_id, results.lang AS lang, results.is_source AS is_source,"
              f" results.value AS value FROM results WHERE results.metric = {q(metric)}"
              f" AND results.split = {q(split)} AND results.run_id IN (SELECT runs.id FROM runs{chosen(q)})"),
    ])
    values: dict[int, dict[tuple[str, bool], list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in result_rows:
        values[row["run_id"]][(row["lang"], bool(row["is_source"]))].append(float(row["value"]))
    out: list[ScoredRun] = []
    for row in run_rows:
        mine = values.get(row["id"], {})
        source_items = [(lang, v) for (lang, is_source), v in mine.items() if is_source]
        out.append(ScoredRun(
            id=row["id"],
            config=row["config"] if isinstance(row["config"], dict) else {},
            specs={"stage": row["stage"], **{name: row[name] for name in PLUGIN_DIMENSIONS}},
            seed=row["seed"],
            source_lang=source_items[0][0] if source_items else None,
            source=sum(source_items[0][1]) / len(source_items[0][1]) if source_items else None,
            languages={lang: sum(v) / len(v) for (lang, is_source), v in mine.items() if not is_source},
        ))
    return out
