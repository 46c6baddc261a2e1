"""A grid's tasks in the store: what each one did and where it ran.

The coordinator adds every task of a grid (:meth:`TaskRecords.add_tasks`) before any runs;
the process that executes a task marks it started (host, pid, device) and finished; an
executor that hands tasks to an engine records the engine's job id and log
(:meth:`TaskRecords.task_submitted`). A run's own status stays on the run: a task row says
what *this grid's* execution of it did ('skipped' when another process held the run).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from kdreg.store.liveness import db_now
from kdreg.store.schema import Grid, Run, Task


@dataclass(frozen=True)
class SubmittedTask:
    """A run's task an engine accepted and that has recorded no outcome yet."""

    grid_id: int
    key: str
    run_hash: str
    executor: str
    external_id: str
    journal: str | None


@dataclass(frozen=True)
class TaskRow:
    """A task as the store keeps it before it runs."""

    key: str
    kind: str
    label: str
    run_id: int | None = None
    depends_on: tuple[str, ...] = field(default_factory=tuple)


class TaskRecords:
    """Task rows of grids (mixed into :class:`kdreg.store.store.Store`)."""

    if TYPE_CHECKING:
        def session(self) -> AbstractContextManager[Session]: ...

    def add_tasks(self, grid_id: int, tasks: Sequence[TaskRow], executor: str) -> None:
        """Record a grid's tasks as pending, in one statement per 500 rows."""
        rows = [{"grid_id": grid_id, "key": t.key, "kind": t.kind, "label": t.label[:2000],
                 "run_id": t.run_id, "depends_on": list(t.depends_on), "status": "pending",
                 "executor": executor[:200]} for t in tasks]
        with self.session() as s:
            now = db_now(s)
            for start in range(0, len(rows), 500):
                s.execute(insert(Task), [{**row, "created_at": now} for row in rows[start : start + 500]])

    def task_started(self, grid_id: int, key: str, *, host: str, pid: int, device: str) -> None:
        """The task began in the process ``pid`` on ``host``."""
        with self.session() as s:
            now = db_now(s)
            s.execute(update(Task).where(Task.grid_id == grid_id, Task.key == key).values(
                status="running", host=host[:255], pid=pid, device=device[:200], started_at=now,
                heartbeat_at=now, finished_at=None, error=None))

    def task_finished(self, grid_id: int, key: str, status: str, error: str | None = None) -> None:
        """The task ended: succeeded, failed, interrupted, or skipped (another process held its run)."""
        with self.session() as s:
            s.execute(update(Task).where(Task.grid_id == grid_id, Task.key == key).values(
                status=status, finished_at=db_now(s), error=error))

    def task_submitted(self, grid_id: int, key: str, *, external_id: str | None = None,
                       log_path: str | None = None) -> None:
        """An engine accepted the task (its job id and log file, when it has them)."""
        with self.session() as s:
            s.execute(update(Task).where(Task.grid_id == grid_id, Task.key == key).values(
                status="submitted", external_id=external_id, log_path=log_path))

    def submitted_tasks(self, hashes: Sequence[str]) -> list[SubmittedTask]:
        """Tasks of the runs ``hashes`` that an engine accepted and that recorded no outcome yet."""
        found: list[SubmittedTask] = []
        with self.session() as s:
            for start in range(0, len(hashes), 500):
                chunk = list(hashes[start : start + 500])
                found.extend(
                    SubmittedTask(row.grid_id, row.key, row.config_hash, row.executor, row.external_id,
                                  (row.config or {}).get("journal"))
                    for row in s.execute(
                        select(Task.grid_id, Task.key, Task.executor, Task.external_id, Run.config_hash,
                               Grid.config)
                        .join(Run, Run.id == Task.run_id).join(Grid, Grid.id == Task.grid_id)
                        .where(Task.status == "submitted", Task.external_id.is_not(None),
                               Run.config_hash.in_(chunk))))
        return found

    def update_grid_config(self, grid_id: int, items: dict[str, object]) -> None:
        """Add ``items`` to a grid's config."""
        with self.session() as s:
            grid = s.get(Grid, grid_id)
            if grid is not None:
                grid.config = {**(grid.config or {}), **items}

    def grid_tasks(self, grid_id: int) -> list[Task]:
        """Every task row of a grid, in the order they were planned (detached)."""
        with self.session() as s:
            return list(s.scalars(select(Task).where(Task.grid_id == grid_id).order_by(Task.id)).all())

    def task_state(self, grid_id: int, key: str) -> str | None:
        """The status of one task of a grid (None when the grid has no such task)."""
        with self.session() as s:
            return s.scalar(select(Task.status).where(Task.grid_id == grid_id, Task.key == key))

    def artifact_failure(self, key: str) -> str | None:
        """Why the latest attempt to build the artifact ``key`` failed, or None if it did not fail."""
        with self.session() as s:
            latest = s.execute(select(Task.status, Task.error).where(Task.key == key, Task.kind != "run")
                               .order_by(Task.id.desc()).limit(1)).first()
        if latest is None or latest.status not in ("failed", "interrupted"):
            return None
        return latest.error or latest.status
