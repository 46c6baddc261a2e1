"""A run's claim, liveness and completion at the store level, with real processes on a real SQLite file.

These are the guarantees everything above the store relies on: of N processes claiming a
run exactly one wins; a claim held by a process that died goes stale after the configured
limit and can then be taken over once; a forced re-run is claimed once per plan; and a
run's results, curves and status land together or not at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import event, select

from kdreg.errors import StoreError
from kdreg.records import ResultRecord, RunRecord
from kdreg.store.schema import Curve, Result, Run
from kdreg.store.store import Store

RECORD = RunRecord(config_hash="c" * 64, config={"x": 1}, teacher="t", teacher_spec="t", benchmark="b",
                   benchmark_spec="b", stage="none", seed=0)

CLAIMER = """
import json, sys, time
from pathlib import Path
from kdreg.store.store import Store

url, run_id, hold = sys.argv[1], int(sys.argv[2]), sys.argv[5]
ready, go = Path(sys.argv[3]), Path(sys.argv[4])
store = Store(url)
ready.touch()
while not go.exists():
    time.sleep(0.0005)
won = store.claim_run(run_id, "pending", 0)
print(json.dumps({"won": won}), flush=True)
if won and hold == "hold":
    store.start_run(run_id, {"holder": True})
    time.sleep(600)
"""


def _claimers(tmp_path: Path, url: str, run_id: int, n: int, hold: str) -> list[subprocess.Popen[str]]:
    go = tmp_path / "go"
    procs = []
    for i in range(n):
        ready = tmp_path / f"ready-{i}"
        argv = [sys.executable, "-c", CLAIMER, url, str(run_id), str(ready), str(go), hold]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append((ready, proc))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in procs):
        assert time.monotonic() < deadline, [p.communicate() for _, p in procs]
        time.sleep(0.01)
    go.touch()
    return [p for _, p in procs]


def test_of_many_processes_claiming_one_run_exactly_one_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    run_id, _ = Store(url).plan_run(None, RECORD)
    procs = _claimers(tmp_path, url, run_id, 6, "release")
    wins = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        wins.append(json.loads(out)["won"])
    assert sorted(wins) == [False] * 5 + [True]
    with Store(url).session() as s:
        assert s.scalar(select(Run.attempts).where(Run.id == run_id)) == 1


def test_a_claim_held_by_a_killed_process_goes_stale_and_is_taken_over_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDREG_STALE_SECONDS", "1")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    store = Store(url)
    run_id, _ = store.plan_run(None, RECORD)
    [holder] = _claimers(tmp_path, url, run_id, 1, "hold")
    assert json.loads(holder.stdout.readline())["won"]  # type: ignore[union-attr]
    deadline = time.monotonic() + 30
    while store.run_states([RECORD.config_hash])[RECORD.config_hash].status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=30)
    state = store.run_states([RECORD.config_hash])[RECORD.config_hash]
    assert (state.status, state.attempts) == ("running", 1)  # its heartbeat is still fresh
    assert not store.claim_run(run_id, "running", 1)
    time.sleep(1.2)  # past KDREG_STALE_SECONDS without a heartbeat
    state = store.run_states([RECORD.config_hash])[RECORD.config_hash]
    assert (state.status, state.attempts) == ("stale", 1) and state.heartbeat_age is not None
    assert store.claim_run(run_id, state.status, state.attempts)
    assert not store.claim_run(run_id, state.status, state.attempts)  # once


def test_a_forced_run_is_claimed_once_per_plan(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "runs.db"))
    run_id, _ = store.plan_run(None, RECORD)
    assert store.claim_run(run_id, "pending", 0)
    store.start_run(run_id, {})
    store.complete_run(run_id, [], {})
    # two `kdreg run --force` grids plan it: both see it succeeded after one claim
    first = second = store.run_states([RECORD.config_hash])[RECORD.config_hash]
    assert (first.status, first.attempts) == ("succeeded", 1)
    assert store.claim_run(run_id, first.status, first.attempts)
    store.start_run(run_id, {})
    store.complete_run(run_id, [], {})
    # the first forced grid finished it: the second, which planned it earlier, does not train it again
    assert not store.claim_run(run_id, second.status, second.attempts)


def _result(language: str, value: float) -> ResultRecord:
    return ResultRecord(language, language, "test", "accuracy", value, language == "en")


def _state(store: Store, run_id: int) -> tuple[str, int, int]:
    with store.session() as s:
        run = s.get(Run, run_id)
        assert run is not None
        results = len(s.scalars(select(Result.id).where(Result.run_id == run_id)).all())
        curves = len(s.scalars(select(Curve.id).where(Curve.run_id == run_id)).all())
        return run.status, results, curves


def test_results_curves_and_status_land_together_or_not_at_all(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "runs.db"))
    run_id, _ = store.plan_run(None, RECORD)
    assert store.claim_run(run_id, "pending", 0)
    store.start_run(run_id, {})
    # a failure after every statement of complete_run has run, just before the commit
    def fail(_session: object) -> None:
        raise RuntimeError("the disk filled up")

    event.listen(store._sessions, "before_commit", fail)
    with pytest.raises(RuntimeError, match="disk"):
        store.complete_run(run_id, [_result("en", 0.9), _result("de", 0.5)], {"finetune": ([1], [0.5])})
    event.remove(store._sessions, "before_commit", fail)
    assert _state(store, run_id) == ("running", 0, 0)
    # a failure in the middle: the second result breaks a constraint after the first was written
    with pytest.raises(StoreError):
        store.complete_run(run_id, [_result("en", 0.9), _result("en", 0.8)], {"finetune": ([1], [0.5])})
    assert _state(store, run_id) == ("running", 0, 0)
    store.complete_run(run_id, [_result("en", 0.9), _result("de", 0.5)], {"finetune": ([1], [0.5])})
    assert _state(store, run_id) == ("succeeded", 2, 1)


def test_a_forced_rerun_stopped_before_it_started_keeps_the_earlier_numbers(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "runs.db"))
    run_id, _ = store.plan_run(None, RECORD)
    assert store.claim_run(run_id, "pending", 0)
    store.start_run(run_id, {})
    store.complete_run(run_id, [_result("en", 0.9)], {"finetune": ([1], [0.5])})
    assert store.claim_run(run_id, "succeeded", 1)  # --force claims it again...
    store.finish_run(run_id, "interrupted", error="Interrupted (SIGTERM)")  # ...and is stopped at once
    assert _state(store, run_id) == ("succeeded", 1, 1)
    with store.session() as s:
        assert "re-run (interrupted) was discarded" in (s.get(Run, run_id).error or "")  # type: ignore[union-attr]
