"""What keeps an SQLite store portable to PostgreSQL: standard JSON for curves, column lengths.

The same behaviour on a real PostgreSQL server is tested in test_postgres.py; these run
everywhere, on SQLite.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdreg.errors import StoreError
from kdreg.store.store import ResultRecord, RunRecord, Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "runs.db"))
    yield opened
    opened.close()


def record(config_hash: str = "ab" * 32, **changes: object) -> RunRecord:
    values: dict[str, object] = {
        "config_hash": config_hash, "config": {"seed": 0}, "teacher": "mbert", "teacher_spec": "mbert",
        "benchmark": "xnli", "benchmark_spec": "xnli", "stage": "none", "seed": 0,
    }
    values.update(changes)
    return RunRecord(**values)  # type: ignore[arg-type]


def raw_losses(store: Store) -> str:
    db = sqlite3.connect(store.label)
    try:
        return db.execute("SELECT losses FROM curves").fetchone()[0]
    finally:
        db.close()


def refuse_token(token: str) -> None:
    raise AssertionError(f"non-standard JSON token {token}")


def test_non_finite_losses_round_trip_as_standard_json(store: Store) -> None:
    run_id, _ = store.plan_run(None, record())
    store.record_curve(run_id, "finetune", [1, 2, 3, 4], [2.0, float("nan"), float("inf"), -float("inf")])
    losses = store.find_run(run_id).curves[0].losses
    assert losses[0] == 2.0 and math.isnan(losses[1]) and losses[2:] == [math.inf, -math.inf]
    stored = raw_losses(store)
    assert json.loads(stored, parse_constant=refuse_token) == [2.0, "NaN", "Infinity", "-Infinity"]


def test_bare_nan_tokens_of_older_databases_still_read_back(store: Store) -> None:
    run_id, _ = store.plan_run(None, record())
    store.record_curve(run_id, "finetune", [1, 2], [1.0, 0.5])
    db = sqlite3.connect(store.label)
    try:  # what kdreg wrote before losses were spelled as standard JSON
        db.execute("UPDATE curves SET losses = '[1.0, NaN]'")
        db.commit()
    finally:
        db.close()
    losses = store.find_run(run_id).curves[0].losses
    assert losses[0] == 1.0 and math.isnan(losses[1])


def test_text_longer_than_its_column_is_refused_as_postgresql_would(store: Store) -> None:
    with pytest.raises(StoreError, match=r"The run's teacher_spec is 1001 characters .* at most 1000\."):
        store.plan_run(None, record(teacher_spec="hf:path=/" + "x" * 992))
    run_id, _ = store.plan_run(None, record())
    long_metric = ResultRecord(language="en", lang="en", split="test", metric="m" * 51, value=0.5,
                               is_source=True)
    with pytest.raises(StoreError, match=r"The result's metric is 51 characters"):
        store.record_results(run_id, [ResultRecord("de", "de", "test", "accuracy", 0.4, False), long_metric])
    with pytest.raises(StoreError, match=r"The curve's phase is 51 characters"):
        store.record_curve(run_id, "p" * 51, [1], [1.0])
    run = store.find_run(run_id)
    assert (run.results, run.curves) == ([], [])  # refused before anything was written
    exact = ResultRecord(language="x" * 50, lang="x" * 20, split="s" * 20, metric="m" * 50, value=1.0,
                         is_source=False)
    store.record_results(run_id, [exact])  # at the limit: fine
    assert [r.metric for r in store.find_run(run_id).results] == ["m" * 50]
