"""A running run says how alive it is: heartbeat age in query, show and status; 'stale' past the limit."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.records import RunRecord
from kdreg.store.schema import Run
from kdreg.store.store import Store


def _record(seed: int) -> RunRecord:
    return RunRecord(config_hash=f"{seed:064d}", config={"seed": seed}, teacher="t", teacher_spec="t",
                     benchmark="b", benchmark_spec="b", stage="none", seed=seed)


def _running(store: Store, seed: int, beat_seconds_ago: float) -> int:
    run_id, _ = store.plan_run(None, _record(seed))
    assert store.claim_run(run_id, "pending", 0)
    store.start_run(run_id, {})
    with store.session() as s:
        beat = datetime.now(timezone.utc) - timedelta(seconds=beat_seconds_ago)
        s.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=beat))
    return run_id


def test_query_and_show_give_the_heartbeat_age_and_call_a_dead_process_run_stale(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KDREG_STALE_SECONDS", "60")
    store = Store()
    alive = _running(store, 0, 5)
    dead = _running(store, 1, 300)
    runner = CliRunner()
    data = json.loads(runner.invoke(app, ["query", "--format", "json"]).stdout)
    by_run = {row["run"]: row for row in data}
    assert by_run[alive]["status"] == "running" and 4 <= by_run[alive]["heartbeat_age"] < 60
    assert by_run[dead]["status"] == "stale" and by_run[dead]["heartbeat_age"] >= 300
    table = runner.invoke(app, ["query"]).stdout
    assert "running (beat" in table and "stale (no beat for 5m" in table
    shown = runner.invoke(app, ["show", str(dead)]).stdout
    assert "stale, last heartbeat 5m" in shown and "runs it again" in shown
    assert json.loads(runner.invoke(app, ["show", str(alive), "--json"]).stdout)["status"] == "running"
    # the limit is the user's: raised past the age, the same run is alive again
    monkeypatch.setenv("KDREG_STALE_SECONDS", "600")
    assert json.loads(runner.invoke(app, ["show", str(dead), "--json"]).stdout)["status"] == "running"


def test_a_bad_stale_limit_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store()
    store.create_grid("kdreg run")
    monkeypatch.setenv("KDREG_STALE_SECONDS", "soon")
    for argv in (["run", "--dry-run"], ["status"]):
        done = CliRunner().invoke(app, argv)
        assert done.exit_code == 1, done.output
        expected = "error: KDREG_STALE_SECONDS='soon' must be a number of seconds from 1 to 604800.\n"
        assert done.output == expected
