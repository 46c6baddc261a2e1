"""`kdreg status`: a grid in progress seen from another process, without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tiny_world import GRID, invoke, rows

PROBE = """
import json, sys
from kdreg.cli.main import main

report, argv = sys.argv[1], sys.argv[2:]
try:
    main(argv)
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "transformers", "datasets"})
with open(report, "w") as fh:
    json.dump({"code": code, "heavy": heavy}, fh)
"""


def _status(tmp_path: Path, *argv: str) -> tuple[dict[str, object], str]:
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(report), "status", *argv],
                          capture_output=True, text=True, timeout=120)
    assert report.exists(), done.stderr
    return json.loads(report.read_text()), done.stdout


def test_status_of_a_grid_another_process_is_running(world: dict[str, str], kdreg_home: Path,
                                                     tmp_path: Path) -> None:
    slow = tmp_path / "slow.toml"
    slow.write_text(GRID.replace("[finetune]\nmax_steps = 6", "[finetune]\nmax_steps = 100000"))
    db = kdreg_home / "kdreg.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kdreg", "run", "--teacher", world["teacher"], "--student", "layers:k=1",
         "--benchmark", world["benchmark"], "--stage", "teacher,none", "--config", str(slow)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if rows(db, "SELECT COUNT(*) FROM runs WHERE stage = 'none' AND status = 'running'")[0][0]:
                    break
            except Exception:  # the database is being created
                pass
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        report, _ = _status(tmp_path, "--json")
        assert report["code"] == 0 and report["heavy"] == []
        data = json.loads(_status(tmp_path, "--json")[1])
        assert data["runs"] == {"succeeded": 1, "running": 1} and data["models"] == {"built": 1, "total": 1}
        [running] = data["running"]
        assert running["kind"] == "run" and running["pid"] == proc.pid and running["stale"] is False
        assert "stage none" in running["label"] and running["seconds"] >= 0
        table = _status(tmp_path)[1]
        assert "1 succeeded" in table and "1 running" in table and f"pid {proc.pid}" in table
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 143  # SIGTERM: the run is marked interrupted, nothing left running
    assert rows(db, "SELECT status, error FROM runs WHERE stage = 'none'") == [
        ("interrupted", "Interrupted (SIGTERM)")]


def test_status_without_a_grid_or_database_says_what_to_do(kdreg_home: Path) -> None:
    missing = invoke("status")
    assert missing.exit_code == 1 and "kdreg run" in missing.output
    from kdreg.store.store import Store

    Store().close()
    empty = invoke("status")
    assert empty.exit_code == 1 and "no grid yet" in empty.output
    assert invoke("status", "7").exit_code == 1
