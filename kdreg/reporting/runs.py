"""One run as plain data: its record, a per-split summary and its training curves as sparklines.

Shared by ``kdreg show`` and :meth:`kdreg.api.Experiments.run`, so the terminal and a
notebook see the same facts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 48) -> str:
    """A one-line picture of a curve: ``width`` buckets (means), scaled between min and max."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    if len(finite) > width:
        size = len(finite) / width
        finite = [
            sum(chunk) / len(chunk)
            for i in range(width)
            if (chunk := finite[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
        ]
    low, high = min(finite), max(finite)
    if high == low:
        return SPARKS[0] * len(finite)
    return "".join(SPARKS[min(len(SPARKS) - 1, int((v - low) / (high - low) * len(SPARKS)))] for v in finite)


def curve_summary(phase: str, steps: Sequence[int], losses: Sequence[float]) -> dict[str, Any]:
    """Phase, #points, first/min/last loss and the sparkline (a NaN loss is shown, never the minimum),
    and the curve itself: ``steps`` and ``losses``, the arrays a notebook or plot needs."""
    if not losses:
        return {"phase": phase, "points": 0, "steps": list(steps), "losses": list(losses)}
    finite = [i for i, v in enumerate(losses) if v is not None and math.isfinite(v)]
    low = min(finite, key=lambda i: losses[i]) if finite else None
    return {
        "phase": phase,
        "points": len(losses),
        "step_range": f"{steps[0]}–{steps[-1]}" if steps else "",
        "first": losses[0],
        "min": None if low is None else losses[low],
        "min_step": None if low is None or low >= len(steps) else steps[low],
        "last": losses[-1],
        "sparkline": sparkline(losses),
        "steps": list(steps),
        "losses": list(losses),
    }


def run_record(run: Any) -> dict[str, Any]:
    """A run as plain data (the ``--json`` output)."""
    from kdreg.reporting.aggregate import zero_shot_average

    fields = (
        "id",
        "config_hash",
        "setup_hash",
        "status",
        "teacher_spec",
        "student_spec",
        "stage",
        "loss_spec",
        "benchmark_spec",
        "corpus_spec",
        "seed",
        "created_at",
        "started_at",
        "finished_at",
        "duration_s",
        "error",
        "traceback",
        "environment",
        "config",
    )
    record = {name: getattr(run, name) for name in fields}
    record["heartbeat_at"], record["attempts"] = run.heartbeat_at, run.attempts
    results = sorted(run.results, key=lambda r: (r.split, r.metric, not r.is_source, r.language))
    record["results"] = [
        {
            "language": r.language,
            "lang": r.lang,
            "split": r.split,
            "metric": r.metric,
            "value": r.value,
            "is_source": r.is_source,
        }
        for r in results
    ]
    summaries: dict[str, Any] = {}
    for r in results:
        key = f"{r.metric}/{r.split}"
        entry = summaries.setdefault(key, {"source": None, "source_lang": None, "scores": {}})
        entry["scores"][r.lang] = r.value
        if r.is_source:
            entry["source"], entry["source_lang"] = r.value, r.lang
    for entry in summaries.values():
        entry["zero_shot"] = zero_shot_average(entry.pop("scores"), entry["source_lang"])
    record["summary"] = summaries
    record["curves"] = [curve_summary(c.phase, c.steps or [], c.losses or []) for c in run.curves]
    return record
