"""The runner against a real store: interrupted runs and going on, heartbeats, runs another process holds."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kdreg.grid import build_request
from kdreg.pipeline import runner
from kdreg.pipeline.instances import PluginInstances
from kdreg.pipeline.runner import SilentReporter, claim_run, plan, preflight, resolve_jobs, run_grid
from kdreg.plugins.registry import registry
from kdreg.store.schema import Run
from kdreg.store.store import open_store


def _jobs(world: dict[str, str]) -> tuple[list, PluginInstances]:  # type: ignore[type-arg]
    request = build_request({"teacher": [world["teacher"]], "student": ["layers:k=1"],
                             "benchmark": [world["benchmark"]], "stage": ["none"]}, Path(world["grid"]))
    instances = PluginInstances()
    jobs = resolve_jobs(request, registry(), instances)
    preflight(jobs, instances)
    return jobs, instances


class Interrupting(SilentReporter):
    """Presses Ctrl-C (raises KeyboardInterrupt) at the first training step of one phase."""

    def __init__(self, phase: str) -> None:
        self.phase = phase
        self.logged: list[str] = []

    def log(self, message: str) -> None:
        self.logged.append(message)

    def step(self, phase: str, step: int, total: int, loss: float) -> None:
        if phase == self.phase:
            raise KeyboardInterrupt


def test_an_interrupted_run_is_marked_and_runs_again_next_time(world: dict[str, str]) -> None:
    store = open_store()
    jobs, instances = _jobs(world)
    reporter = Interrupting("finetune")
    with pytest.raises(KeyboardInterrupt):
        run_grid(store, plan(store, jobs), command="test", device="cpu", reporter=reporter,
                 instances=instances)
    with store.session() as s:
        rows = {r.stage: (r.status, r.error) for r in s.scalars(select(Run))}
    assert rows == {"teacher": ("succeeded", None), "none": ("interrupted", "Interrupted (Ctrl-C)")}
    assert reporter.logged == [f"fine-tuning teacher {jobs[0].teacher.spec} on {jobs[0].benchmark.spec}"]

    items = plan(store, jobs)
    assert [(i.job.stage, i.previous, i.action) for i in items] == [
        ("teacher", "succeeded", "skip"), ("none", "interrupted", "run")]
    again = Interrupting("no such phase")
    outcome = run_grid(store, items, command="test", device="cpu", reporter=again, instances=instances)
    assert list(outcome.statuses.values()) == ["succeeded"]
    assert again.logged == []  # the teacher was neither run nor fine-tuned again
    with store.session() as s:
        none = s.scalars(select(Run).where(Run.stage == "none")).one()
        assert none.status == "succeeded" and none.error is None and len(none.results) == 3 * 2 * 2


class Watching(SilentReporter):
    """Reads the run's heartbeat while it trains, pausing between steps."""

    def __init__(self, store) -> None:  # type: ignore[no-untyped-def]
        self.store = store
        self.beats: list[datetime | None] = []

    def step(self, phase: str, step: int, total: int, loss: float) -> None:
        if phase != "finetune":
            return
        with self.store.session() as s:
            self.beats.append(s.scalar(select(Run.heartbeat_at).where(Run.stage == "none")))
        time.sleep(0.15)


def test_a_background_heartbeat_shows_the_run_is_alive(world: dict[str, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.05)
    store = open_store()
    jobs, instances = _jobs(world)
    watching = Watching(store)
    run_grid(store, plan(store, jobs), command="test", device="cpu", reporter=watching, instances=instances)
    assert len(watching.beats) == 6 and None not in watching.beats
    assert len(set(watching.beats)) >= 3  # it kept beating between the steps


def test_a_run_another_process_holds_is_left_alone_unless_its_heartbeat_stopped(
        world: dict[str, str]) -> None:
    store = open_store()
    jobs, _ = _jobs(world)
    none = jobs[1]
    run_id, status = store.plan_run(None, none.record)
    assert status == "pending"
    assert claim_run(store, run_id, None)  # this process takes it...
    assert not claim_run(store, run_id, None)  # ...so another one cannot
    store.start_run(run_id, {})
    assert [(i.previous, i.action) for i in plan(store, [none], force=True)] == [("running", "skip")]

    with store.session() as s:  # the holder died two minutes ago
        s.execute(update(Run).where(Run.id == run_id).values(
            heartbeat_at=datetime.now(timezone.utc) - timedelta(seconds=runner.STALE_SECONDS + 1)))
    [item] = plan(store, [none])
    assert (item.previous, item.action) == ("stale", "run")
    assert claim_run(store, run_id, item.previous)
    assert not claim_run(store, run_id, item.previous)
