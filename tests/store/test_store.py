"""The store's write path: grids, runs, results and curves in a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from kdreg.errors import RunNotFoundError, StoreError
from kdreg.store.schema import Curve, GridRun, Result, Run
from kdreg.store.store import ResultRecord, RunRecord, Store, open_store


def record(config_hash: str = "ab" * 32, **changes: object) -> RunRecord:
    values: dict[str, object] = {
        "config_hash": config_hash,
        "config": {"teacher": "mbert", "seed": 0},
        "teacher": "mbert",
        "teacher_spec": "mbert",
        "benchmark": "xnli",
        "benchmark_spec": "xnli:max_train_examples=100",
        "stage": "finetune",
        "seed": 0,
        "student": "layers",
        "student_spec": "layers:layers=3",
        "loss": "kl",
        "loss_spec": "kl:temperature=4",
    }
    values.update(changes)
    return RunRecord(**values)  # type: ignore[arg-type]


def result(language: str, value: float, *, split: str = "test", metric: str = "accuracy") -> ResultRecord:
    return ResultRecord(language=language, lang=language[:2], split=split, metric=metric, value=value,
                        is_source=language == "en")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "runs.db"))
    yield opened
    opened.close()


def count(store: Store, model: type, *where: object) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_plan_run_is_idempotent_and_records_grid_membership(store: Store) -> None:
    first_grid = store.create_grid("kdreg run --teacher mbert", {"teachers": ["mbert"]})
    second_grid = store.create_grid("kdreg run --teacher mbert --seed 0")
    run_id, status = store.plan_run(first_grid, record())
    assert status == "pending"
    assert store.plan_run(first_grid, record()) == (run_id, "pending")  # same hash, same run, one link
    assert store.plan_run(second_grid, record()) == (run_id, "pending")
    other_id, _ = store.plan_run(first_grid, record("cd" * 32, seed=1))
    assert other_id != run_id
    assert store.plan_run(None, record()) == (run_id, "pending")  # no grid: no link

    assert count(store, Run) == 2
    with store.session() as s:
        query = select(GridRun.grid_id, GridRun.run_id).order_by(GridRun.grid_id, GridRun.run_id)
        links = [tuple(link) for link in s.execute(query).all()]
    assert links == [(first_grid, run_id), (first_grid, other_id), (second_grid, run_id)]

    run = store.find_run(run_id)
    assert (run.teacher, run.student_spec, run.loss_spec, run.stage, run.seed) == (
        "mbert", "layers:layers=3", "kl:temperature=4", "finetune", 0
    )
    assert run.config == {"teacher": "mbert", "seed": 0}
    assert run.corpus is None


def test_start_heartbeat_finish_timestamps_and_duration(store: Store) -> None:
    run_id, _ = store.plan_run(None, record())
    store.start_run(run_id, {"kdreg": "0.1.0", "host": "test"})
    started = store.find_run(run_id)
    assert started.status == "running"
    assert started.started_at is not None and started.heartbeat_at == started.started_at
    assert started.finished_at is None and started.duration_s is None
    assert started.environment == {"kdreg": "0.1.0", "host": "test"}

    store.heartbeat(run_id)
    beaten = store.find_run(run_id)
    assert beaten.heartbeat_at is not None and beaten.heartbeat_at >= started.started_at

    store.finish_run(run_id, "failed", error="DataError: no rows", traceback="Traceback ...")
    done = store.find_run(run_id)
    assert done.status == "failed"
    assert (done.error, done.traceback) == ("DataError: no rows", "Traceback ...")
    assert done.finished_at is not None and done.finished_at >= done.started_at
    elapsed = (done.finished_at - done.started_at).total_seconds()
    assert done.duration_s == pytest.approx(elapsed, abs=1e-3)
    assert timedelta(seconds=done.duration_s) < timedelta(minutes=1)
    assert store.plan_run(None, record()) == (run_id, "failed")  # planning again reports the old status


def test_record_results_replaces_the_same_key_only(store: Store) -> None:
    run_id, _ = store.plan_run(None, record())
    store.record_results(
        run_id, [result("en", 0.5), result("de", 0.4), result("de", 0.3, split="validation")]
    )
    store.record_results(run_id, [result("de", 0.45)])
    values = {(r.language, r.split, r.metric): r.value for r in store.find_run(run_id).results}
    assert values == {("en", "test", "accuracy"): 0.5, ("de", "test", "accuracy"): 0.45,
                      ("de", "validation", "accuracy"): 0.3}
    assert next(r for r in store.find_run(run_id).results if r.language == "en").is_source is True


def test_a_failed_write_rolls_back_and_says_so(store: Store) -> None:
    run_id, _ = store.plan_run(None, record())
    store.record_results(run_id, [result("en", 0.5)])
    with pytest.raises(StoreError, match=r"Database error on .*runs\.db: UNIQUE constraint failed"):
        store.record_results(run_id, [result("en", 0.9), result("en", 0.8)])  # one key twice in one call
    assert [r.value for r in store.find_run(run_id).results] == [0.5]  # the delete was rolled back too


def test_curves_are_replaced_and_a_retry_replaces_an_attempt_only_when_it_succeeds(store: Store) -> None:
    run_id, _ = store.plan_run(None, record())
    assert store.start_run(run_id, {}) is None  # nothing to keep: no results yet
    store.record_curve(run_id, "finetune", [0, 10], [2.0, 1.23456789])
    store.record_curve(run_id, "finetune", [0, 10, 20], [2.0, 1.5, 1.0])
    store.record_results(run_id, [result("en", 0.5)])
    store.finish_run(run_id, "failed", error="boom")
    failed = store.find_run(run_id)
    assert failed.results == []  # a failed run has no numbers; its curve stays for diagnosis
    assert [(c.steps, c.losses) for c in failed.curves] == [([0, 10, 20], [2.0, 1.5, 1.0])]

    assert store.start_run(run_id, {"attempt": 2}) is None  # --retry-failed
    again = store.find_run(run_id)
    assert (again.status, again.error, again.finished_at) == ("running", None, None)
    store.complete_run(run_id, [result("en", 0.7), result("de", 0.4)], {"finetune_kd": ([0, 5], [1.0, 0.5])})
    done = store.find_run(run_id)
    assert done.status == "succeeded" and done.duration_s is not None and done.error is None
    assert sorted((r.language, r.value) for r in done.results) == [("de", 0.4), ("en", 0.7)]
    assert [c.phase for c in done.curves] == ["finetune_kd"]


def test_a_forced_re_run_that_fails_keeps_the_earlier_results(store: Store) -> None:
    """--force on a succeeded run: its numbers are replaced only by a re-run that succeeds."""
    run_id, _ = store.plan_run(None, record())
    store.start_run(run_id, {"attempt": 1})
    store.complete_run(run_id, [result("en", 0.9)], {"finetune": ([0, 1], [1.0, 0.5])})
    first = store.find_run(run_id)
    for status in ("failed", "interrupted"):
        kept = store.start_run(run_id, {"attempt": 2})
        assert kept is not None and kept.environment == {"attempt": 1}
        store.finish_run(run_id, status, error="RuntimeError: out of memory", traceback="Traceback ...",
                         kept=kept)
        after = store.find_run(run_id)
        assert (after.status, after.environment, after.finished_at) == ("succeeded", {"attempt": 1},
                                                                          first.finished_at)
        assert [(r.language, r.value) for r in after.results] == [("en", 0.9)]
        assert [c.phase for c in after.curves] == ["finetune"]
        assert after.error.startswith(f"A re-run ({status}) was discarded; these are the earlier results.")
        assert "out of memory" in after.error
    kept = store.start_run(run_id, {"attempt": 3})
    store.complete_run(run_id, [result("en", 0.95)], {})
    final = store.find_run(run_id)
    assert (final.error, [r.value for r in final.results], final.curves) == (None, [0.95], [])


def test_deleting_a_run_cascades_through_foreign_keys(store: Store) -> None:
    grid = store.create_grid("kdreg run")
    keep, _ = store.plan_run(grid, record("11" * 32))
    drop, _ = store.plan_run(grid, record("22" * 32, seed=2))
    for run_id in (keep, drop):
        store.record_results(run_id, [result("en", 0.5), result("de", 0.4)])
        store.record_curve(run_id, "finetune", [0], [1.0])
    with store.engine.begin() as conn:  # plain SQL: the database's own ON DELETE CASCADE does the work
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": drop})
    assert count(store, Result, Result.run_id == drop) == 0
    assert count(store, Curve, Curve.run_id == drop) == 0
    assert count(store, GridRun, GridRun.run_id == drop) == 0
    assert count(store, Result, Result.run_id == keep) == 2
    assert count(store, GridRun) == 1


def test_find_run_by_id_or_hash_prefix(store: Store) -> None:
    a, _ = store.plan_run(None, record("abcdef" + "0" * 58))
    store.plan_run(None, record("abcdef" + "1" * 58, seed=1))
    assert store.find_run(str(a)).id == a
    assert store.find_run("ABCDEF0").id == a
    with pytest.raises(RunNotFoundError, match="matches 2 runs"):
        store.find_run("abcdef")
    with pytest.raises(RunNotFoundError, match="No run '999'"):
        store.find_run(999)
    with pytest.raises(RunNotFoundError, match="No run with id 999"):
        store.start_run(999, {})


def test_opening_without_create_does_not_make_a_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.db"
    with pytest.raises(StoreError, match="No database at"):
        Store(str(missing), create=False)
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_in_memory_database_needs_no_lock_file(kdreg_home: Path) -> None:
    store = Store("sqlite://")
    run_id, status = store.plan_run(None, record())
    assert (store.find_run(run_id).id, status) == (run_id, "pending")
    store.close()
    assert not kdreg_home.exists() or list(kdreg_home.iterdir()) == []
