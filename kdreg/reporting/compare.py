"""Paired comparisons between two selections of runs: ``kdreg compare --a … --b …``.

A researcher's question — "is KD in pretraining better than KD in fine-tuning, by how
much, how sure are we?" — is a paired one: the same teacher, student, loss, languages,
seed and hyper-parameters, once with A and once with B. :mod:`kdreg.reporting.pairing`
finds those pairs; this module reads the runs and their scores from the store and
computes, per comparison and for the source language, each target language and the
zero-shot average:

* the mean of A, of B, and of the differences A − B (Δ) over the n pairs;
* a **paired t-test** (``scipy.stats.ttest_rel``, two-sided): its p-value, and the 95 %
  confidence interval of the mean difference (Student's t with n − 1 degrees of freedom,
  from the same result object);
* the effect size **Cohen's d_z**: mean difference / sample standard deviation of the
  differences (ddof = 1).

A single pair has no interval, p-value or effect size (None). Differences that are all
equal have no spread: scipy then gives a degenerate interval and p = 0 (all equal and
non-zero) or no p-value (all zero); d_z is None (also when the spread is mere float
noise). scipy is imported only here, when a comparison is computed, so the command that
shows one stays light.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kdreg.errors import ConfigError
from kdreg.reporting.pairing import PLUGIN_DIMENSIONS, RUN_DIMENSIONS, ScoredRun, pair_runs
from kdreg.store.filters import Filters, build_filters

TEST = "paired t-test (scipy.stats.ttest_rel, two-sided)"
CONFIDENCE = 0.95
SIDE_FILTERS = (*RUN_DIMENSIONS, "status", "grid", "since", "until")
"""What ``--a``/``--b`` take (every run filter of ``kdreg query``); languages, metrics and splits are
the same for both sides, so they are given once (``--lang``, ``--metric``, ``--split``)."""
ZERO_SHOT = "zero_shot"
SOURCE = "source"


# --------------------------------------------------------------------------- the two sides
@dataclass(frozen=True)
class Side:
    """One side of a comparison: its conditions as typed, as filters, and the dimensions it names."""

    text: str
    filters: Filters
    dimensions: tuple[str, ...]


_CONDITION = re.compile(r"\s*([A-Za-z_]+)\s*=(.*)", re.S)


def parse_side(values: Sequence[str], option: str = "--a") -> Side:
    """``stage=pretrain``, ``loss=kl:alpha=0.9,temperature=4``, ``stage=pretrain,corpus=c1`` → a Side.

    Each value is ``FILTER=VALUE[,VALUE…]``; repeated values combine with AND across filters and
    OR within one (as the options of ``kdreg query``). A comma piece that starts with a filter
    name and ``=`` starts a new condition; other pieces continue the one before (plugin
    parameters, more values).
    """
    from kdreg.request import split_values

    conditions: dict[str, list[str]] = {}
    current: list[str] | None = None
    for value in values:
        for piece in str(value).split(","):
            match = _CONDITION.match(piece)
            name = match.group(1).lower() if match else None
            if match and name in (*SIDE_FILTERS, "lang", "metric", "split"):
                if name in ("lang", "metric", "split"):
                    raise ConfigError(f"{option} {name}=…: languages, metrics and splits are the same for "
                                      f"both sides; give them once with --{name}.")
                current = conditions.setdefault(str(name), [])
                current.append(match.group(2))
            elif current is not None:
                current[-1] += f",{piece}"
            else:
                raise ConfigError(
                    f"{option} takes FILTER=VALUE (e.g. {option} stage=pretrain), not "
                    f"{piece.strip()[:40]!r}; FILTER is one of {', '.join(SIDE_FILTERS)}."
                )
    if not conditions:
        raise ConfigError(f"{option} needs at least one FILTER=VALUE, e.g. {option} stage=pretrain.")
    options: dict[str, Any] = {}
    for name, texts in conditions.items():
        items = list(split_values(texts))
        options[name] = items[-1] if name in ("since", "until") else items
    try:
        filters = build_filters(**options)
    except ConfigError as exc:
        raise ConfigError(f"{option}: {exc}") from None
    text = ", ".join(f"{name}={','.join(split_values(texts))}" for name, texts in conditions.items())
    return Side(text, filters, tuple(n for n in conditions if n in RUN_DIMENSIONS))


# --------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class Measure:
    """One column of a comparison (a language, the source, the zero-shot average) over its pairs."""

    column: str
    n: int
    mean_a: float | None = None
    mean_b: float | None = None
    delta: float | None = None
    """Mean of the differences A − B."""
    sd: float | None = None
    """Sample standard deviation of the differences (ddof = 1)."""
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    effect: float | None = None
    """Cohen's d_z: delta / sd."""


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def paired_measure(column: str, a: Sequence[float], b: Sequence[float],
                   confidence: float = CONFIDENCE) -> Measure:
    """Δ, its confidence interval, the paired t-test's p-value and d_z for the pairs (a[i], b[i])."""
    n = len(a)
    if n == 0:
        return Measure(column, 0)
    differences = [x - y for x, y in zip(a, b, strict=True)]
    mean_a, mean_b, delta = statistics.fmean(a), statistics.fmean(b), statistics.fmean(differences)
    if n < 2:
        return Measure(column, n, mean_a, mean_b, delta)
    import warnings

    from scipy import stats

    sd = statistics.stdev(differences)
    with warnings.catch_warnings():  # no spread: scipy warns, then answers as documented above
        warnings.simplefilter("ignore", RuntimeWarning)
        test = stats.ttest_rel(a, b)
        interval = test.confidence_interval(confidence)
    return Measure(
        column, n, mean_a, mean_b, delta, sd,
        _finite(interval.low), _finite(interval.high), _finite(test.pvalue),
        delta / sd if sd > 1e-9 * max(1.0, abs(delta)) else None,  # not for float noise
    )


# --------------------------------------------------------------------------- comparisons
@dataclass(frozen=True)
class Comparison:
    """The pairs of one homogeneous comparison and their statistics per column."""

    benchmark: str
    label: str
    """What sets it apart from the other comparisons of its benchmark ('' when it is the only one)."""
    description: dict[str, Any]
    pairs: tuple[tuple[int, int, int], ...]
    """(A run id, B run id, seed of A)."""
    seeds: int
    source_lang: str | None
    measures: tuple[Measure, ...]

    def measure(self, column: str) -> Measure | None:
        return next((m for m in self.measures if m.column == column), None)


@dataclass(frozen=True)
class CompareResult:
    """Everything ``kdreg compare`` shows."""

    a: str
    b: str
    contrasted: tuple[str, ...]
    metric: str
    split: str
    scale: float
    comparisons: tuple[Comparison, ...]
    unpaired_a: tuple[ScoredRun, ...] = ()
    unpaired_b: tuple[ScoredRun, ...] = ()
    ambiguous: tuple[ScoredRun, ...] = ()
    without_results: tuple[ScoredRun, ...] = ()
    test: str = TEST
    confidence: float = CONFIDENCE


def compare(source: Any, a: Side, b: Side, common: Filters, *, metric: str | None = None,
            split: str | None = None, by: Sequence[str] = (), scale: float = 100.0) -> CompareResult:
    """Pair the runs of A and B (each also passing ``common``) and compare them per column.

    ``source`` is a :class:`~kdreg.store.reading.Reader` or an open connection.
    """
    from kdreg.reporting.comparison_data import read_side

    if not (0 < scale < math.inf):
        raise ConfigError(f"The scale must be a positive number (100 shows accuracy in %), not {scale}.")
    contrasted = tuple(dict.fromkeys((*a.dimensions, *b.dimensions)))
    if not contrasted:
        raise ConfigError(
            f"--a and --b must differ in a run dimension ({', '.join(RUN_DIMENSIONS)}), e.g. "
            "--a stage=pretrain --b stage=finetune; runs that agree on all of them are the same run."
        )
    for dimension in by:
        if dimension not in RUN_DIMENSIONS or dimension in contrasted:
            allowed = [d for d in RUN_DIMENSIONS if d not in contrasted]
            raise ConfigError(f"--by {dimension[:40]!r}: split by one of {', '.join(allowed)}.")
    metric = metric or common.metrics[0]
    split = split or common.splits[0]
    sides = []
    for side, option in ((a, "--a"), (b, "--b")):
        found = read_side(source, common, side.filters, metric, split)
        if not found:
            raise ConfigError(_nothing_selected(source, side, option, common))
        sides.append(found)
    a_runs, b_runs = _disjoint(a, b, *sides)
    return compare_runs(a_runs, b_runs, a_text=a.text, b_text=b.text, contrasted=contrasted, metric=metric,
                        split=split, languages=[col.code for col in common.language_columns], by=by,
                        scale=scale)


def _nothing_selected(source: Any, side: Side, option: str, common: Filters) -> str:
    """Why a side is empty: the stored values of the filters it names that match no run at all."""
    from kdreg.store.hints import explain_no_match

    hints = explain_no_match(source, side.filters)
    status = f" {'/'.join(common.status)}" if common.status else ""
    why = "; ".join(hints) or "no run passes it together with the other filters"
    return (f"{option} {side.text} selects no{status} run: {why} (a plugin spec is matched as stored: "
            "parameters sorted, defaults left out, as `kdreg query` shows it).")


def _disjoint(a: Side, b: Side, a_runs: list[ScoredRun],
              b_runs: list[ScoredRun]) -> tuple[list[ScoredRun], list[ScoredRun]]:
    """The two sides without a common run. A plugin named by name matches all its specs, so
    ``--a teacher=synthetic:size=large --b teacher=synthetic`` selects the large teacher's runs
    on both sides; when both sides name the same plugin dimension, such a run goes to the side
    that names its spec exactly. Any other overlap is an error: a run compared with itself
    says nothing."""
    both = [d for d in PLUGIN_DIMENSIONS if d in a.dimensions and d in b.dimensions]

    def exact(side: Side, run: ScoredRun) -> bool:
        return bool(both) and all(run.specs.get(d) in getattr(side.filters, d) for d in both)

    in_b = {r.id: r for r in b_runs}
    keep_a, drop_b, unresolved = [], set(), []
    for run in a_runs:
        if run.id not in in_b:
            keep_a.append(run)
        elif exact(a, run) and not exact(b, run):
            keep_a.append(run)
            drop_b.add(run.id)
        elif not (exact(b, run) and not exact(a, run)):
            unresolved.append(run.id)
    if unresolved:
        raise ConfigError(
            f"{len(unresolved)} run(s) are in both A and B (e.g. run {unresolved[0]}): make the two "
            "selections disjoint, e.g. --a stage=pretrain --b stage=finetune."
        )
    return keep_a, [r for r in b_runs if r.id not in drop_b]


def compare_runs(a_runs: Sequence[ScoredRun], b_runs: Sequence[ScoredRun], *, a_text: str, b_text: str,
                 contrasted: Sequence[str], metric: str, split: str, languages: Sequence[str] = (),
                 by: Sequence[str] = (), scale: float = 100.0) -> CompareResult:
    """Pair two disjoint lists of runs and compute every comparison (the claims use this directly)."""
    scored_a = [r for r in a_runs if r.has_scores]
    scored_b = [r for r in b_runs if r.has_scores]
    without = tuple(r for r in (*a_runs, *b_runs) if not r.has_scores)
    pairing = pair_runs(scored_a, scored_b, contrasted, by)
    by_benchmark: dict[str, list[str]] = {}
    for key, description in pairing.descriptions.items():
        by_benchmark.setdefault(_benchmark(description), []).append(key)
    comparisons: list[Comparison] = []
    for benchmark, keys in sorted(by_benchmark.items()):
        labels = comparison_labels({k: pairing.descriptions[k] for k in keys})
        for key in sorted(keys, key=lambda k: labels[k]):
            comparisons.append(_comparison(benchmark, labels[key], pairing.descriptions[key],
                                           pairing.groups[key], languages, scale))
    return CompareResult(
        a=a_text, b=b_text, contrasted=tuple(contrasted), metric=metric, split=split, scale=scale,
        comparisons=tuple(comparisons), unpaired_a=tuple(pairing.unpaired_a),
        unpaired_b=tuple(pairing.unpaired_b), ambiguous=tuple(pairing.ambiguous), without_results=without,
    )


def _benchmark(description: dict[str, Any]) -> str:
    """The benchmark a comparison is on (``xnli vs pawsx`` when the sides contrast benchmarks)."""
    if "benchmark" in description:
        return str(description["benchmark"])
    return " vs ".join(str(description.get(side, {}).get("benchmark", "?")) for side in ("A", "B"))


def comparison_labels(descriptions: dict[str, dict[str, Any]]) -> dict[str, str]:
    """What sets each comparison of one benchmark apart: first each side's contrasted values
    (``A.stage=both``), then, among comparisons those leave alike, the rest (``corpus=c2``)."""
    from kdreg.reporting.setups import difference_labels

    sides = {k: {s: d[s] for s in ("A", "B") if s in d} for k, d in descriptions.items()}
    rest = {k: {n: v for n, v in d.items() if n not in ("A", "B", "benchmark")}
            for k, d in descriptions.items()}
    first = difference_labels(sides)
    families: dict[str, list[str]] = {}
    for key, label in first.items():
        families.setdefault(label, []).append(key)
    labels: dict[str, str] = {}
    for label, keys in families.items():
        second = difference_labels({k: rest[k] for k in keys})
        labels.update({k: ", ".join(part for part in (label, second[k]) if part) for k in keys})
    return labels


def _comparison(benchmark: str, label: str, description: dict[str, Any],
                pairs: list[tuple[ScoredRun, ScoredRun]], languages: Sequence[str],
                scale: float) -> Comparison:
    shared = {lang for a, b in pairs for lang in a.languages if lang in b.languages}
    targets = list(languages) or sorted(shared)
    sources = sorted({a.source_lang for a, _ in pairs if a.source_lang})

    def column(name: str, value: Any) -> Measure:
        values = [(value(a), value(b)) for a, b in pairs]
        kept = [(x * scale, y * scale) for x, y in values if x is not None and y is not None]
        return paired_measure(name, [x for x, _ in kept], [y for _, y in kept])

    measures = [column(SOURCE, lambda r: r.source)]
    measures += [column(lang, lambda r, lang=lang: r.languages.get(lang)) for lang in targets]
    measures.append(column(ZERO_SHOT, lambda r: r.zero_shot))
    return Comparison(
        benchmark=benchmark, label=label, description=description,
        pairs=tuple((a.id, b.id, a.seed) for a, b in pairs),
        seeds=len({(a.seed, b.seed) for a, b in pairs}),
        source_lang=sources[0] if len(sources) == 1 else None,
        measures=tuple(measures),
    )
