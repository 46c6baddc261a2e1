"""What a grid's runs and tasks are doing: the reads behind planning, `kdreg status` and the summary.

Every status question is answered here, in SQL against the store, so the planner, the
``status`` command and the end-of-run table agree — including on *stale*: a run still
marked running whose heartbeat stopped (:mod:`kdreg.store.liveness`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kdreg.store.liveness import aware, db_now, is_stale, liveness
from kdreg.store.schema import Grid, GridRun, Result, Run, Task

CHUNK = 500
"""Hashes per IN (...) list: SQLite allows 32,766 parameters, PostgreSQL 65,535; stay well below."""


@dataclass(frozen=True)
class RunState:
    """A stored run as a plan sees it: its status ('stale' for a running run whose process died)."""

    run_id: int
    status: str
    attempts: int
    heartbeat_age: float | None
    """Seconds since its last heartbeat, by the database's clock."""


@dataclass
class RunningTask:
    """A task that is running now (or waits in an engine's queue), and where."""

    key: str
    kind: str
    label: str
    run_id: int | None
    host: str | None
    pid: int | None
    device: str | None
    external_id: str | None
    log_path: str | None
    seconds: float | None
    """Since it started."""
    heartbeat_age: float | None
    stale: bool
    state: str = "running"
    """'running', or 'submitted' (an engine has it; it may be queued or running elsewhere)."""


@dataclass
class GridProgress:
    """One grid at a glance: its runs by status and its artifact tasks."""

    grid_id: int
    command: str
    created_at: datetime | None
    runs: dict[str, int] = field(default_factory=dict)
    """Status → count, with 'stale' counted apart from 'running'."""
    artifacts_done: int = 0
    artifacts: int = 0
    running: list[RunningTask] = field(default_factory=list)
    """Tasks running now, then tasks an engine has (state 'submitted')."""
    submitted: int = 0
    """Tasks handed to an engine that has not recorded an outcome yet."""
    executor: str = ""
    journal: str | None = None

    @property
    def total(self) -> int:
        return sum(self.runs.values())


def _age(now: datetime, moment: datetime | None) -> float | None:
    moment = aware(moment)
    return None if moment is None else max(0.0, (now - moment).total_seconds())


class StatusReads:
    """Status queries (mixed into :class:`kdreg.store.store.Store`)."""

    if TYPE_CHECKING:
        def session(self) -> AbstractContextManager[Session]: ...

    def run_states(self, hashes: Sequence[str]) -> dict[str, RunState]:
        """The stored runs among ``hashes`` (read-only): status, attempts, heartbeat age."""
        found: dict[str, RunState] = {}
        with self.session() as s:
            now = db_now(s)
            for start in range(0, len(hashes), CHUNK):
                chunk = list(hashes[start : start + CHUNK])
                for run_id, config_hash, status, attempts, beat in s.execute(
                    select(Run.id, Run.config_hash, Run.status, Run.attempts, Run.heartbeat_at)
                    .where(Run.config_hash.in_(chunk))
                ):
                    if status == "running" and is_stale(beat, now):
                        status = "stale"
                    found[config_hash] = RunState(run_id, status, attempts or 0, _age(now, beat))
        return found

    def liveness(self, status: str, heartbeat: datetime | None) -> tuple[str, float | None]:
        """``status`` as people should read it ('stale' for a dead process's run) and the heartbeat's age."""
        with self.session() as s:
            return liveness(status, heartbeat, db_now(s))

    def latest_grid_id(self) -> int | None:
        """The newest grid's id, or None in an empty store."""
        with self.session() as s:
            return s.scalar(select(func.max(Grid.id)))

    def grid_progress(self, grid_id: int) -> GridProgress | None:
        """Counts of the grid's runs by status (stale apart), its artifacts, and what runs where now."""
        with self.session() as s:
            grid = s.get(Grid, grid_id)
            if grid is None:
                return None
            now = db_now(s)
            config = grid.config if isinstance(grid.config, dict) else {}
            progress = GridProgress(grid_id, grid.command, aware(grid.created_at),
                                    executor=str(config.get("executor", "")), journal=config.get("journal"))
            for status, beat in s.execute(select(Run.status, Run.heartbeat_at)
                                          .join(GridRun, GridRun.run_id == Run.id)
                                          .where(GridRun.grid_id == grid_id)):
                if status == "running" and is_stale(beat, now):
                    status = "stale"
                progress.runs[status] = progress.runs.get(status, 0) + 1
            tasks = s.scalars(select(Task).where(Task.grid_id == grid_id).order_by(Task.id)).all()
            run_status: dict[int, str] = dict(s.execute(  # type: ignore[arg-type]
                select(Run.id, Run.status).join(GridRun, GridRun.run_id == Run.id)
                .where(GridRun.grid_id == grid_id)).all())
        for task in tasks:
            if task.kind != "run":
                progress.artifacts += 1
                progress.artifacts_done += task.status == "succeeded"
            progress.submitted += task.status == "submitted"
            run_running = task.run_id is not None and run_status.get(task.run_id) == "running"
            if task.status == "running" and (task.kind != "run" or run_running):
                progress.running.append(RunningTask(
                    task.key, task.kind, task.label, task.run_id, task.host, task.pid, task.device,
                    task.external_id, task.log_path, _age(now, task.started_at), _age(now, task.heartbeat_at),
                    is_stale(task.heartbeat_at, now)))
        progress.running += [
            RunningTask(t.key, t.kind, t.label, t.run_id, t.host, t.pid, t.device, t.external_id, t.log_path,
                        None, None, False, "submitted") for t in tasks if t.status == "submitted"]
        return progress

    def grid_runs(self, grid_id: int) -> list[Run]:
        """The runs of one grid, in id order (detached, without their results)."""
        with self.session() as s:
            return list(s.scalars(select(Run).join(GridRun, GridRun.run_id == Run.id)
                                  .where(GridRun.grid_id == grid_id).order_by(Run.id)).all())

    def test_results(self, run_ids: Sequence[int]) -> list[Any]:
        """(run_id, language, metric, value, is_source) of the test split for ``run_ids``."""
        rows: list[Any] = []
        with self.session() as s:
            for start in range(0, len(run_ids), CHUNK):
                chunk = list(run_ids[start : start + CHUNK])
                rows.extend(s.execute(select(Result.run_id, Result.language, Result.metric, Result.value,
                                             Result.is_source)
                                      .where(Result.run_id.in_(chunk), Result.split == "test")
                                      .order_by(Result.id)).all())
        return rows
