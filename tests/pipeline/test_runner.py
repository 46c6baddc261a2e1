"""A grid against a real store: interrupted runs and going on, heartbeats, runs another process holds."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kdreg.execution.coordinator import SilentReporter, run_grid
from kdreg.execution.plan import plan_grid, preflight
from kdreg.grid import Job, expand_grid
from kdreg.plugins.resolve import PluginSet
from kdreg.request import build_request
from kdreg.store.schema import Run, Task
from kdreg.store.store import Store, open_store
from kdreg_plugins.executors.inline import InlineExecutor


def _jobs(world: dict[str, str]) -> list[Job]:
    request = build_request({"teacher": [world["teacher"]], "student": ["layers:k=1"],
                             "benchmark": [world["benchmark"]], "stage": ["teacher", "none"]},
                            Path(world["grid"]))
    plugins = PluginSet()
    jobs = expand_grid(request, plugins)
    preflight(jobs, plugins)
    return jobs


def _run(store: Store, jobs: list[Job], reporter: SilentReporter) -> object:
    return run_grid(store, plan_grid(store, jobs), InlineExecutor(), executor_spec="inline", command="test",
                    device="cpu", reporter=reporter)


class Interrupting(SilentReporter):
    """Presses Ctrl-C (raises KeyboardInterrupt) at the first training step of one phase."""

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.logged: list[str] = []

    def log(self, message: str) -> None:
        self.logged.append(message)

    def step(self, task, phase: str, step: int, total: int, loss: float) -> None:  # type: ignore[no-untyped-def]
        if phase == self.phase:
            raise KeyboardInterrupt


def test_an_interrupted_run_is_marked_and_runs_again_next_time(world: dict[str, str]) -> None:
    store = open_store()
    jobs = _jobs(world)
    reporter = Interrupting("finetune")
    with pytest.raises(KeyboardInterrupt):
        _run(store, jobs, reporter)
    with store.session() as s:
        rows = {r.stage: (r.status, r.error) for r in s.scalars(select(Run))}
        tasks = {t.kind: t.status for t in s.scalars(select(Task))}
    assert rows == {"teacher": ("succeeded", None), "none": ("interrupted", "Interrupted (Ctrl-C)")}
    assert tasks == {"teacher": "succeeded", "run": "interrupted"}  # the artifact task, then the runs
    assert reporter.logged == [f"fine-tuning teacher {jobs[0].teacher.spec} on {jobs[0].benchmark.spec}"]

    plan = plan_grid(store, jobs)
    assert [(i.job.stage, i.previous, i.action) for i in plan.items] == [
        ("teacher", "succeeded", "skip"), ("none", "interrupted", "run")]
    assert [t.kind for t in plan.graph.tasks] == ["run"]  # the fine-tuned teacher is cached: no task
    again = Interrupting("no such phase")
    outcome = _run(store, jobs, again)
    assert list(outcome.statuses.values()) == ["succeeded"]  # type: ignore[attr-defined]
    assert again.logged == []  # the teacher was neither run nor fine-tuned again
    with store.session() as s:
        none = s.scalars(select(Run).where(Run.stage == "none")).one()
        scores = [r for r in none.results if r.split != "model"]  # besides the model's parameter count
        assert none.status == "succeeded" and none.error is None and len(scores) == 3 * 2 * 2
        assert none.attempts == 2


class Watching(SilentReporter):
    """Reads the run's heartbeat while it trains, pausing between steps."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.beats: list[datetime | None] = []

    def step(self, task, phase: str, step: int, total: int, loss: float) -> None:  # type: ignore[no-untyped-def]
        if phase != "finetune":
            return
        with self.store.session() as s:
            self.beats.append(s.scalar(select(Run.heartbeat_at).where(Run.stage == "none")))
        time.sleep(0.25)  # longer than the step events' throttle, so every step is seen


def test_a_background_heartbeat_shows_the_run_is_alive(world: dict[str, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDREG_STALE_SECONDS", "1")  # a beat every 0.25 s
    store = open_store()
    watching = Watching(store)
    _run(store, _jobs(world), watching)
    assert len(watching.beats) == 6 and None not in watching.beats
    assert len(set(watching.beats)) >= 3  # it kept beating between the steps


def test_a_run_another_process_holds_is_left_alone_unless_its_heartbeat_stopped(
        world: dict[str, str]) -> None:
    store = open_store()
    none = _jobs(world)[1]
    run_id, status = store.plan_run(None, none.record)
    assert status == "pending"
    assert store.claim_run(run_id, "pending", 0)  # this process takes it...
    assert not store.claim_run(run_id, "pending", 0)  # ...so another one cannot
    store.start_run(run_id, {})
    [item] = plan_grid(store, [none], force=True).items
    assert (item.previous, item.action) == ("running", "skip")

    with store.session() as s:  # the holder died two minutes ago
        s.execute(update(Run).where(Run.id == run_id).values(
            heartbeat_at=datetime.now(timezone.utc) - timedelta(seconds=121)))
    [item] = plan_grid(store, [none]).items
    assert (item.previous, item.action, item.attempts) == ("stale", "run", 1)
    assert store.claim_run(run_id, item.previous, item.attempts)
    assert not store.claim_run(run_id, item.previous, item.attempts)
