"""Running a grid: record it, hand its task graph to an executor, follow the tasks to their end.

:func:`run_grid` is the one place a grid meets the store before its tasks run: it
records the grid, plans every run (pending rows, the state each claim will name) and
every task, then gives the graph to the executor plugin. The executor runs the tasks —
in this process, in local workers, on a cluster — and tells the :class:`GridMonitor` as
they start and end; the monitor keeps the outcome, draws progress through a
:class:`Reporter`, and stops the grid at the first failure under ``--fail-fast``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kdreg.errors import KdregError
from kdreg.execution.graph import RUN, Task, TaskGraph, build_graph
from kdreg.execution.journal import JOURNAL_KEY
from kdreg.execution.plan import Plan, PlanItem, plan_items
from kdreg.execution.recording import JOURNAL, RETURN, STORE
from kdreg.execution.worker import TaskContext, TaskEvent, freeze_what_lasts, use_store
from kdreg.pipeline import model_cache
from kdreg.records import ResultRecord, TaskOutcome
from kdreg.store.engine import sqlite_path
from kdreg.store.store import Store, TaskRow

FORWARDED_ENVIRONMENT = ("KDREG_HOME", "KDREG_CACHE", "KDREG_STALE_SECONDS", "KDREG_PLUGINS_ALLOW",
                         "KDREG_STRICT_PLUGINS", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                         "TRANSFORMERS_OFFLINE", "HF_HOME")
"""Variables a task applies in its process as the planning process had them (engines may not pass them)."""


class GridStoppedError(KdregError):
    """--fail-fast: the grid stopped at a failing task."""


class Reporter(Protocol):
    """What the person watching a grid is told (the CLI draws it with rich)."""

    def log(self, message: str) -> None: ...
    def task_started(self, index: int, total: int, task: Task, where: str) -> None: ...
    def step(self, task: Task, phase: str, step: int, total: int, loss: float) -> None: ...
    def task_finished(self, task: Task, outcome: TaskOutcome) -> None: ...


class SilentReporter:
    """A reporter that prints nothing (library use, tests)."""

    def log(self, message: str) -> None:
        pass

    def task_started(self, index: int, total: int, task: Task, where: str) -> None:
        pass

    def step(self, task: Task, phase: str, step: int, total: int, loss: float) -> None:
        pass

    def task_finished(self, task: Task, outcome: TaskOutcome) -> None:
        pass


@dataclass
class GridOutcome:
    """What became of a grid's tasks, as far as this process saw."""

    grid_id: int
    items: list[PlanItem]
    graph: TaskGraph
    outcomes: dict[str, TaskOutcome] = field(default_factory=dict)
    """Task key → its outcome (absent: handed to an engine that has not finished it)."""
    submitted: dict[str, str | None] = field(default_factory=dict)
    """Task key → the engine's job id, for tasks handed to an engine."""

    @property
    def statuses(self) -> dict[str, str]:
        return {key: outcome.status for key, outcome in self.outcomes.items()}

    @property
    def results(self) -> dict[str, list[ResultRecord]]:
        return {key: o.results for key, o in self.outcomes.items()
                if o.kind == RUN and o.status == "succeeded"}

    def runs_with(self, status: str) -> list[Task]:
        return [t for t in self.graph.runs
                if t.key in self.outcomes and self.outcomes[t.key].status == status]

    @property
    def failed(self) -> list[Task]:
        return self.runs_with("failed")

    @property
    def unfinished(self) -> list[Task]:
        return [t for t in self.graph.tasks if t.key not in self.outcomes]


class GridMonitor:
    """What an executor tells about the tasks of one grid (see ``kdreg.plugins.spec.Executor``)."""

    def __init__(self, store: Store, outcome: GridOutcome, reporter: Reporter, *, fail_fast: bool) -> None:
        self.store = store
        self.outcome = outcome
        self.reporter = reporter
        self.fail_fast = fail_fast
        self._started: set[str] = set()

    @property
    def graph(self) -> TaskGraph:
        return self.outcome.graph

    def event(self, event: TaskEvent) -> None:
        """A task started, took a training step, or logged a line."""
        task = self.graph.get(event.key)
        if event.kind == "log" or task is None:
            self.reporter.log(event.message)
        elif event.kind == "started" and task.key not in self._started:
            self._started.add(task.key)
            self.reporter.task_started(len(self._started), len(self.graph), task, event.message)
        elif event.kind == "step":
            self.reporter.step(task, event.phase, event.step, event.total, event.loss)

    def finished(self, task: Task, outcome: TaskOutcome) -> None:
        """A task ended; under --fail-fast a failure stops the grid.

        Its outcome is in the store already, unless the task returned it instead of writing
        it (a remote task and an SQLite store): then it is recorded here.
        """
        context = self.graph.context
        if context is not None and context.recording == RETURN:
            recorded = self.store.record_outcome(self.outcome.grid_id, outcome, task.run_id,
                                                 task.seen_status, task.seen_attempts)
            outcome.status = outcome.status if recorded == "recorded before" else recorded
        self.outcome.outcomes[task.key] = outcome
        self.reporter.task_finished(task, outcome)
        if outcome.status == "failed" and self.fail_fast:
            raise GridStoppedError(
                f"Stopped at the first failure (--fail-fast), {task.label}: {outcome.error}"
            )

    def submitted(self, task: Task, external_id: str | None = None, log_path: str | None = None) -> None:
        """An engine accepted ``task`` (its job id and log file when it has them); it ends later."""
        self.outcome.submitted[task.key] = external_id
        self.store.task_submitted(self.outcome.grid_id, task.key, external_id=external_id, log_path=log_path)

    def lost(self, task: Task) -> Task | None:
        """The worker running ``task`` died: the task to submit again, or None once it is settled here.

        Call it only when every process that may have been running the task is gone (a
        broken pool after its shutdown). A task that never started goes again, and so does
        one whose worker was terminated cleanly (it marked itself interrupted; its claim
        takes its run back). The one whose worker was killed outright (still marked running
        by a dead process) is marked interrupted and not retried in this grid — whatever
        killed it (the kernel's OOM killer, an operator) would likely do so again — and the
        next ``kdreg run`` runs it again.
        """
        grid_id = self.outcome.grid_id
        state = self.store.task_state(grid_id, task.key)
        if state in ("pending", "submitted", "interrupted"):
            return task
        if state == "running":
            message = "Interrupted: the worker process running it died (killed?)"
            run = self.store.run_states([task.key]).get(task.key) if task.kind == RUN else None
            if run is not None and task.run_id is not None and run.status in ("running", "stale"):
                self.store.finish_run(task.run_id, "interrupted", error=message)
            self.store.task_finished(grid_id, task.key, "interrupted", message)
            self.finished(task, TaskOutcome(task.key, task.kind, "interrupted", error=message))
            return None
        self.finished(task, TaskOutcome(task.key, task.kind, state or "skipped"))
        return None


def task_environment() -> tuple[tuple[str, str], ...]:
    """The variables of :data:`FORWARDED_ENVIRONMENT` that this process has."""
    return tuple((name, os.environ[name]) for name in FORWARDED_ENVIRONMENT if name in os.environ)


def _recording(store: Store, executor: Any, grid_id: int) -> tuple[str, str | None]:
    """How this grid's tasks record their outcome, and its journal folder when they use one.

    Tasks write the store themselves unless they may run on other machines and the store is
    an SQLite file, which only one machine may write: then the executor says how they
    record instead (a journal on its shared folder, or values it returns).
    """
    remote = getattr(executor, "remote_recording", None)
    if not remote or sqlite_path(store.url) is None:
        return STORE, None
    if remote == JOURNAL:
        folder = Path(executor.shared_folder()) / f"grid-{grid_id}" / "journal"
        folder.mkdir(parents=True, exist_ok=True)
        return JOURNAL, str(folder)
    return remote, None


def record_grid(store: Store, plan: Plan, *, command: str, executor_spec: str, executor: Any = None,
                device: str = "auto", threads: int | None = None) -> GridOutcome:
    """Record the grid, plan its runs (pending rows, their states as claims will name them) and its tasks."""
    jobs = [item.job for item in plan.items]
    grid_id = store.create_grid(command, {"jobs": len(jobs), "executor": executor_spec})
    recording, journal = _recording(store, executor, grid_id)
    if journal is not None:
        store.update_grid_config(grid_id, {JOURNAL_KEY: journal})
    states = store.plan_runs(grid_id, [job.record for job in jobs])
    items = plan_items(jobs, states, retry_failed=plan.retry_failed, force=plan.force, held=plan.held)
    graph = build_graph([i.job for i in items if i.action == "run"], model_cache.is_complete)
    tasks = []
    for task in graph.tasks:
        if task.kind == RUN:
            state = states[task.key]
            task = dataclasses.replace(task, run_id=state.run_id, seen_status=state.status,
                                       seen_attempts=state.attempts)
        tasks.append(task)
    rows = [TaskRow(t.key, t.kind, t.label, t.run_id, t.depends_on) for t in tasks]
    store.add_tasks(grid_id, rows, executor_spec)
    context = TaskContext(grid_id, store.url, device, executor_spec, task_environment(), recording, journal,
                          threads)
    return GridOutcome(grid_id, items, TaskGraph(tasks, context))


def run_grid(store: Store, plan: Plan, executor: Any, *, executor_spec: str, command: str,
             device: str = "auto", fail_fast: bool = False, reporter: Reporter | None = None,
             threads: int | None = None) -> GridOutcome:
    """Record the grid and have ``executor`` (an Executor plugin instance) run its task graph."""
    outcome = record_grid(store, plan, command=command, executor_spec=executor_spec, executor=executor,
                          device=device, threads=threads)
    use_store(store)  # tasks executed in this process write through this very store
    monitor = GridMonitor(store, outcome, reporter or SilentReporter(), fail_fast=fail_fast)
    if outcome.graph.tasks:
        freeze_what_lasts()  # the libraries and the plan outlive every task: no full collection walks them
        executor.execute(outcome.graph, monitor)
    return outcome


def held_elsewhere(outcome: GridOutcome) -> Sequence[Task]:
    """Runs this grid skipped because another process held them when it came to claim them."""
    return outcome.runs_with("skipped")
