"""Several processes on one SQLite file: creation is serialised, writers wait instead of failing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from kdreg.store.engine import BUSY_TIMEOUT_MS
from kdreg.store.migrate import SCHEMA_HEAD, VERSION_TABLE
from kdreg.store.store import Store

WORKER = """
import json, sys, time
from pathlib import Path

from kdreg.store.store import RunRecord, Store  # import before the barrier: only the work is timed

url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("barrier timed out")
    time.sleep(0.0005)
store = Store(url)
grid = store.create_grid("worker " + ready.name)
record = RunRecord(config_hash="f" * 64, config={"x": 1}, teacher="t", teacher_spec="t",
                   benchmark="b", benchmark_spec="b", stage="none", seed=0)
run_id, status = store.plan_run(grid, record)
print(json.dumps({"revision": store.revision, "run": run_id, "status": status}))
"""

PROCESSES = 3


def test_processes_creating_one_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    target = tmp_path / "shared" / "runs.db"
    go = tmp_path / "go"
    workers = []
    for i in range(PROCESSES):
        ready = tmp_path / f"ready-{i}"
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, f"sqlite:///{target}", str(ready), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        workers.append((ready, proc))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in workers):  # every process has imported kdreg
        assert time.monotonic() < deadline, "workers did not start"
        assert all(proc.poll() is None for _, proc in workers), [p.communicate() for _, p in workers]
        time.sleep(0.01)
    assert not target.exists()
    go.touch()  # the barrier opens: all of them race to create the database

    outputs = []
    for _, proc in workers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    assert {o["revision"] for o in outputs} == {SCHEMA_HEAD}
    assert len({o["run"] for o in outputs}) == 1  # one run, planned by every process

    db = sqlite3.connect(target)
    try:
        assert db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(SCHEMA_HEAD,)]
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM grids").fetchone() == (PROCESSES,)
        assert db.execute("SELECT count(*) FROM grid_runs").fetchone() == (PROCESSES,)
    finally:
        db.close()


def test_sqlite_connections_get_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "runs.db"))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 20_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert BUSY_TIMEOUT_MS >= 20_000
    store.close()
    raw = sqlite3.connect(tmp_path / "runs.db")  # WAL is a property of the file, kept for every client
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()
