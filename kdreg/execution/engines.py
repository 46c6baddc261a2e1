"""Runs an engine holds: tasks handed to Slurm (or another engine) that have not recorded an outcome yet.

A task submitted to an engine may wait in its queue for hours before it runs, and on a
cluster with an SQLite store it records nothing in the database until its outcome is
collected. Planning must not submit such a run again while the engine still has it, and
must run it again once the engine has dropped it without an outcome (``scancel``, a node
that died). The engine is asked through its executor plugin's optional ``alive(job ids)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

LOST = "its job ended without recording an outcome (cancelled or killed: see its log)"


def executor_plugin(spec: str) -> Any:
    """An instance of the executor ``spec`` names (to ask its engine about jobs)."""
    from kdreg.plugins.resolve import PluginSet

    plugins = PluginSet()
    return plugins.instance(plugins.resolve("executor", spec))


def engine_held(store: Any, hashes: Sequence[str]) -> dict[str, str]:
    """Run hash → 'slurm job 123_4' for runs an engine still has queued or running.

    Jobs the engine no longer knows are settled on the way: what their journal holds is
    recorded, and a task that left nothing is marked interrupted, so its run is planned again.
    """
    submitted = store.submitted_tasks(hashes)
    if not submitted:
        return {}
    held: dict[str, str] = {}
    by_executor: dict[str, list[Any]] = {}
    for row in submitted:
        by_executor.setdefault(row.executor, []).append(row)
    for spec, rows in by_executor.items():
        try:
            alive = executor_plugin(spec).alive([r.external_id for r in rows])
        except Exception as exc:  # the plugin is gone or cannot ask its engine: keep the runs held
            alive = {r.external_id for r in rows}
            spec = f"{spec} (cannot ask it: {type(exc).__name__})"
        for row in rows:
            if row.external_id in alive:
                held[row.run_hash] = f"{spec.split(':')[0]} job {row.external_id}"
    gone = [r for r in submitted if r.run_hash not in held]
    if gone:
        settle(store, gone)
    return held


def settle(store: Any, gone: Sequence[Any]) -> None:
    """Record what the journals of dropped jobs hold; mark the tasks that left nothing as interrupted."""
    from kdreg.execution.journal import record_journal

    for grid_id, journal in {(r.grid_id, r.journal) for r in gone if r.journal}:
        record_journal(store, grid_id, Path(journal))
    for row in gone:
        if store.task_state(row.grid_id, row.key) == "submitted":
            store.task_finished(row.grid_id, row.key, "interrupted", LOST)
