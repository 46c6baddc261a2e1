"""The seed study's three claims, judged on whatever the store holds.

Soltan, Khan & Hamza (2021) claim that

1. for zero-shot target languages, KD during pretraining beats KD during fine-tuning;
2. KD during fine-tuning may *hurt* zero-shot transfer, compared with no KD;
3. a larger teacher distils a better student, on the source language and the targets.

Each claim is a paired comparison (:mod:`kdreg.reporting.compare`, the same pairing and
the same paired t-test as ``kdreg compare``):

1. stage ``pretrain`` (A) against ``finetune`` (B), zero-shot average, expecting A > B;
2. KD in fine-tuning against none, with and without KD in pretraining: stage ``finetune``
   (A) against ``none`` (B), and ``both`` (A) against ``pretrain`` (B), zero-shot average,
   expecting A < B;
3. the students (stages ``finetune``, ``pretrain``, ``both``) of the **largest** teacher (A)
   against those of the **smallest** (B), source language and zero-shot average,
   expecting A > B. A teacher's size is its parameter count, which every teacher row
   records (a result of split ``model``, metric ``parameters``, see
   :data:`kdreg.records.PARAMETERS_METRIC`); teachers of unknown size are left out.

Each comparison gives evidence per measure: it **supports** the claim when the 95 %
interval of the mean difference lies entirely on the claimed side of 0 (equivalently,
p < 0.05 in the claimed direction), **contradicts** it when the interval lies entirely
on the other side, and is **inconclusive** when it contains 0, when there are fewer than
two pairs, or when all its pairs share one seed (their spread is then that of the
set-ups pooled, not of training noise: an interval over seeds needs more seeds). A
claim is *supported* when some evidence supports it and none contradicts it,
*contradicted* in the mirror case, and *inconclusive* otherwise (no evidence, or
evidence both ways).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kdreg.reporting.compare import SOURCE, ZERO_SHOT, CompareResult, Measure, compare_runs
from kdreg.reporting.pairing import ScoredRun
from kdreg.store.filters import Filters

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
KD_STAGES = ("finetune", "pretrain", "both")
MORE_SEEDS = "kdreg run --seed 0,1,2"


@dataclass(frozen=True)
class Evidence:
    """One measure of one comparison, and what it says about the claim."""

    comparison: str
    """Which comparison: the benchmark and what sets it apart (``synthetic · loss=kl``)."""
    measure: Measure
    verdict: str
    seeds: int


@dataclass(frozen=True)
class Claim:
    """A claim, its verdict, why, and the comparison behind it."""

    number: int
    text: str
    verdict: str
    reason: str
    compared: str
    """What was compared: ``stage pretrain (A) − stage finetune (B), zero-shot avg``."""
    evidence: tuple[Evidence, ...] = ()
    unpaired: int = 0
    notes: tuple[str, ...] = field(default=())


def measure_verdict(m: Measure, direction: int, seeds: int = 2) -> str:
    """``direction`` +1: the claim says A > B; −1: A < B. One seed is never conclusive."""
    if m.n < 2 or seeds < 2 or m.ci_low is None or m.ci_high is None:
        return INCONCLUSIVE
    if m.ci_low > 0 or m.ci_high < 0:
        return SUPPORTED if (m.ci_low > 0) == (direction > 0) else CONTRADICTED
    return INCONCLUSIVE


def _judge(number: int, text: str, compared: str, results: Sequence[tuple[str, CompareResult | None]],
           columns: Sequence[str], direction: int, missing: str) -> Claim:
    """The claim's verdict from the evidence of every comparison in ``results`` ((what, result) pairs)."""
    found = [(what, r) for what, r in results if r is not None]
    unpaired = sum(len(r.unpaired_a) + len(r.unpaired_b) for _, r in found)
    evidence = []
    for what, result in found:
        for comparison in result.comparisons:
            label = f" · {comparison.label}" if comparison.label else ""
            name = f"{what} on {comparison.benchmark}{label}"
            for column in columns:
                m = comparison.measure(column)
                if m is not None and m.n:
                    evidence.append(Evidence(name, m, measure_verdict(m, direction, comparison.seeds),
                                             comparison.seeds))
    if not evidence:
        why = missing + (f" ({unpaired} run(s) found no partner)" if unpaired else "")
        return Claim(number, text, INCONCLUSIVE, why, compared, unpaired=unpaired)
    verdicts = [e.verdict for e in evidence]
    support, against = verdicts.count(SUPPORTED), verdicts.count(CONTRADICTED)
    if support and not against:
        verdict = SUPPORTED
        reason = f"{support} of {len(evidence)} comparison(s) support it, none contradicts it"
    elif against and not support:
        verdict = CONTRADICTED
        reason = f"{against} of {len(evidence)} comparison(s) contradict it, none supports it"
    elif support:
        verdict, reason = INCONCLUSIVE, f"mixed: {support} comparison(s) support it, {against} contradict it"
    elif all(e.seeds < 2 or e.measure.n < 2 for e in evidence):
        verdict, reason = INCONCLUSIVE, f"one seed: an interval needs more seeds ({MORE_SEEDS})"
    else:
        verdict, reason = INCONCLUSIVE, "every 95% interval includes 0"
    notes = []
    single = sum(1 for e in evidence if e.seeds < 2)
    if single and single < len(evidence):
        notes.append(f"{single} comparison(s) with one seed count as inconclusive ({MORE_SEEDS})")
    return Claim(number, text, verdict, reason, compared, tuple(evidence), unpaired, tuple(notes))


def _stage(runs: Sequence[ScoredRun], *stages: str) -> list[ScoredRun]:
    return [r for r in runs if r.specs.get("stage") in stages]


def evaluate_claims(source: Any, common: Filters, *, metric: str | None = None, split: str | None = None,
                    scale: float = 100.0) -> list[Claim]:
    """The three claims on the runs that pass ``common`` (a Reader or an open connection)."""
    from kdreg.reporting.comparison_data import read_side
    from kdreg.store.filters import build_filters

    metric = metric or common.metrics[0]
    split = split or common.splits[0]
    runs = read_side(source, common, build_filters(), metric, split)
    options = {"metric": metric, "split": split, "scale": scale}

    def paired(a: list[ScoredRun], b: list[ScoredRun], a_text: str, b_text: str,
               contrasted: Sequence[str]) -> CompareResult | None:
        if not a or not b:
            return None
        return compare_runs(a, b, a_text=a_text, b_text=b_text, contrasted=contrasted, **options)

    def stages(a: str, b: str) -> tuple[str, CompareResult | None]:
        return f"{a} − {b}", paired(_stage(runs, a), _stage(runs, b), f"stage={a}", f"stage={b}", ["stage"])

    claims = [
        _judge(1, "KD in pretraining beats KD in fine-tuning on zero-shot targets",
               "stage pretrain (A) − stage finetune (B), zero-shot avg", [stages("pretrain", "finetune")],
               [ZERO_SHOT], +1, "no pretrain and finetune runs that pair"),
        _judge(2, "KD in fine-tuning may hurt zero-shot transfer (vs. no KD)",
               "KD in fine-tuning (A) − none (B): stage finetune − none, and both − pretrain (after KD in "
               "pretraining), zero-shot avg", [stages("finetune", "none"), stages("both", "pretrain")],
               [ZERO_SHOT], -1, "no finetune and none (or both and pretrain) runs that pair"),
    ]
    claims.append(_larger_teacher(source, runs, paired))
    return claims


def teacher_sizes(source: Any) -> dict[str, float]:
    """Teacher spec → parameter count, from the teacher rows that recorded one."""
    from kdreg.records import MODEL_SPLIT, PARAMETERS_METRIC
    from kdreg.store.reading import fetch_all
    from kdreg.store.sqltext import Params

    p = Params()
    (rows,) = fetch_all(source, [p.sql(
        "SELECT runs.teacher_spec AS teacher_spec, max(results.value) AS parameters"
        " FROM runs JOIN results ON results.run_id = runs.id"
        f" WHERE runs.stage = 'teacher' AND results.metric = {p(PARAMETERS_METRIC)}"
        f" AND results.split = {p(MODEL_SPLIT)} GROUP BY runs.teacher_spec"
    )])
    return {row["teacher_spec"]: float(row["parameters"]) for row in rows}


def millions(count: float) -> str:
    return f"{count / 1e6:.2f} M" if count < 1e9 else f"{count / 1e9:.2f} B"


def _larger_teacher(source: Any, runs: Sequence[ScoredRun], paired: Any) -> Claim:
    text = "A larger teacher distils a better student (source and targets)"
    students = _stage(runs, *KD_STAGES)
    teachers = sorted({r.specs.get("teacher") or "" for r in students})
    sizes = teacher_sizes(source)
    known = sorted((sizes[t], t) for t in teachers if t in sizes)
    unknown = [t for t in teachers if t not in sizes]
    note = (f"size unknown (no teacher row records its parameters) for: {', '.join(unknown)}",
            ) if unknown else ()
    if len(known) < 2 or known[0][0] == known[-1][0]:
        have = ", ".join(f"{t} ({millions(n)})" for n, t in known) or "none of known size"
        claim = _judge(3, text, "students of the largest − the smallest teacher", [], (), +1,
                       f"needs distilled students of two teachers of different sizes; the store has: {have}")
        return Claim(**{**claim.__dict__, "notes": note})
    (small_n, small), (large_n, large) = known[0], known[-1]
    compared = (f"students of {large} ({millions(large_n)}, A) − students of {small} "
                f"({millions(small_n)}, B), stages finetune/pretrain/both, source and zero-shot avg")
    result = paired([r for r in students if r.specs.get("teacher") == large],
                    [r for r in students if r.specs.get("teacher") == small],
                    f"teacher={large}", f"teacher={small}", ["teacher"])
    claim = _judge(3, text, compared, [("larger − smaller teacher", result)], [SOURCE, ZERO_SHOT], +1,
                   f"no students of {large} and {small} that pair")
    return Claim(**{**claim.__dict__, "notes": (*claim.notes, *note)})
