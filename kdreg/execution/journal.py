"""Recording what tasks wrote into a grid's journal: the SQLite side of a cluster grid.

Tasks that must not write the store (cluster nodes, SQLite file) leave files in the grid's
journal folder (:class:`kdreg.execution.recording.JournalRecorder`). Whoever reads the store
on the submitting machine records them — ``kdreg status``, ``kdreg run`` and ``kdreg
collect`` all do — with ``Store.record_outcome``, which is idempotent: a file recorded
twice changes nothing, and a file that arrives after its submitter died waits until then.
A task still running is shown from its files too (where it runs, its heartbeat's age).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdreg.execution.recording import JournalRecorder
from kdreg.records import TaskOutcome

JOURNAL_KEY = "journal"
"""Key of a grid's config that names its journal folder."""


@dataclass
class Collected:
    """What one pass over the journals recorded."""

    recorded: dict[str, int] = field(default_factory=dict)
    """Status recorded → count ('recorded before' counts files seen again)."""

    def add(self, status: str) -> None:
        self.recorded[status] = self.recorded.get(status, 0) + 1

    @property
    def new(self) -> int:
        return sum(n for status, n in self.recorded.items() if status != "recorded before")


@dataclass(frozen=True)
class JournalEntry:
    """The files one task left: its last outcome, and whether it is (still or again) running."""

    key: str
    outcome: dict[str, Any] | None
    started: dict[str, Any] | None
    heartbeat_age: float | None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not there, or a partial write from before atomic renames: the task writes it again
    return data if isinstance(data, dict) else None


def entries(folder: Path) -> list[JournalEntry]:
    """Every task folder of a journal with what it holds."""
    found = []
    if not folder.is_dir():
        return found
    now = time.time()
    for task_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        outcome = _read(task_dir / JournalRecorder.OUTCOME)
        interrupted = _read(task_dir / JournalRecorder.INTERRUPTED)
        started = _read(task_dir / JournalRecorder.STARTED)
        if outcome is None and interrupted is not None:
            # an interruption counts unless the task started again after it (requeued after preemption)
            if started is None or started.get("written_at", 0) <= interrupted.get("written_at", 0):
                outcome = interrupted
        alive = task_dir / JournalRecorder.ALIVE
        age = now - alive.stat().st_mtime if alive.exists() else None
        found.append(JournalEntry(task_dir.name, outcome, started, age))
    return found


def record_journal(store: Any, grid_id: int, folder: Path) -> Collected:
    """Record every outcome the grid's journal holds (idempotent)."""
    collected = Collected()
    for entry in entries(folder):
        if entry.outcome is None:
            continue
        outcome = TaskOutcome.from_json(entry.outcome["outcome"])
        collected.add(store.record_outcome(grid_id, outcome, entry.outcome.get("run_id"),
                                           entry.outcome.get("seen_status", "pending"),
                                           int(entry.outcome.get("seen_attempts", 0))))
    return collected


def collect(store: Any) -> Collected:
    """Record what has arrived in the journal of every grid that still has unfinished tasks."""
    total = Collected()
    for grid_id, folder in store.journals():
        for status, n in record_journal(store, grid_id, Path(folder)).recorded.items():
            total.recorded[status] = total.recorded.get(status, 0) + n
    return total
