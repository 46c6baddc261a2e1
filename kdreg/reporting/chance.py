"""The chance level of a benchmark's metric, for tables (a row) and plots (a line).

Only the benchmark knows it (:meth:`kdreg.plugins.spec.Benchmark.chance_level`: accuracy of
guessing is 1 / number of labels), so the report asks the installed plugin, by the
specification the store recorded. This is the one thing a report takes from a plugin
rather than the store, and it is optional: a benchmark that does not say, is not
installed, or no longer accepts its stored parameters simply has no chance line. Plugins
that keep the contract's default are never instantiated for it.
"""

from __future__ import annotations

from functools import cache


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
