"""Pairing runs of two selections for a paired comparison (``kdreg compare``, the claims).

Two runs pair when they agree on every dimension of their canonical configs that both
of them have, except the dimensions the comparison contrasts (those named in ``--a`` and
``--b``). A config's dimensions are its top-level keys — teacher, student, loss,
benchmark, corpus (each a plugin with its parameters and version), stage, seed,
evaluated languages, pipeline version — and each training phase's hyper-parameters
(``hparams.finetune``, ``hparams.pretrain``, ``hparams.teacher_finetune``). A dimension
only one of the two runs has is not compared: a ``finetune`` run has no corpus and no
pretraining phase, a ``pretrain`` run no teacher fine-tuning, so ``--a stage=pretrain
--b stage=finetune`` pairs runs with the same teacher, student, loss, benchmark,
languages, seed and fine-tuning hyper-parameters.

Pairs are then split into **comparisons** that are homogeneous on each side: the
contrasted values of each side, the dimensions only one side has (so KD runs of two
losses against one shared ``none`` baseline are two comparisons, not one with the
baseline counted twice), the benchmark, and any ``--by`` dimension. Within a
comparison every run is in at most one pair. Everything else (teacher, student, loss,
seed, …, when shared) is pooled: the pairs of a comparison are its sample. A run of
either side without a partner is *unpaired* and listed, never dropped silently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kdreg.identity import canonical_json

PLUGIN_DIMENSIONS = ("teacher", "student", "loss", "benchmark", "corpus")
RUN_DIMENSIONS = (*PLUGIN_DIMENSIONS, "stage", "seed")
"""Filters that name a dimension of a run's config: naming one in --a/--b contrasts it."""
HPARAMS = "hparams"


@dataclass(frozen=True)
class ScoredRun:
    """A run of one side with its scores in the compared metric and split."""

    id: int
    config: dict[str, Any]
    specs: dict[str, str | None]
    """Display forms: the plugin specs (``kl:alpha=0.5``), the stage."""
    seed: int
    source_lang: str | None = None
    source: float | None = None
    languages: dict[str, float] = field(default_factory=dict)
    """Normalised code → score, non-source languages only."""

    @property
    def zero_shot(self) -> float | None:
        """Mean over every non-source language (as in reports and queries)."""
        values = list(self.languages.values())
        return sum(values) / len(values) if values else None

    @property
    def has_scores(self) -> bool:
        return self.source is not None or bool(self.languages)

    @property
    def label(self) -> str:
        """``run 12: pretrain · distil · kl ← mbert on xnli (seed 0)``."""
        s = self.specs
        parts = [p for p in (s.get("stage"), s.get("student"), s.get("loss"), s.get("corpus")) if p]
        return (f"run {self.id}: {' · '.join(parts)} ← {s.get('teacher')} on {s.get('benchmark')} "
                f"(seed {self.seed})")


def run_dimensions(config: Any) -> dict[str, Any]:
    """A config's dimensions: top-level keys with a value, and each phase's hyper-parameters."""
    out: dict[str, Any] = {}
    if not isinstance(config, dict):
        return out
    for key, value in config.items():
        if key == HPARAMS and isinstance(value, dict):
            out.update({f"{HPARAMS}.{phase}": hp for phase, hp in value.items() if hp is not None})
        elif value is not None:
            out[key] = value
    return out


@dataclass(frozen=True)
class Pairing:
    """The pairs of A and B, grouped into comparisons, and the runs left over."""

    groups: dict[str, list[tuple[ScoredRun, ScoredRun]]]
    """Comparison key → its pairs (A run, B run)."""
    descriptions: dict[str, dict[str, Any]]
    """Comparison key → what it is: benchmark, each side's contrasted values, one-sided dimensions."""
    unpaired_a: list[ScoredRun]
    unpaired_b: list[ScoredRun]
    ambiguous: list[ScoredRun] = field(default_factory=list)
    """Runs that matched several runs of the other side within one comparison (left out)."""


def _display(run: ScoredRun, dimension: str, value: Any) -> Any:
    """A plugin as its spec (``kl:alpha=0.5``), anything else as it is in the config."""
    if dimension in PLUGIN_DIMENSIONS and run.specs.get(dimension):
        return run.specs[dimension]
    return value


def _describe(a: ScoredRun, b: ScoredRun, da: dict[str, Any], db: dict[str, Any], contrasted: set[str],
              by: Sequence[str]) -> dict[str, Any]:
    """What puts the pair (a, b) in its comparison (nested, so labels read ``pretrain.max_steps=…``)."""
    out: dict[str, Any] = {}

    def put(path: Sequence[str], value: Any) -> None:
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value

    def path_of(dimension: str) -> list[str]:
        return dimension.split(".", 1) if dimension.startswith(f"{HPARAMS}.") else [dimension]

    if "benchmark" not in contrasted:
        put(["benchmark"], _display(a, "benchmark", da.get("benchmark")))
    for side, run, dims in (("A", a, da), ("B", b, db)):
        for dimension in sorted(contrasted):
            put([side, *path_of(dimension)], _display(run, dimension, dims.get(dimension)))
    for dimension in sorted(set(da) ^ set(db)):
        if dimension in contrasted:
            continue
        run, dims = (a, da) if dimension in da else (b, db)
        put(path_of(dimension), _display(run, dimension, dims[dimension]))
    for dimension in by:
        dims, run = (da, a) if dimension in da else (db, b)
        if dimension in dims:
            put(path_of(dimension), _display(run, dimension, dims[dimension]))
    return out


def pair_runs(a_runs: Iterable[ScoredRun], b_runs: Iterable[ScoredRun], contrasted: Iterable[str],
              by: Sequence[str] = ()) -> Pairing:
    """Pair A with B on every shared, non-contrasted dimension; group the pairs into comparisons."""
    contrasted = set(contrasted)
    a_list, b_list = list(a_runs), list(b_runs)
    dims = {id(run): {k: v for k, v in run_dimensions(run.config).items() if k not in contrasted}
            for run in (*a_list, *b_list)}
    full = {id(run): run_dimensions(run.config) for run in (*a_list, *b_list)}

    def by_structure(runs: list[ScoredRun]) -> dict[frozenset[str], list[ScoredRun]]:
        out: dict[frozenset[str], list[ScoredRun]] = defaultdict(list)
        for run in runs:
            out[frozenset(dims[id(run)])].append(run)
        return out

    a_structures, b_structures = by_structure(a_list), by_structure(b_list)
    candidates: list[tuple[ScoredRun, ScoredRun]] = []
    for a_keys, a_group in a_structures.items():
        for b_keys, b_group in b_structures.items():
            shared = sorted(a_keys & b_keys)
            index: dict[tuple[str, ...], list[ScoredRun]] = defaultdict(list)
            for b in b_group:
                index[tuple(canonical_json(dims[id(b)][k]) for k in shared)].append(b)
            for a in a_group:
                for b in index.get(tuple(canonical_json(dims[id(a)][k]) for k in shared), []):
                    candidates.append((a, b))

    groups: dict[str, list[tuple[ScoredRun, ScoredRun]]] = defaultdict(list)
    descriptions: dict[str, dict[str, Any]] = {}
    for a, b in candidates:
        description = _describe(a, b, full[id(a)], full[id(b)], contrasted, by)
        key = canonical_json(description)
        groups[key].append((a, b))
        descriptions[key] = description

    ambiguous: dict[int, ScoredRun] = {}
    for key, pairs in list(groups.items()):
        count: dict[int, int] = defaultdict(int)
        for a, b in pairs:
            count[id(a)] += 1
            count[id(b)] += 1
        kept = [(a, b) for a, b in pairs if count[id(a)] == 1 and count[id(b)] == 1]
        for a, b in pairs:
            for run in (a, b):
                if count[id(run)] > 1:
                    ambiguous[run.id] = run
        if kept:
            groups[key] = kept
        else:
            del groups[key]
            del descriptions[key]
    paired = {id(run) for pairs in groups.values() for pair in pairs for run in pair}
    return Pairing(
        groups=dict(groups),
        descriptions=descriptions,
        unpaired_a=[r for r in a_list if id(r) not in paired and r.id not in ambiguous],
        unpaired_b=[r for r in b_list if id(r) not in paired and r.id not in ambiguous],
        ambiguous=list(ambiguous.values()),
    )
