"""The store on a real PostgreSQL server: schema, write path, CLI, refusals, concurrent creation.

A throwaway cluster is made in a temporary folder (``initdb``), started on a free
localhost port plus a Unix socket in that folder, and stopped at the end of the module.
PostgreSQL refuses to run as root, so under root the cluster belongs to the ``postgres``
system user. Without the binaries (Debian: ``apt-get install postgresql``) or psycopg
(``pip install 'kdreg[postgres]'``) the whole module is skipped with the reason.

The server runs in Asia/Kolkata (UTC+05:30, no daylight saving), as a team's server in
its own time zone would, so any confusion between naive and aware times shows up.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

psycopg = pytest.importorskip(  # ImportError too: psycopg present but without a libpq to use
    "psycopg", reason="psycopg is not installed (pip install 'kdreg[postgres]')", exc_type=ImportError
)

from alembic.autogenerate import compare_metadata  # noqa: E402
from alembic.migration import MigrationContext  # noqa: E402
from pg_server import SERVER_TIME_ZONE, USER, Cluster  # noqa: E402
from sqlalchemy import inspect, text  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from kdreg.cli.main import app  # noqa: E402
from kdreg.errors import SchemaError, StoreError  # noqa: E402
from kdreg.identity import setup_hash  # noqa: E402
from kdreg.store.engine import make_engine  # noqa: E402
from kdreg.store.migrate import SCHEMA_HEAD, VERSION_TABLE, current_revision, upgrade  # noqa: E402
from kdreg.store.schema import Base, Curve, Grid, GridRun, Result, Run  # noqa: E402
from kdreg.store.store import ResultRecord, RunRecord, Store, open_store  # noqa: E402


@pytest.fixture
def new_database(cluster: Cluster, request: pytest.FixtureRequest) -> Callable[[], str]:
    """A fresh, empty database named after the test; returns its URL."""
    counter = iter(range(100))

    def make() -> str:
        return cluster.create_database(f"{request.node.name[:40].lower()}_{next(counter)}")

    return make


def schema_differences(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return list(compare_metadata(context, Base.metadata))


def record(config_hash: str = "ab" * 32, **changes: object) -> RunRecord:
    values: dict[str, object] = {
        "config_hash": config_hash,
        "config": {"teacher": "mbert", "seed": 0, "loss": {"name": "kl", "temperature": 4.0}},
        "teacher": "mbert", "teacher_spec": "mbert",
        "benchmark": "xnli", "benchmark_spec": "xnli:max_train_examples=100",
        "stage": "finetune", "seed": 0,
        "student": "layers", "student_spec": "layers:layers=3",
        "loss": "kl", "loss_spec": "kl:temperature=4",
    }
    values.update(changes)
    return RunRecord(**values)  # type: ignore[arg-type]


def result(language: str, value: float, *, split: str = "test", metric: str = "accuracy") -> ResultRecord:
    return ResultRecord(language=language, lang=language[:2], split=split, metric=metric, value=value,
                        is_source=language == "en")


def old_columns(run: RunRecord) -> dict[str, object]:
    """A record's columns as a kdreg before schema 0005 wrote them (no setup)."""
    return {k: v for k, v in run.__dict__.items() if k != "setup_hash"}


def cli(*args: str) -> tuple[int, str, str]:
    done = CliRunner().invoke(app, list(args))
    return done.exit_code, done.stdout, done.stderr


# ----------------------------------------------------------------------------- schema
def test_fresh_database_is_created_at_head_exactly_as_the_models(new_database: Callable[[], str]) -> None:
    url = new_database()
    store = open_store(url)
    try:
        assert store.revision == SCHEMA_HEAD and current_revision(store.engine) == SCHEMA_HEAD
        with store.engine.connect() as conn:
            inspector = inspect(conn)
            tables = set(inspector.get_table_names())
            assert tables == {*Base.metadata.tables, VERSION_TABLE}  # no foreign alembic_version
            assert inspector.get_view_names() == ["results_flat"]
            columns = {c["name"]: c for c in inspector.get_columns("runs")}
            assert str(columns["created_at"]["type"]) == "TIMESTAMP"
            assert columns["created_at"]["type"].timezone is True
            assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all() == [(SCHEMA_HEAD,)]
        assert schema_differences(store) == []
    finally:
        store.close()
    again = open_store(url)  # at head: used as it is
    assert again.revision == SCHEMA_HEAD
    again.close()


def test_sessions_run_in_utc_whatever_the_server_zone(
    cluster: Cluster, new_database: Callable[[], str]
) -> None:
    url = new_database()
    with psycopg.connect(host="127.0.0.1", port=cluster.port, user=USER, dbname="postgres") as raw:
        assert raw.execute("SHOW TimeZone").fetchone() == (SERVER_TIME_ZONE,)
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"
        run_id, _ = store.plan_run(None, record())
        created = store.find_run(run_id).created_at
        assert created.utcoffset() == timedelta(0)
        assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=1)
    finally:
        store.close()


# ----------------------------------------------------------------------------- write path
def test_write_path_round_trips(new_database: Callable[[], str]) -> None:
    store = open_store(new_database())
    try:
        grid = store.create_grid("kdreg run --teacher mbert", {"teachers": ["mbert"], "lr": 2e-5})
        run_id, status = store.plan_run(grid, record())
        assert status == "pending"
        assert store.plan_run(grid, record()) == (run_id, "pending")  # same hash: same run, one link
        other, _ = store.plan_run(grid, record("cd" * 32, seed=1))
        store.start_run(run_id, {"kdreg": "0.1.0", "torch": "2.13"})
        store.heartbeat(run_id)
        store.record_results(
            run_id, [result("en", 0.81), result("de", 0.71), result("de", 0.69, split="validation")]
        )
        store.record_results(run_id, [result("de", 0.72)])  # replaces the same key only
        losses = [2.5, 1.23456789, float("nan"), float("inf"), -float("inf")]
        store.record_curve(run_id, "finetune", [0, 1, 2, 3, 4], losses)
        store.finish_run(run_id, "succeeded")

        run = store.find_run(run_id)
        assert store.find_run(("ab" * 32)[:8]).id == run_id
        assert (run.status, run.teacher, run.student_spec, run.stage, run.seed) == (
            "succeeded", "mbert", "layers:layers=3", "finetune", 0)
        assert run.config == {"teacher": "mbert", "seed": 0, "loss": {"name": "kl", "temperature": 4.0}}
        assert run.environment == {"kdreg": "0.1.0", "torch": "2.13"}
        assert run.started_at <= run.heartbeat_at == run.finished_at
        assert run.duration_s == pytest.approx((run.finished_at - run.started_at).total_seconds(), abs=1e-3)
        values = {(r.language, r.split, r.metric): (r.value, r.is_source) for r in run.results}
        assert values == {("en", "test", "accuracy"): (0.81, True), ("de", "test", "accuracy"): (0.72, False),
                          ("de", "validation", "accuracy"): (0.69, False)}
        (curve,) = run.curves
        assert curve.steps == [0, 1, 2, 3, 4]
        assert curve.losses[:2] == [2.5, 1.234568] and math.isnan(curve.losses[2])
        assert curve.losses[3:] == [math.inf, -math.inf]

        with store.engine.connect() as conn:
            raw = conn.execute(text("SELECT losses::text FROM curves")).scalar()
            flat = conn.execute(text(
                "SELECT run_id, teacher, stage, seed, status, language, lang, split, metric, value, "
                "is_source FROM results_flat ORDER BY split, language")).all()
            links = conn.execute(text("SELECT grid_id, run_id FROM grid_runs ORDER BY run_id")).all()
        json.loads(raw, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))
        assert flat == [
            (run_id, "mbert", "finetune", 0, "succeeded", "de", "de", "test", "accuracy", 0.72, False),
            (run_id, "mbert", "finetune", 0, "succeeded", "en", "en", "test", "accuracy", 0.81, True),
            (run_id, "mbert", "finetune", 0, "succeeded", "de", "de", "validation", "accuracy", 0.69, False),
        ]
        assert links == [(grid, run_id), (grid, other)]
    finally:
        store.close()


def test_failed_writes_roll_back_and_deletes_cascade(new_database: Callable[[], str]) -> None:
    store = open_store(new_database())
    try:
        keep, _ = store.plan_run(None, record("11" * 32))
        drop, _ = store.plan_run(store.create_grid("kdreg run"), record("22" * 32, seed=2))
        store.record_results(keep, [result("en", 0.5)])
        with pytest.raises(StoreError, match=r"Database error on postgresql.*duplicate key value"):
            store.record_results(keep, [result("en", 0.9), result("en", 0.8)])  # one key twice in one call
        assert [r.value for r in store.find_run(keep).results] == [0.5]  # the delete was rolled back too
        with pytest.raises(StoreError, match=r"result's metric is 51 characters .* at most 50"):
            store.record_results(keep, [result("de", 0.4, metric="m" * 51)])
        with pytest.raises(StoreError, match=r"run's stage is 21 characters"):
            store.plan_run(None, record("33" * 32, stage="s" * 21))

        for run_id in (keep, drop):
            store.record_results(run_id, [result("de", 0.4)])
            store.record_curve(run_id, "finetune", [0], [1.0])
        with store.engine.begin() as conn:  # the database's own ON DELETE CASCADE does the work
            conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": drop})
        with store.session() as s:
            assert s.query(Result).filter_by(run_id=drop).count() == 0
            assert s.query(Curve).filter_by(run_id=drop).count() == 0
            assert s.query(GridRun).count() == 0 and s.query(Grid).count() == 1
            assert s.query(Result).filter_by(run_id=keep).count() == 2
            assert s.query(Run).count() == 1
    finally:
        store.close()


# ----------------------------------------------------------------------------- CLI
def test_cli_db_current_and_query_by_url(new_database: Callable[[], str]) -> None:
    url = new_database()
    code, out, err = cli("db", "current", "--db", url)
    assert code == 0, err
    assert out.strip() == f"{url}: revision - (head {SCHEMA_HEAD}, not created yet)"

    store = open_store(url)
    try:
        for seed, (en, de, fr) in enumerate([(0.80, 0.70, 0.60), (0.90, 0.74, 0.66)]):
            run_id, _ = store.plan_run(None, record(f"{seed:02d}" * 32, seed=seed))
            store.start_run(run_id, {})
            store.record_results(run_id, [result("en", en), result("de", de), result("fr", fr)])
            store.finish_run(run_id, "succeeded")
        created = store.find_run(run_id).created_at
    finally:
        store.close()

    code, out, err = cli("db", "current", "--db", url, "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "database": url, "revision": SCHEMA_HEAD, "head": SCHEMA_HEAD, "state": "up to date"
    }

    code, out, err = cli("query", "--db", url, "--lang", "de", "--sort", "zero_shot", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["seed"], r["source"], r["de"]) for r in rows] == [(1, 0.90, 0.74), (0, 0.80, 0.70)]
    assert [r["zero_shot"] for r in rows] == pytest.approx([0.70, 0.65])

    # --since/--until are UTC; the server's own zone (UTC+05:30) must not shift them.
    minute = timedelta(minutes=1)
    utc = created.astimezone(timezone.utc).replace(tzinfo=None)
    for since, seeds in ((utc - minute, [1]), (utc + minute, [])):
        code, out, err = cli("query", "--db", url, "--seed", "1",
                             "--since", since.isoformat(timespec="seconds"), "--format", "json")
        assert code == 0, err
        assert [r["seed"] for r in json.loads(out or "[]")] == seeds, (since, out, err)


def test_read_commands_never_create_the_schema_and_read_in_read_only_sessions(
    new_database: Callable[[], str]
) -> None:
    """Read commands on an empty database say so (and leave it empty); their sessions cannot write."""
    url = new_database()
    for command in (("query",), ("show", "1"), ("report",), ("export",)):
        code, _, err = cli(*command, "--db", url)
        assert code == 1 and "holds no kdreg data yet" in err and err.count("\n") == 1, (command, err)
    engine = make_engine(url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()

    open_store(url).close()  # kdreg's tables, created by a write command
    from kdreg.store.reading import open_reader

    reader = open_reader(url)
    try:
        with reader.engine.connect() as conn:
            with pytest.raises(Exception, match="read-only transaction"):
                conn.execute(text("DELETE FROM runs"))
    finally:
        reader.close()


# ----------------------------------------------------------------------------- old revisions
def test_database_at_0001_is_refused_then_upgraded_with_its_rows(new_database: Callable[[], str]) -> None:
    url = new_database()
    engine = make_engine(url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:  # rows as kdreg 0001 wrote them (ids from the sequences)
            now = datetime.now(timezone.utc)
            grid = {"created_at": now, "command": "kdreg run", "config": {"seeds": [0]}}
            grid_id = conn.execute(Grid.__table__.insert().returning(Grid.__table__.c.id), grid).scalar()
            run = {**old_columns(record()), "status": "succeeded", "created_at": now}
            run_id = conn.execute(Run.__table__.insert().returning(Run.__table__.c.id), run).scalar()
            assert (grid_id, run_id) == (1, 1)
            conn.execute(GridRun.__table__.insert(), [{"grid_id": grid_id, "run_id": run_id}])
            conn.execute(Result.__table__.insert(), [
                {"run_id": run_id, "language": lang, "lang": lang, "split": "test", "metric": "accuracy",
                 "value": value, "is_source": lang == "en"} for lang, value in (("en", 0.8), ("de", 0.7))])
            conn.execute(Curve.__table__.insert(), [
                {"run_id": run_id, "phase": "finetune", "steps": [0, 1], "losses": [2.0, 1.0]}])
        assert current_revision(engine) == "0001"
    finally:
        engine.dispose()

    with pytest.raises(SchemaError) as refused:
        open_store(url)
    command = f"kdreg db upgrade --db {shlex.quote(url)}"
    assert f"is at schema revision 0001, behind {SCHEMA_HEAD}" in str(refused.value)
    assert f"`{command}`" in str(refused.value)
    engine = make_engine(url)
    try:
        assert current_revision(engine) == "0001"  # nothing was written
        with engine.connect() as conn:
            assert inspect(conn).get_view_names() == []
    finally:
        engine.dispose()

    code, out, err = cli(*shlex.split(command)[1:])
    assert code == 0, err
    assert out.strip() == f"{url}: 0001 → {SCHEMA_HEAD}"

    store = open_store(url)
    try:
        assert store.revision == SCHEMA_HEAD
        assert schema_differences(store) == []
        run = store.find_run(1)
        assert sorted((r.language, r.value) for r in run.results) == [("de", 0.7), ("en", 0.8)]
        assert run.curves[0].losses == [2.0, 1.0]
        assert run.setup_hash == setup_hash(record().config)  # filled by migration 0005
        with store.engine.connect() as conn:
            flat = text("SELECT language, value, is_source FROM results_flat ORDER BY language")
            assert conn.execute(flat).all() == [("de", 0.7, False), ("en", 0.8, True)]
        run_id, status = store.plan_run(None, record("99" * 32))  # and it takes new runs
        assert (run_id, status) == (2, "pending")  # the id sequence survived the upgrade
    finally:
        store.close()


FIXTURE_0004 = Path(__file__).resolve().parent.parent / "fixtures" / "kdreg-0004.db"
FIXTURE_TABLES = ("grids", "runs", "grid_runs", "results", "curves", "tasks")  # parents first


def fixture_rows(table: str) -> list[dict[str, object]]:
    """The rows of a table of the SQLite fixture, as values for the same table on PostgreSQL."""
    import sqlite3

    from sqlalchemy import JSON, Boolean, DateTime

    types = {c.name: getattr(c.type, "impl", c.type) for c in Base.metadata.tables[table].columns}
    db = sqlite3.connect(FIXTURE_0004)
    db.row_factory = sqlite3.Row
    try:
        rows = [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        db.close()
    for row in rows:
        for name, value in row.items():
            if value is None:
                continue
            if isinstance(types[name], JSON):
                row[name] = json.loads(value)
            elif isinstance(types[name], Boolean):
                row[name] = bool(value)
            elif isinstance(types[name], DateTime):
                row[name] = datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    return rows


def test_database_at_0004_is_upgraded_keeping_every_row_and_filling_the_setups(
    new_database: Callable[[], str],
) -> None:
    """The checked-in 0004 study, loaded into a PostgreSQL database at 0004, upgraded by the CLI."""
    url = new_database()
    engine = make_engine(url)
    rows = {table: fixture_rows(table) for table in FIXTURE_TABLES}
    try:
        upgrade(engine, "0004")
        with engine.begin() as conn:
            for table in FIXTURE_TABLES:
                conn.execute(Base.metadata.tables[table].insert(), rows[table])
            for table in ("grids", "runs", "results", "curves", "tasks"):  # ids were given: move sequences on
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
        assert current_revision(engine) == "0004"
    finally:
        engine.dispose()

    code, out, err = cli("db", "upgrade", "--db", url)
    assert code == 0, err
    assert out.strip() == f"{url}: 0004 → {SCHEMA_HEAD}"

    store = open_store(url)
    try:
        assert schema_differences(store) == []
        with store.engine.connect() as conn:
            for table in FIXTURE_TABLES:
                columns = list(rows[table][0])
                table_clause = Base.metadata.tables[table]
                stored = [dict(r) for r in conn.execute(
                    table_clause.select().with_only_columns(*(table_clause.c[c] for c in columns))
                    .order_by(*(table_clause.c[c] for c in columns[:2]))).mappings()]
                assert stored == rows[table], table
            hashes = dict(conn.execute(text("SELECT id, setup_hash FROM runs")).all())
            assert conn.execute(text("SELECT count(*) FROM results_flat")).scalar() == len(rows["results"])
        assert hashes == {row["id"]: setup_hash(row["config"]) for row in rows["runs"]}
        assert hashes[2] == hashes[3] != hashes[4] == hashes[5]
        run_id, _ = store.plan_run(None, record("98" * 32))
        assert run_id == len(rows["runs"]) + 1
    finally:
        store.close()


# ----------------------------------------------------------------------------- concurrency
WORKER = """
import json, os, sys, time
from kdreg.store.store import RunRecord, Store

url, ready, go = sys.argv[1], sys.argv[2], sys.argv[3]
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("barrier timed out")
    time.sleep(0.001)
store = Store(url)
grid = store.create_grid("worker")
record = RunRecord(config_hash="f" * 64, config={"x": 1}, teacher="t", teacher_spec="t",
                   benchmark="b", benchmark_spec="b", stage="none", seed=0)
run_id, status = store.plan_run(grid, record)
print(json.dumps({"revision": store.revision, "run": run_id}))
"""


def test_processes_on_other_machines_create_one_database_at_once(
    cluster: Cluster, new_database: Callable[[], str], tmp_path: Path
) -> None:
    """Each worker has its own KDREG_HOME (as on separate machines) and one reaches the server
    through its Unix socket: a lock file keyed by the URL would serialise none of them."""
    url = new_database()
    database = url.rsplit("/", 1)[1]
    urls = [url, url, cluster.socket_url(database)]
    go = tmp_path / "go"
    workers = []
    for i, worker_url in enumerate(urls):
        env = {**os.environ, "KDREG_HOME": str(tmp_path / f"home-{i}")}
        ready = tmp_path / f"ready-{i}"
        proc = subprocess.Popen([sys.executable, "-c", WORKER, worker_url, str(ready), str(go)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        workers.append((ready, proc))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in workers):  # every worker has imported kdreg
        assert time.monotonic() < deadline, "workers did not start"
        assert all(proc.poll() is None for _, proc in workers), [p.communicate() for _, p in workers]
        time.sleep(0.01)
    go.touch()  # the barrier opens: all of them race to create the schema
    outputs = []
    for _, proc in workers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        outputs.append(json.loads(out))
    assert {o["revision"] for o in outputs} == {SCHEMA_HEAD}
    assert len({o["run"] for o in outputs}) == 1

    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all() == [(SCHEMA_HEAD,)]
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM grids")).scalar() == len(urls)
            assert conn.execute(text("SELECT count(*) FROM grid_runs")).scalar() == len(urls)
    finally:
        store.close()


def test_report_has_one_row_per_setup_labelled_by_what_differs(new_database: Callable[[], str]) -> None:
    """Grouping by setup and reading the configs that label them work on PostgreSQL too."""
    from kdreg.reporting.report import build_report
    from kdreg.store.filters import build_filters
    from kdreg.store.reading import open_reader

    url = new_database()
    store = open_store(url)
    try:
        for seed, lr in ((0, 1e-4), (1, 1e-4), (2, 5e-4)):
            config = {"seed": seed, "hparams": {"finetune": {"learning_rate": lr}}}
            run_id, _ = store.plan_run(None, record(f"{seed:02d}" * 32, seed=seed, config=config))
            store.start_run(run_id, {})
            store.complete_run(run_id, [result("en", 0.9), result("de", 0.5 + seed / 10)], {})
    finally:
        store.close()
    reader = open_reader(url)
    try:
        (table,) = build_report(reader, build_filters(status="succeeded"))
    finally:
        reader.close()
    assert table.label_columns[-1] == "setup"
    assert [(row.label[-1], row.runs, row.seeds) for row in table.rows] == [
        ("finetune.learning_rate=0.0001", 2, 2), ("finetune.learning_rate=0.0005", 1, 1)]
    assert table.rows[0].cells[1].mean == pytest.approx(55.0) and table.notes == ()
