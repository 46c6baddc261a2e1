"""Numbers over seeds: mean ± sample standard deviation with n, and the zero-shot average.

A paper reports a configuration by the mean over its seeds, the *sample* standard
deviation (ddof = 1: the seeds are a sample of all possible seeds) and how many seeds
there were — one seed has no spread, so its std is ``None`` rather than a misleading 0.

The zero-shot average of a run is the mean of its scores over the non-source languages:
the number the KD-for-transfer question is about. Over seeds it is aggregated like any
other column — the mean and spread of the runs' averages.

SQL does the heavy lifting (:mod:`kdreg.store.queries` returns count, mean and sum of
squares per group); this module turns those sums into :class:`Aggregate` values and
assembles :class:`SeedGroup`\\ s. Pure-Python :meth:`Aggregate.of` is the reference the
SQL path is tested against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kdreg.store.filters import STAGES, Filters

KEY_NAMES = {
    "teacher_spec": "teacher",
    "student_spec": "student",
    "stage": "stage",
    "loss_spec": "loss",
    "benchmark_spec": "benchmark",
    "corpus_spec": "corpus",
    "setup_hash": "setup_hash",
}
"""Group-key columns and the names people see."""


@dataclass(frozen=True)
class Aggregate:
    """Mean, sample std (None for n < 2) and n of a column over seeds."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Aggregate | None:
        """From the values themselves (two-pass, the reference computation)."""
        data = [float(v) for v in values]
        if not data:
            return None
        mean = math.fsum(data) / len(data)
        if len(data) < 2:
            return cls(mean, None, 1)
        variance = math.fsum((v - mean) ** 2 for v in data) / (len(data) - 1)
        return cls(mean, math.sqrt(variance), len(data))

    @classmethod
    def from_sums(cls, n: int, mean: float | None, sum_of_squares: float | None) -> Aggregate | None:
        """From SQL's count, average and sum of squares (``var = (Σx² − n·mean²) / (n − 1)``).

        Rounding can make a zero variance slightly negative; it is clamped to 0.
        """
        if not n or mean is None:
            return None
        mean = float(mean)
        if n < 2 or sum_of_squares is None:
            return cls(mean, None, int(n))
        variance = (float(sum_of_squares) - n * mean * mean) / (n - 1)
        tolerance = 1e-13 * max(1.0, abs(float(sum_of_squares)))
        return cls(mean, math.sqrt(variance) if variance > tolerance else 0.0, int(n))

    def scaled(self, factor: float) -> Aggregate:
        """The same aggregate in other units (×100 for percentages)."""
        return Aggregate(self.mean * factor, None if self.std is None else self.std * abs(factor), self.n)

    def text(self, digits: int = 1, *, pm: str = "±", show_n: bool = True) -> str:
        """``71.2 ± 0.8 (3)``; one seed: ``71.2 (1)``."""
        body = f"{self.mean:.{digits}f}"
        if self.std is not None:
            body += f" {pm} {self.std:.{digits}f}"
        return f"{body} ({self.n})" if show_n else body


def zero_shot_average(scores: Mapping[str, float], source: str | None) -> float | None:
    """Mean over the languages other than ``source``; None when there is none."""
    targets = [value for lang, value in scores.items() if lang != source and value is not None]
    return math.fsum(targets) / len(targets) if targets else None


@dataclass(frozen=True)
class SeedGroup:
    """Runs that differ only by seed, with every column aggregated over them."""

    key: dict[str, str | None]
    metric: str
    split: str
    runs: int
    seeds: int
    source_lang: str | None = None
    source: Aggregate | None = None
    languages: dict[str, Aggregate] = field(default_factory=dict)
    """Target (non-source) languages by normalised code."""
    zero_shot: Aggregate | None = None
    setup: str = ""
    """What sets this group's setup apart from others with the same plugin specs
    (``finetune.learning_rate=3e-5``); empty when no other group shares its specs."""
    spellings: dict[str, str] = field(default_factory=dict)
    """Normalised code → the benchmark's own spelling of it, where it has exactly one."""

    def label(self, names: Sequence[str] = ("teacher", "student", "stage", "loss", "setup")) -> str:
        values = {**self.key, "setup": self.setup}
        return " · ".join(values.get(n) or "—" for n in names if n != "setup" or self.setup)

    def cells(self, languages: Sequence[str] | None = None) -> dict[str, Aggregate | None]:
        """Value columns: ``source``, the given target languages (None: all), ``zero_shot``."""
        codes = sorted(self.languages) if languages is None else list(languages)
        return {
            "source": self.source,
            **{c: self.languages.get(c) for c in codes},
            "zero_shot": self.zero_shot,
        }

    def record(self, languages: Sequence[str] | None = None) -> dict[str, Any]:
        """Flat, machine-readable: key fields, counts, then ``<column>_mean``, ``_std``, ``_n``."""
        out: dict[str, Any] = {
            **self.key,
            "metric": self.metric,
            "split": self.split,
            "setup": self.setup or None,
            "runs": self.runs,
            "seeds": self.seeds,
            "source_lang": self.source_lang,
        }
        for name, cell in self.cells(languages).items():
            out[f"{name}_mean"] = cell.mean if cell else None
            out[f"{name}_std"] = cell.std if cell else None
            out[f"{name}_n"] = cell.n if cell else 0
        return out


def _stage_rank(stage: str | None) -> int:
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def group_sort_key(group: SeedGroup) -> tuple[Any, ...]:
    """Benchmark, teacher, then the stages in study order (teacher, none, finetune, pretrain, both)."""
    k = group.key
    return (
        k.get("benchmark") or "",
        k.get("teacher") or "",
        _stage_rank(k.get("stage")),
        k.get("student") or "",
        k.get("loss") or "",
        k.get("corpus") or "",
        group.setup,
    )


def seed_groups(source: Any, filters: Filters, metric: str, split: str) -> list[SeedGroup]:
    """Aggregate the filtered runs over seeds for one metric and split (two SQL statements).

    ``source`` is a Reader or Store (statements run in parallel) or an open read connection. Groups are
    the runs of one setup (their configs equal but for the seed, :mod:`kdreg.identity`);
    groups whose plugin specs are equal are labelled by what differs (``setup``).
    """
    from kdreg.store.queries import (
        GROUP_KEY,
        select_language_spellings,
        select_language_sums,
        select_zero_shot_sums,
    )
    from kdreg.store.reading import fetch_all

    zero_shot_rows, language_rows, spelling_rows = fetch_all(
        source,
        [
            select_zero_shot_sums(filters, metric, split, GROUP_KEY),
            select_language_sums(filters, metric, split, GROUP_KEY),
            select_language_spellings(filters, metric, split, GROUP_KEY),
        ],
    )
    spellings: dict[str | None, dict[str, str]] = {}
    for row in spelling_rows:
        if row["first"] == row["last"]:
            spellings.setdefault(row["benchmark_spec"], {})[row["lang"]] = row["first"]
    groups: dict[int, dict[str, Any]] = {}
    for row in zero_shot_rows:
        groups[row["gid"]] = {
            "key": {KEY_NAMES[name]: row[name] for name in GROUP_KEY},
            "runs": row["runs"],
            "seeds": row["seeds"],
            "zero_shot": Aggregate.from_sums(row["n"], row["mean"], row["sumsq"]),
            "languages": {},
            "spellings": spellings.get(row["benchmark_spec"], {}),
        }
    for row in language_rows:
        group = groups.get(row["gid"])
        if group is None:  # a group created between the two statements: it shows next time
            continue
        value = Aggregate.from_sums(row["n"], row["mean"], row["sumsq"])
        if row["is_source"]:
            group["source_lang"], group["source"] = row["lang"], value
        elif value is not None:
            group["languages"][row["lang"]] = value
    labels = setup_labels(source, {gid: g["key"] for gid, g in groups.items()})
    out = [SeedGroup(metric=metric, split=split, setup=labels.get(gid, ""), **g) for gid, g in groups.items()]
    return sorted(out, key=group_sort_key)


def setup_labels(source: Any, keys: Mapping[int, Mapping[str, Any]]) -> dict[int, str]:
    """Labels of the groups (by id: their first run) whose plugin specs another group shares.

    Only those groups' configs are read (one run each), so a store where every row has
    its own specs costs nothing more.
    """
    from kdreg.reporting.setups import difference_labels

    families: dict[tuple[Any, ...], list[int]] = {}
    for gid, key in keys.items():
        families.setdefault(tuple(v for k, v in key.items() if k != "setup_hash"), []).append(gid)
    shared = [gids for gids in families.values() if len(gids) > 1]
    if not shared:
        return {}
    configs = run_configs(source, [gid for gids in shared for gid in gids])
    labels: dict[int, str] = {}
    for gids in shared:
        labels.update(difference_labels({gid: configs.get(gid) for gid in gids}))
    return labels


def run_configs(source: Any, run_ids: Sequence[int]) -> dict[int, Any]:
    """The canonical configs of some runs (a few hundred ids per statement)."""
    from kdreg.store.reading import fetch_all
    from kdreg.store.sqltext import Params

    ids = list(run_ids)
    statements = []
    for i in range(0, len(ids), 500):
        p = Params()
        statements.append(p.sql(f"SELECT id, config FROM runs WHERE {p.is_in('id', ids[i : i + 500])}"))
    return {row["id"]: row["config"] for rows in fetch_all(source, statements) for row in rows}
