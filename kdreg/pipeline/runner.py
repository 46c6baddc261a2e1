"""Running a grid against the store: plan, preflight, claim, train, record.

Nothing is written before the preflight passes (every plugin instantiates and its
``check()`` passes, every requested language exists), so an unknown model or an offline
hub gives one error line and an untouched database. Then each job is its own short
story in the store: planned, running with a heartbeat, then succeeded, failed (with
its traceback, and the grid goes on unless ``fail_fast``) or interrupted (Ctrl-C;
the exception is re-raised after the run is marked).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select

from kdreg.grid import Job
from kdreg.store.schema import Run
from kdreg.store.store import ResultRecord, Store

HEARTBEAT_SECONDS = 30.0


class Reporter(Protocol):
    """What the runner tells the person watching (the CLI draws it with rich)."""

    def log(self, message: str) -> None: ...
    def job_started(self, index: int, total: int, job: Job) -> None: ...
    def step(self, phase: str, step: int, total: int, loss: float) -> None: ...
    def job_finished(self, job: Job, status: str, seconds: float, error: str | None) -> None: ...


class SilentReporter:
    """A reporter that prints nothing (library use, tests)."""

    def log(self, message: str) -> None:
        pass

    def job_started(self, index: int, total: int, job: Job) -> None:
        pass

    def step(self, phase: str, step: int, total: int, loss: float) -> None:
        pass

    def job_finished(self, job: Job, status: str, seconds: float, error: str | None) -> None:
        pass


@dataclass
class PlanItem:
    """A job and what the grid will do with it."""

    job: Job
    previous: str | None
    """Status in the store before this grid: None when new."""
    action: str
    """'run' or 'skip'."""


@dataclass
class GridOutcome:
    grid_id: int | None
    items: list[PlanItem]
    statuses: dict[str, str] = field(default_factory=dict)
    """config hash → final status of every job that ran."""
    results: dict[str, list[ResultRecord]] = field(default_factory=dict)

    @property
    def failed(self) -> list[PlanItem]:
        return [i for i in self.items if self.statuses.get(i.job.record.config_hash) == "failed"]


def previous_statuses(store: Store, hashes: Sequence[str]) -> dict[str, str]:
    """Status of each already-stored run among ``hashes`` (read-only)."""
    found: dict[str, str] = {}
    with store.session() as s:
        for start in range(0, len(hashes), 500):
            chunk = list(hashes[start : start + 500])
            for config_hash, status in s.execute(
                select(Run.config_hash, Run.status).where(Run.config_hash.in_(chunk))
            ):
                found[config_hash] = status
    return found


def plan(store: Store | None, jobs: Sequence[Job], *, retry_failed: bool = False,
         force: bool = False) -> list[PlanItem]:
    """Decide for each job: skip (already succeeded, or failed without --retry-failed) or run.

    ``store`` None (a dry run before any database exists) plans everything as new.
    """
    statuses = previous_statuses(store, [j.record.config_hash for j in jobs]) if store is not None else {}
    items = []
    for job in jobs:
        previous = statuses.get(job.record.config_hash)
        if force or previous is None or previous in ("pending", "running", "interrupted"):
            action = "run"
        elif previous == "failed":
            action = "run" if retry_failed else "skip"
        else:
            action = "skip"
        items.append(PlanItem(job, previous, action))
    return items


def preflight(jobs: Sequence[Job]) -> None:
    """Instantiate every distinct plugin and run its ``check()``; validate languages. Writes nothing."""
    from kdreg.pipeline.evaluate import evaluation_languages

    seen: set[tuple[str, str]] = set()
    for job in jobs:
        for plugin in (job.teacher, job.student, job.benchmark, job.corpus):
            if plugin is None:
                continue
            key = (plugin.entry.kind, plugin.spec)
            if key in seen:
                continue
            seen.add(key)
            instance = plugin.create()
            if hasattr(instance, "check"):
                instance.check()
            if plugin is job.benchmark:
                evaluation_languages(instance, job.languages)
        if job.loss is not None and ("loss", job.loss.spec) not in seen:
            seen.add(("loss", job.loss.spec))
            job.loss.create()


def run_grid(
    store: Store,
    items: Sequence[PlanItem],
    *,
    command: str,
    device: str = "auto",
    fail_fast: bool = False,
    reporter: Reporter | None = None,
) -> GridOutcome:
    """Execute the planned jobs, recording everything in ``store``."""
    from kdreg.pipeline.environment import environment
    from kdreg.pipeline.stages import StageRunner
    from kdreg.pipeline.training import Device

    reporter = reporter or SilentReporter()
    torch_device = Device(device)
    grid_id = store.create_grid(command, {"jobs": len(items)})
    outcome = GridOutcome(grid_id, list(items))
    run_ids = {}
    for item in items:
        run_ids[item.job.record.config_hash], _ = store.plan_run(grid_id, item.job.record)
    todo = [i for i in items if i.action == "run"]
    last_beat = [time.monotonic()]
    current: list[int] = []

    def on_step(phase: str, step: int, total: int, loss: float) -> None:
        reporter.step(phase, step, total, loss)
        if current and time.monotonic() - last_beat[0] > HEARTBEAT_SECONDS:
            store.heartbeat(current[0])
            last_beat[0] = time.monotonic()

    stages = StageRunner(torch_device, log=reporter.log, on_step=on_step)
    for index, item in enumerate(todo, start=1):
        job = item.job
        run_id = run_ids[job.record.config_hash]
        current[:] = [run_id]
        reporter.job_started(index, len(todo), job)
        plugins = [p.identity() for p in (job.teacher, job.student, job.benchmark, job.corpus) if p is not None]
        if job.loss is not None:
            plugins.append(job.loss.identity())
        store.start_run(run_id, environment(torch_device.describe(), plugins))
        started = time.perf_counter()
        try:
            results, curves = stages.run(job)
            store.record_results(run_id, results)
            for phase, curve in curves.items():
                store.record_curve(run_id, phase, curve.steps, curve.losses)
            store.finish_run(run_id, "succeeded")
            outcome.statuses[job.record.config_hash] = "succeeded"
            outcome.results[job.record.config_hash] = results
            reporter.job_finished(job, "succeeded", time.perf_counter() - started, None)
        except KeyboardInterrupt:
            store.finish_run(run_id, "interrupted", error="Interrupted (Ctrl-C)")
            outcome.statuses[job.record.config_hash] = "interrupted"
            reporter.job_finished(job, "interrupted", time.perf_counter() - started, None)
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            store.finish_run(run_id, "failed", error=message, traceback=traceback.format_exc())
            outcome.statuses[job.record.config_hash] = "failed"
            reporter.job_finished(job, "failed", time.perf_counter() - started, message)
            if fail_fast:
                raise
        finally:
            current.clear()
    return outcome


def resolve_jobs(request: Any, registry: Any) -> list[Job]:
    """Expand a request into jobs, resolving every plugin through ``registry``."""
    from kdreg.grid import expand_grid
    from kdreg.pipeline.resolve import resolve_loss

    return expand_grid(request, registry.resolve, lambda text: resolve_loss(registry, text))
