"""Following a grid whose tasks an engine runs on after ``kdreg run`` returned (``--wait``, ``kdreg status``).

Each pass records what the grid's journal holds, asks the engine which of its jobs still
live, and settles the tasks whose job is gone without an outcome (interrupted, so the
next ``kdreg run`` runs them again) or whose process died (a heartbeat gone stale).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kdreg.execution.engines import LOST
from kdreg.execution.graph import Task
from kdreg.execution.journal import record_journal
from kdreg.records import TaskOutcome

FINAL = ("succeeded", "failed", "interrupted", "skipped")


def settle_grid(store: Any, grid_id: int, executor: Any, journal: str | None) -> dict[str, str]:
    """One pass: record the journal, settle dropped and dead tasks; returns every task's status."""
    if journal:
        record_journal(store, grid_id, Path(journal))
    rows = store.grid_tasks(grid_id)
    submitted = [r for r in rows if r.status == "submitted" and r.external_id]
    alive_check = getattr(executor, "alive", None)
    if submitted and callable(alive_check):
        alive = alive_check([r.external_id for r in submitted])
        gone = [r for r in submitted if r.external_id not in alive]
        if gone and journal:
            record_journal(store, grid_id, Path(journal))  # an outcome written just before its job ended
        for row in gone:
            if store.task_state(grid_id, row.key) == "submitted":
                store.task_finished(grid_id, row.key, "interrupted", LOST)
    progress = store.grid_progress(grid_id)
    for running in progress.running if progress is not None else []:
        if running.stale:  # its process died without a word (a node lost): as after kill -9
            message = "Interrupted: the process running it stopped beating (its node or job died?)"
            if running.run_id is not None:
                store.finish_run(running.run_id, "interrupted", error=message)
            store.task_finished(grid_id, running.key, "interrupted", message)
    return {r.key: r.status for r in store.grid_tasks(grid_id)}


def follow(store: Any, outcome: Any, executor: Any, reporter: Any, *, poll_seconds: float = 2.0,
           timeout: float | None = None) -> None:
    """Wait until every task of the grid has finished, telling ``reporter`` as each one does."""
    grid = outcome.graph
    journal = grid.context.journal if grid.context is not None else None
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        statuses = settle_grid(store, outcome.grid_id, executor, journal)
        for key, status in statuses.items():
            if status in FINAL and key not in outcome.outcomes:
                task: Task | None = grid.get(key)
                result = TaskOutcome(key, task.kind if task else "run", status)
                outcome.outcomes[key] = result
                if task is not None:
                    reporter.task_finished(task, result)
        if all(status in FINAL for status in statuses.values()):
            return
        if deadline is not None and time.monotonic() > deadline:
            return
        time.sleep(poll_seconds)
