"""What a grid's runs and tasks are doing: the reads behind planning, `kdreg status` and the summary.

Every status question is answered here, in SQL against the store, so the planner, the
``status`` command and the end-of-run table agree — including on *stale*: a run still
marked running whose heartbeat stopped (:mod:`kdreg.store.liveness`). The statements are
portable SQL text (:mod:`kdreg.store.sqltext`) on the read path of :mod:`kdreg.store.reading`,
so `kdreg status` on an SQLite file answers without importing SQLAlchemy, while a
:class:`~kdreg.store.store.Store` runs the very same statements through its engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kdreg.store.liveness import aware, is_stale, liveness
from kdreg.store.sqltext import Params, Sql

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


TASK_PLACE = ("key", "kind", "label", "run_id", "host", "pid", "device", "external_id", "log_path")
"""What a running task is and where: the first fields of :class:`RunningTask`."""
TASK_COLUMNS = (*TASK_PLACE, "status", "started_at", "heartbeat_at")
UNFINISHED_TASK = ("pending", "submitted", "running", "interrupted")


class StatusReads:
    """Status queries, mixed into :class:`kdreg.store.store.Store` and :class:`kdreg.store.reading.Reader`."""

    def run_states(self, hashes: Sequence[str]) -> dict[str, RunState]:
        """The stored runs among ``hashes`` (read-only): status, attempts, heartbeat age."""
        from kdreg.store.reading import read_connection

        found: dict[str, RunState] = {}
        with read_connection(self) as c:
            now = c.now()
            for start in range(0, len(hashes), CHUNK):
                p = Params()
                chunk = p.is_in("config_hash", hashes[start : start + CHUNK])
                for run_id, config_hash, status, attempts, beat in c.execute(p.sql(
                    f"SELECT id, config_hash, status, attempts, heartbeat_at FROM runs WHERE {chunk}"
                )).all():
                    if status == "running" and is_stale(beat, now):
                        status = "stale"
                    found[config_hash] = RunState(run_id, status, attempts or 0, _age(now, beat))
        return found

    def liveness(self, status: str, heartbeat: datetime | None) -> tuple[str, float | None]:
        """``status`` as people should read it ('stale' for a dead process's run) and the heartbeat's age."""
        from kdreg.store.reading import read_connection

        with read_connection(self) as c:
            return liveness(status, heartbeat, c.now())

    def latest_grid_id(self) -> int | None:
        """The newest grid's id, or None in an empty store."""
        from kdreg.store.reading import read_connection

        with read_connection(self) as c:
            return c.execute(Sql("SELECT max(id) FROM grids")).scalar()

    def journals(self) -> list[tuple[int, str]]:
        """(grid id, journal folder) of grids that record through a journal and have tasks not yet final."""
        from kdreg.store.reading import read_connection

        p = Params()
        unfinished = f"SELECT DISTINCT grid_id FROM tasks WHERE {p.is_in('status', UNFINISHED_TASK)}"
        with read_connection(self) as c:
            grids = c.execute(p.sql(f"SELECT id, config FROM grids WHERE id IN ({unfinished})")).all()
        return [(grid_id, config["journal"]) for grid_id, config in grids
                if isinstance(config, dict) and config.get("journal")]

    def grid_progress(self, grid_id: int) -> GridProgress | None:
        """Counts of the grid's runs by status (stale apart), its artifacts, and what runs where now."""
        from kdreg.store.reading import read_connection

        p = Params()
        grid = p(grid_id)
        of_grid = f"FROM runs JOIN grid_runs ON grid_runs.run_id = runs.id WHERE grid_runs.grid_id = {grid}"
        with read_connection(self) as c:
            found = c.execute(p.sql(f"SELECT command, created_at, config FROM grids WHERE id = {grid}")).all()
            if not found:
                return None
            command, created_at, config = found[0]
            now = c.now()
            config = config if isinstance(config, dict) else {}
            progress = GridProgress(grid_id, command, aware(created_at),
                                    executor=str(config.get("executor", "")), journal=config.get("journal"))
            run_status: dict[int, str] = {}
            for run_id, status, beat in c.execute(p.sql(
                f"SELECT runs.id AS id, runs.status AS status, runs.heartbeat_at AS heartbeat_at {of_grid}"
            )).all():
                run_status[run_id] = status
                if status == "running" and is_stale(beat, now):
                    status = "stale"
                progress.runs[status] = progress.runs.get(status, 0) + 1
            columns = ", ".join(f'"{name}"' for name in TASK_COLUMNS)
            of_tasks = f"FROM tasks WHERE grid_id = {grid} ORDER BY id"
            tasks = c.execute(p.sql(f"SELECT {columns} {of_tasks}")).mappings()
        for task in tasks:
            if task["kind"] != "run":
                progress.artifacts += 1
                progress.artifacts_done += task["status"] == "succeeded"
            progress.submitted += task["status"] == "submitted"
            run_running = task["run_id"] is not None and run_status.get(task["run_id"]) == "running"
            if task["status"] == "running" and (task["kind"] != "run" or run_running):
                progress.running.append(_running_task(task, now))
        progress.running += [_running_task(t, None) for t in tasks if t["status"] == "submitted"]
        return progress


def _running_task(task: dict[str, Any], now: datetime | None) -> RunningTask:
    """A task that runs (``now``: its ages and staleness) or waits with an engine (``now`` None)."""
    where = tuple(task[name] for name in TASK_PLACE)
    if now is None:
        return RunningTask(*where, None, None, False, "submitted")
    return RunningTask(*where, _age(now, task["started_at"]), _age(now, task["heartbeat_at"]),
                       is_stale(task["heartbeat_at"], now))
