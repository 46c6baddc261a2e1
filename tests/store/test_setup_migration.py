"""Migration 0005: every run gets its setup (config without seed), computed as the grid computes it."""

from __future__ import annotations

import importlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from kdreg.grid import expand_grid
from kdreg.identity import setup_hash
from kdreg.plugins.resolve import PluginSet
from kdreg.request import build_request
from kdreg.store.engine import make_engine
from kdreg.store.migrate import SCHEMA_HEAD, migrate_database, upgrade
from kdreg.store.schema import Run
from kdreg.store.store import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FIXTURE_0004 = FIXTURES / "kdreg-0004.db"
TABLES = ("grids", "runs", "grid_runs", "results", "curves", "tasks")
migration = importlib.import_module("kdreg_migrations.versions.0005_run_setups")


def table_rows(path: Path, table: str, columns: str = "*") -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return sorted(db.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)
    finally:
        db.close()


def column_names(path: Path, table: str) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    finally:
        db.close()


def test_upgrade_from_0004_keeps_every_row_and_fills_each_runs_setup(tmp_path: Path) -> None:
    target = tmp_path / "study.db"
    shutil.copy(FIXTURE_0004, target)
    before = {t: (column_names(target, t), table_rows(target, t)) for t in TABLES}
    configs = dict(table_rows(target, "runs", "id, config"))

    engine = make_engine(f"sqlite:///{target}")
    try:
        change = migrate_database(engine)
    finally:
        engine.dispose()
    assert (change.before, change.after) == ("0004", SCHEMA_HEAD)

    for table, (columns, rows) in before.items():  # every row and value kept, in the columns it had
        assert table_rows(target, table, ", ".join(columns)) == rows, table
    assert "setup_hash" in column_names(target, "runs")
    import json

    hashes = dict(table_rows(target, "runs", "id, setup_hash"))
    assert hashes == {run_id: setup_hash(json.loads(config)) for run_id, config in configs.items()}
    assert hashes[2] == hashes[3] != hashes[4] == hashes[5]  # two learning rates, two seeds each
    assert len(set(hashes.values())) == 5
    assert table_rows(target, "results_flat", "count(*)") == [(15,)]  # the view still reads runs

    store = Store(str(target))
    try:
        with store.engine.connect() as conn:
            indexes = {ix["name"]: ix["column_names"] for ix in inspect(conn).get_indexes("runs")}
        assert indexes["ix_runs_setup_hash"] == ["setup_hash"]
        run_id, status = store.plan_run(None, store_record(json.loads(configs[2]) | {"seed": 2}))
        assert (run_id, status) == (8, "pending")  # a new seed of run 2's setup joins it
    finally:
        store.close()
    assert dict(table_rows(target, "runs", "id, setup_hash"))[8] == hashes[2]


def test_after_the_upgrade_a_report_shows_the_two_setups_as_two_rows(tmp_path: Path) -> None:
    from kdreg.reporting.report import build_report
    from kdreg.store.filters import build_filters
    from kdreg.store.reading import open_reader

    target = tmp_path / "study.db"
    shutil.copy(FIXTURE_0004, target)
    from typer.testing import CliRunner

    from kdreg.cli.main import app

    done = CliRunner().invoke(app, ["db", "upgrade", "--db", str(target)])
    assert done.exit_code == 0 and "0004 → 0005" in done.stdout, done.output
    reader = open_reader(str(target))
    try:
        (table,) = build_report(reader, build_filters(status="succeeded"))
    finally:
        reader.close()
    assert [(row.label[2], row.label[-1], row.runs) for row in table.rows] == [
        ("teacher", "—", 1),
        ("none", "finetune.learning_rate=3e-5", 2),
        ("none", "finetune.learning_rate=5e-5", 2),
    ]
    assert [row.cells[1].mean for row in table.rows] == [
        pytest.approx(74.0), pytest.approx(62.0), pytest.approx(67.0)]


def store_record(config: dict[str, object]):  # type: ignore[no-untyped-def]
    from kdreg.identity import config_hash
    from kdreg.records import RunRecord

    return RunRecord(config_hash=config_hash(config), config=config, teacher="mbert", teacher_spec="mbert",
                     benchmark="xnli", benchmark_spec="xnli:max_train_examples=0", stage="none",
                     seed=int(config["seed"]), student="layers", student_spec="layers:k=6")  # type: ignore[arg-type]


def test_backfill_computes_what_the_grid_computes(tmp_path: Path) -> None:
    """Runs a grid planned before 0005 get exactly the setup hash make_job gives them today."""
    request = build_request({"seed": ["0", "1"], "lang": ["l1", "l2"]})
    jobs = expand_grid(request, PluginSet())
    assert len(jobs) == 20 and all(job.record.setup_hash for job in jobs)  # 2 teachers × 2 seeds × 5
    assert len({job.record.setup_hash for job in jobs}) == 10  # two seeds of each of ten setups

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    try:
        upgrade(engine, "0004")
        with engine.begin() as conn:  # as kdreg 0004 wrote them: every column but the setup
            conn.execute(Run.__table__.insert(), [
                {k: v for k, v in job.record.__dict__.items() if k != "setup_hash"}
                | {"status": "succeeded", "attempts": 1} for job in jobs])
        upgrade(engine)
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT config_hash, setup_hash FROM runs")).all())
    finally:
        engine.dispose()
    assert stored == {job.record.config_hash: job.record.setup_hash for job in jobs}


@pytest.mark.parametrize("config", [
    {"seed": 3, "hparams": {"finetune": {"learning_rate": 3e-5}}, "languages": ["deu_Latn", "ü"]},
    {"seed": 0},
    {},
    {"teacher": {"name": "t", "params": {"x": [1, 2.5, None, True]}}, "stage": "none"},
    None,
    [1, 2],
    "text",
])
def test_the_migrations_copy_of_the_setup_hash_equals_kdregs(config: object) -> None:
    assert migration.setup_hash(config) == setup_hash(config)


def test_the_setup_leaves_out_the_seed_and_nothing_else() -> None:
    base = {"seed": 0, "stage": "none", "hparams": {"finetune": {"learning_rate": 3e-5}}}
    assert setup_hash(base) == setup_hash({**base, "seed": 1})
    assert setup_hash(base) != setup_hash({**base, "hparams": {"finetune": {"learning_rate": 5e-5}}})
    assert setup_hash(base) != setup_hash({**base, "languages": ["de"]})
