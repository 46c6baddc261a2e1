"""The table a paper needs, from whatever is in the store.

One :class:`ReportTable` per benchmark (and metric/split): rows are the groups of runs
that differ only by seed (one *setup* each, :mod:`kdreg.identity`) — labelled (teacher,
student, stage, loss), plus the corpus when one was used, plus what sets a setup apart
when two rows share those (``setup``: ``finetune.learning_rate=3e-5``) — and columns are
the source language, each target language and the zero-shot average; each cell is
mean ± std over seeds with n, and the best mean per column among the students is marked
(the teacher's row is the reference, never "best"); the benchmark's chance level comes
with the table when the benchmark knows it. Rows follow the study's order (the teacher's
own row, then stages none → finetune → pretrain → both), so the seed study is simply
``kdreg report --teacher X --student Y``.

The table is a plain value; :mod:`kdreg.reporting.tables` renders it for a terminal,
Markdown, LaTeX, CSV or HTML, and :mod:`kdreg.reporting.plot` draws it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kdreg.errors import ConfigError
from kdreg.languages import looks_like_code
from kdreg.reporting.aggregate import Aggregate, SeedGroup, seed_groups
from kdreg.store.filters import Filters

ZERO_SHOT = "zero_shot"


Chance = Callable[[str, str], "float | None"]
"""(benchmark specification, metric) → chance level (0..1) or None."""

NO_LABEL = "—"
"""A label a row does not have (the teacher's student, the loss of stage none), as tables show it."""


@dataclass(frozen=True)
class ReportRow:
    """One group of seeds: its label values and one cell per column."""

    label: tuple[str, ...]
    cells: tuple[Aggregate | None, ...]
    runs: int
    seeds: int


@dataclass(frozen=True)
class ReportTable:
    """A benchmark's table for one metric and split (values already scaled)."""

    benchmark: str
    metric: str
    split: str
    label_columns: tuple[str, ...]
    keys: tuple[str, ...]
    """Machine names of the value columns: ``source``, language codes, ``zero_shot``."""
    headers: tuple[str, ...]
    """What people read above the value columns (``en (source)``, ``de``, ``zero-shot avg``)."""
    rows: tuple[ReportRow, ...]
    best: tuple[frozenset[int], ...]
    """Per value column: the rows holding its highest mean."""
    scale: float
    digits: int
    notes: tuple[str, ...] = ()
    chance: float | None = None
    """The benchmark's chance level for the metric (scaled like the cells), when it says."""

    @property
    def title(self) -> str:
        unit = f" ×{self.scale:g}" if self.scale != 1 else ""
        return f"{self.benchmark} — {self.metric} on {self.split}{unit}, mean ± std over seeds (n)"

    def cell_text(self, row: int, column: int) -> str:
        cell = self.rows[row].cells[column]
        return "" if cell is None else cell.text(self.digits)

    def is_best(self, row: int, column: int) -> bool:
        return row in self.best[column] and len(self.rows) > 1

    @property
    def chance_text(self) -> str:
        """The chance level as cells show numbers ('' when unknown)."""
        return "" if self.chance is None else f"{self.chance:.{self.digits}f}"


def _label_columns(groups: Sequence[SeedGroup]) -> tuple[str, ...]:
    columns = ["teacher", "student", "stage", "loss"]
    if any(g.key.get("corpus") for g in groups):
        columns.append("corpus")
    if any(g.setup for g in groups):  # rows whose specs are equal: what sets their setups apart
        columns.append("setup")
    return tuple(columns)


def language_header(code: str, groups: Sequence[SeedGroup]) -> str:
    """What a language column is headed with: its code, or the benchmark's name for it.

    Codes are shown normalised (``de`` for ``deu_Latn``, so XNLI and SIB-200 tables line up);
    a language the benchmark spells by name (a ``files`` folder ``toba_batak``) keeps that
    name, which says more than its code ``bbc``.
    """
    spelled = {g.spellings.get(code) for g in groups}
    if len(spelled) == 1:
        spelling = spelled.pop()
        if spelling and not looks_like_code(spelling):
            return spelling
    return code


def _best(rows: Sequence[ReportRow], column: int, stage: int | None) -> frozenset[int]:
    """Rows with the column's highest mean among the students: the teacher's own row is the
    reference they are measured against, never the "best" of them."""
    means = [(r.cells[column].mean, i) for i, r in enumerate(rows)
             if r.cells[column] is not None and (stage is None or r.label[stage] != "teacher")]
    if not means:
        return frozenset()
    top = max(m for m, _ in means)
    return frozenset(i for m, i in means if m == top)


def build_table(
    groups: Sequence[SeedGroup], *, languages: Sequence[str] = (), scale: float = 100.0, digits: int = 1,
    chance: Chance | None = None,
) -> ReportTable:
    """One table from the seed groups of one benchmark, metric and split.

    ``languages`` (normalised codes) restricts and orders the target columns; by default
    every target language any row has, alphabetically. ``chance`` gives a benchmark
    specification's chance level of a metric (:func:`kdreg.reporting.chance.chance_level`).
    """
    first = groups[0]
    targets = list(languages) or sorted({lang for g in groups for lang in g.languages})
    sources = sorted({g.source_lang for g in groups if g.source_lang})
    source_header = f"{language_header(sources[0], groups)} (source)" if len(sources) == 1 else "source"
    label_columns = _label_columns(groups)
    rows: list[ReportRow] = []
    notes: list[str] = []
    for g in groups:
        cells = (g.source, *(g.languages.get(lang) for lang in targets), g.zero_shot)
        if all(c is None for c in cells):
            continue
        values = {**g.key, "setup": g.setup}
        rows.append(
            ReportRow(
                label=tuple(values.get(name) or NO_LABEL for name in label_columns),
                cells=tuple(None if c is None else c.scaled(scale) for c in cells),
                runs=g.runs,
                seeds=g.seeds,
            )
        )
        if g.runs > g.seeds:  # one setup and seed is one run for kdreg's grid: rows written by hand
            notes.append(f"{g.label()}: {g.runs} runs of one setup but {g.seeds} distinct seeds.")
    skipped = len(groups) - len(rows)
    if skipped:
        notes.append(f"{skipped} group(s) without {first.metric}/{first.split} results left out.")
    stage = label_columns.index("stage") if "stage" in label_columns else None
    best = tuple(_best(rows, c, stage) for c in range(len(targets) + 2))
    return ReportTable(
        benchmark=first.key.get("benchmark") or "",
        metric=first.metric,
        split=first.split,
        label_columns=label_columns,
        keys=("source", *targets, ZERO_SHOT),
        headers=(source_header, *(language_header(lang, groups) for lang in targets), "zero-shot avg"),
        rows=tuple(rows),
        best=best,
        scale=scale,
        digits=digits,
        notes=tuple(notes),
        chance=_scaled_chance(chance, first.key.get("benchmark"), first.metric, scale),
    )


def _scaled_chance(chance: Chance | None, benchmark: str | None, metric: str, scale: float) -> float | None:
    value = chance(benchmark, metric) if chance is not None and benchmark else None
    return None if value is None else value * scale


def build_report(
    source: Any, filters: Filters, *, scale: float = 100.0, digits: int = 1, chance: Chance | None = None
) -> list[ReportTable]:
    """Every benchmark × metric × split table the filters select (empty tables are left out).

    ``source`` is a :class:`~kdreg.store.reading.Reader` or an open connection; ``chance``
    the benchmarks' chance levels (see :func:`build_table`).
    """
    if not (0 < scale < math.inf):  # also refuses NaN; a negative scale would turn "best" upside down
        raise ConfigError(f"The scale must be a positive number (100 shows accuracy in %), not {scale}.")
    tables: list[ReportTable] = []
    languages = [col.code for col in filters.language_columns]
    for metric in filters.metrics:
        for split in filters.splits:
            by_benchmark: dict[str, list[SeedGroup]] = {}
            for group in seed_groups(source, filters, metric, split):
                by_benchmark.setdefault(group.key.get("benchmark") or "", []).append(group)
            for groups in by_benchmark.values():
                table = build_table(groups, languages=languages, scale=scale, digits=digits, chance=chance)
                if table.rows:
                    tables.append(table)
    return tables
