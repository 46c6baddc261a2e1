"""The chance level of a benchmark's metric, for tables (a row) and plots (a line).

Only the benchmark knows it (:meth:`kdreg.plugins.spec.Benchmark.chance_level`: accuracy of
guessing is 1 / number of labels). Every run stores it beside its scores (split ``chance``,
:data:`kdreg.records.CHANCE_SPLIT`), so :func:`chance_from` reads it from the store in one
statement — no plugin import, which costs a light command a sixth of its time, and no need
for the plugin at all. For runs stored before kdreg recorded it, the report asks the
installed plugin by the specification the store recorded (:func:`chance_level`); a benchmark
that has stored levels for some metrics has none for the others (runs record every level their
benchmark gives), so an F1 column beside a stored accuracy never imports the plugins. It is
optional either way: a benchmark that does not say, is not installed, or no longer accepts
its stored parameters simply has no chance line. Plugins that keep the contract's default
are never instantiated for it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any


def chance_from(source: Any) -> Callable[[str, str], float | None]:
    """The chance levels stored in ``source`` (a Reader or Store); the plugin's for anything else.

    The store is read once, at the first question (a report with no table asks none).
    """
    stored: dict[tuple[str, str], float] | None = None

    def chance(benchmark_spec: str, metric: str) -> float | None:
        nonlocal stored
        if stored is None:
            stored = _stored_levels(source)
        level = stored.get((benchmark_spec, metric))
        if level is not None:
            return level
        if any(spec == benchmark_spec for spec, _ in stored):
            return None  # its runs record every level the benchmark gives: it has none for this metric
        return chance_level(benchmark_spec, metric)

    return chance


def _stored_levels(source: Any) -> dict[tuple[str, str], float]:
    from kdreg.records import CHANCE_SPLIT
    from kdreg.store.reading import fetch_all
    from kdreg.store.sqltext import Params

    p = Params()
    (rows,) = fetch_all(source, [p.sql(
        "SELECT runs.benchmark_spec AS benchmark, results.metric AS metric, max(results.value) AS level"
        f" FROM results JOIN runs ON runs.id = results.run_id WHERE results.split = {p(CHANCE_SPLIT)}"
        " GROUP BY runs.benchmark_spec, results.metric"
    )])
    return {(row["benchmark"], row["metric"]): float(row["level"]) for row in rows}


@cache
def chance_level(benchmark_spec: str, metric: str) -> float | None:
    """The benchmark's chance level for ``metric`` (unscaled, 0..1), or None when it does not say."""
    from kdreg.plugins.registry import registry
    from kdreg.plugins.spec import Benchmark

    try:
        resolved = registry().resolve("benchmark", benchmark_spec)
        if getattr(resolved.cls, "chance_level", Benchmark.chance_level) is Benchmark.chance_level:
            return None  # the contract's default: nothing to ask, nothing to instantiate
        value = resolved.create().chance_level(metric)
    except Exception:  # a report never fails for want of a chance line
        return None
    if isinstance(value, (int, float)) and 0 <= value <= 1:
        return float(value)
    return None
