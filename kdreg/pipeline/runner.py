"""Running a grid against the store: plan, preflight, claim, train, record.

Nothing is written before the preflight passes (every plugin instantiates and its
``check()`` passes, every requested language exists), so an unknown model or an offline
hub gives one error line and an untouched database. Then each job is its own short
story in the store: planned, claimed (running, with a heartbeat from a background
thread, so loading and evaluation count as alive too), then succeeded, failed (with its
traceback, and the grid goes on unless ``fail_fast``) or interrupted (Ctrl-C; the
exception is re-raised after the run is marked). A run whose heartbeat is fresh belongs
to another process and is left alone; a stale one (a process that died) is run again.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from sqlalchemy import and_, or_, select, update

from kdreg.errors import KdregError
from kdreg.grid import USES_PRETRAIN, Job
from kdreg.pipeline.instances import PluginInstances
from kdreg.store.schema import Run
from kdreg.store.store import ResultRecord, Store

HEARTBEAT_SECONDS = 15.0
"""How often a running run's heartbeat is written."""
STALE_SECONDS = 120.0
"""A 'running' run whose heartbeat is older than this was left by a process that died."""


class GridStoppedError(KdregError):
    """--fail-fast: the grid stopped at a failing combination."""


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
    """config hash → final status of every job that ran ('skipped' when another process had it)."""
    results: dict[str, list[ResultRecord]] = field(default_factory=dict)

    @property
    def failed(self) -> list[PlanItem]:
        return [i for i in self.items if self.statuses.get(i.job.record.config_hash) == "failed"]


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes (stored as UTC)
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


def _stale_before() -> datetime:
    return datetime.now(timezone.utc) - timedelta(seconds=STALE_SECONDS)


def previous_statuses(store: Store, hashes: Sequence[str]) -> dict[str, str]:
    """Status of each already-stored run among ``hashes`` (read-only).

    A 'running' run whose heartbeat stopped is reported as 'stale': its process died.
    """
    found: dict[str, str] = {}
    stale_before = _stale_before()
    with store.session() as s:
        for start in range(0, len(hashes), 500):
            chunk = list(hashes[start : start + 500])
            for config_hash, status, beat in s.execute(
                select(Run.config_hash, Run.status, Run.heartbeat_at).where(Run.config_hash.in_(chunk))
            ):
                beat = _aware(beat)
                if status == "running" and (beat is None or beat < stale_before):
                    status = "stale"
                found[config_hash] = status
    return found


def plan(store: Store | None, jobs: Sequence[Job], *, retry_failed: bool = False,
         force: bool = False) -> list[PlanItem]:
    """Decide for each job: skip (succeeded, failed without --retry-failed, running elsewhere) or run.

    ``store`` None (a dry run before any database exists) plans everything as new.
    """
    statuses = previous_statuses(store, [j.record.config_hash for j in jobs]) if store is not None else {}
    items = []
    for job in jobs:
        previous = statuses.get(job.record.config_hash)
        if previous == "running":  # another process is on it right now, even with --force
            action = "skip"
        elif force or previous in (None, "pending", "interrupted", "stale"):
            action = "run"
        elif previous == "failed":
            action = "run" if retry_failed else "skip"
        else:
            action = "skip"
        items.append(PlanItem(job, previous, action))
    return items


def resolve_jobs(request: Any, registry: Any, instances: PluginInstances | None = None) -> list[Job]:
    """Expand a request into jobs, resolving every plugin through ``registry``.

    ``--lang`` codes are matched against each benchmark here (an unknown one is a
    ConfigError before anything is written), so a run's config records the benchmark's
    own codes and equal selections are one run however they were spelled.
    """
    from kdreg.grid import expand_grid
    from kdreg.pipeline.evaluate import selected_languages
    from kdreg.pipeline.resolve import resolve_loss

    pool = instances or PluginInstances()

    def select(benchmark: Any, codes: Sequence[str]) -> tuple[str, ...]:
        return selected_languages(pool.get(benchmark), codes, benchmark.spec)

    return expand_grid(request, registry.resolve, lambda text: resolve_loss(registry, text), select)


def preflight(jobs: Sequence[Job], instances: PluginInstances | None = None) -> None:
    """Instantiate every distinct plugin and run its ``check()``; validate languages. Writes nothing."""
    from kdreg.errors import ConfigError
    from kdreg.pipeline.evaluate import evaluation_languages

    pool = instances or PluginInstances()
    losses: set[str] = set()
    for job in jobs:
        for plugin in (job.teacher, job.student, job.benchmark, job.corpus):
            if plugin is not None:
                pool.checked(plugin)
        evaluation_languages(pool.get(job.benchmark), job.languages, job.benchmark.spec)
        if job.loss is not None and job.loss.spec not in losses:
            losses.add(job.loss.spec)
            job.loss.create()
        if job.stage in USES_PRETRAIN and job.hparams.pretrain.max_steps == 0:
            if not pool.get(job.corpus).sizes():
                raise ConfigError(
                    f"[pretrain] epochs needs to know the corpus size, but {job.corpus.spec} does not report "
                    "one; set [pretrain] max_steps instead."
                )


class _Heartbeat:
    """Writes a run's heartbeat every HEARTBEAT_SECONDS from a background thread while it runs."""

    def __init__(self, store: Store, run_id: int) -> None:
        self._store, self._run_id = store, run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"kdreg-heartbeat-{run_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._store.heartbeat(self._run_id)
            except Exception:  # a busy database must not kill the run; the next beat tries again
                pass

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def claim_run(store: Store, run_id: int, expected: str | None) -> bool:
    """Mark the run running if it is still as planned (or its process died); False when another has it.

    One conditional UPDATE, so two processes planning the same run cannot both claim it.
    """
    now = datetime.now(timezone.utc)
    dead = and_(Run.status == "running", or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < _stale_before()))
    planned = Run.status == (expected if expected not in (None, "stale") else "pending")
    with store.session() as s:
        result = s.execute(
            update(Run).where(Run.id == run_id, or_(planned, dead)).values(status="running", heartbeat_at=now)
        )
        return bool(result.rowcount)


def run_grid(
    store: Store,
    items: Sequence[PlanItem],
    *,
    command: str,
    device: Any = "auto",
    fail_fast: bool = False,
    reporter: Reporter | None = None,
    instances: PluginInstances | None = None,
) -> GridOutcome:
    """Execute the planned jobs, recording everything in ``store``.

    ``device`` is a :class:`~kdreg.pipeline.training.Device` or the text of ``--device``.
    """
    from kdreg.pipeline.environment import environment
    from kdreg.pipeline.stages import StageRunner
    from kdreg.pipeline.training import Device

    reporter = reporter or SilentReporter()
    torch_device = device if isinstance(device, Device) else Device(device)
    grid_id = store.create_grid(command, {"jobs": len(items)})
    outcome = GridOutcome(grid_id, list(items))
    run_ids = {}
    for item in items:
        run_ids[item.job.record.config_hash], _ = store.plan_run(grid_id, item.job.record)
    todo = [i for i in items if i.action == "run"]
    stages = StageRunner(torch_device, log=reporter.log, on_step=reporter.step, instances=instances)
    for index, item in enumerate(todo, start=1):
        job = item.job
        run_id = run_ids[job.record.config_hash]
        reporter.job_started(index, len(todo), job)
        if not claim_run(store, run_id, item.previous):
            outcome.statuses[job.record.config_hash] = "skipped"
            reporter.job_finished(job, "skipped", 0.0, "another kdreg process is running it")
            continue
        plugins = [p.identity() for p in (job.teacher, job.student, job.benchmark, job.corpus)
                   if p is not None]
        if job.loss is not None:
            plugins.append(job.loss.identity())
        kept = store.start_run(run_id, environment(torch_device.describe(), plugins))
        started = time.perf_counter()
        try:
            with _Heartbeat(store, run_id):
                results, curves = stages.run(job)
            store.complete_run(run_id, results, {p: (c.steps, c.losses) for p, c in curves.items()})
            outcome.statuses[job.record.config_hash] = "succeeded"
            outcome.results[job.record.config_hash] = results
            reporter.job_finished(job, "succeeded", time.perf_counter() - started, None)
        except KeyboardInterrupt:
            store.finish_run(run_id, "interrupted", error="Interrupted (Ctrl-C)", kept=kept)
            outcome.statuses[job.record.config_hash] = "interrupted"
            reporter.job_finished(job, "interrupted", time.perf_counter() - started, None)
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            store.finish_run(run_id, "failed", error=message, traceback=traceback.format_exc(), kept=kept)
            outcome.statuses[job.record.config_hash] = "failed"
            reporter.job_finished(job, "failed", time.perf_counter() - started, message)
            if fail_fast:
                raise GridStoppedError(
                    f"Stopped at the first failure (--fail-fast), run {run_id} ({job.label}): {message}"
                ) from exc
    return outcome
