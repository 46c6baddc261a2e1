"""The notebook API: same filters as the CLI, DataFrames (or dicts), no heavy imports."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from kdreg.api import connect
from kdreg.errors import KdregError, StoreError


@pytest.fixture(scope="module")
def db(seeded) -> str:
    return seeded[0].url


def test_runs_as_records_match_the_ground_truth(seeded, db: str) -> None:
    _, runs = seeded
    with connect(db) as experiments:
        found = experiments.runs(lang="deu", teacher=["mbert"], stage="both", frame=False)
    want = {r.id: r for r in runs if r.teacher == "mbert" and r.stage == "both" and r.values}
    assert {row["run"] for row in found} == set(want)
    for row in found:
        assert row["de"] == pytest.approx(want[row["run"]].scores()["de"])


def test_dataframes(seeded, db: str) -> None:
    pd = pytest.importorskip("pandas")
    _, runs = seeded
    with connect(db) as experiments:
        frame = experiments.runs(lang=["de", "fr"], sort="zero_shot", limit=10)
        flat = experiments.results(seed=0, metric="accuracy", split="test")
        groups = experiments.seed_groups(teacher="xlmr", benchmark="xnli", stage="teacher")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 10
    assert list(frame["zero_shot"]) == sorted(frame["zero_shot"], reverse=True)
    assert {"de", "fr", "source", "zero_shot", "teacher"} <= set(frame.columns)
    assert len(flat) == 4 * sum(1 for r in runs if r.seed == 0 and r.values)
    assert flat["value"].dtype.kind == "f"
    (group,) = groups.to_dict("records")
    values = [r.scores()["fr"] for r in runs if r.group == ("xlmr", None, "teacher", None, "xnli", None)]
    assert group["fr_mean"] == pytest.approx(statistics.mean(values))
    assert group["fr_std"] == pytest.approx(statistics.stdev(values), rel=1e-6)
    assert group["fr_n"] == 3


def test_report_and_one_run(db: str) -> None:
    from kdreg.reporting.tables import render

    with connect(db) as experiments:
        tables = experiments.report(teacher="xlmr", student="layers", benchmark="xnli")
        record = experiments.run(1)
    assert [r.label[2] for r in tables[0].rows][:2] == ["teacher", "none"]
    assert "\\toprule" in render(tables, "latex")
    assert record["id"] == 1 and record["summary"]["accuracy/test"]["source_lang"] == "en"
    assert record["curves"][0]["points"] == 20 and len(record["curves"][0]["sparkline"]) == 20


def test_errors_are_kdreg_errors(tmp_path: Path, db: str) -> None:
    with pytest.raises(StoreError, match="No database"):
        connect(str(tmp_path / "missing.db"))
    assert not (tmp_path / "missing.db").exists()
    with connect(db) as experiments, pytest.raises(KdregError, match="filters are: lang"):
        experiments.runs(langs="de")


def test_the_api_imports_no_torch_and_no_pandas_without_frames(db: str) -> None:
    code = (
        "import json, sys\n"
        "from kdreg.api import connect\n"
        f"with connect({db!r}) as e:\n"
        "    n = len(e.runs(lang='de', frame=False)) + len(e.seed_groups(teacher='mbert', frame=False))\n"
        "    e.report(teacher='mbert')\n"
        "print(json.dumps([n, sorted({m.split('.')[0] for m in sys.modules}"
        " & {'torch', 'transformers', 'datasets', 'pandas', 'matplotlib'})]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    n, heavy = json.loads(done.stdout)
    assert n > 0 and heavy == []


def test_without_pandas_frames_fail_cleanly_and_records_still_work(db: str, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with connect(db) as experiments:
        with pytest.raises(KdregError, match=r"pip install 'kdreg\[report\]'"):
            experiments.runs(limit=1)
        assert len(experiments.runs(limit=1, frame=False)) == 1


def test_seed_groups_count_what_report_counts(tmp_path: Path) -> None:
    """A forced re-run in progress keeps its earlier numbers until it ends: neither answer counts it."""
    from typer.testing import CliRunner

    from kdreg.cli.main import app
    from kdreg.store.store import open_store
    from kdreg.testing.store_data import seeded_copy

    runs = seeded_copy(tmp_path / "cache", tmp_path / "runs.db")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    wanted = ("xlmr", "teacher", "xnli", 1)
    rerun = next(r for r in runs if (r.teacher, r.stage, r.benchmark, r.seed) == wanted)
    store = open_store(url, create=False)
    store.start_run(rerun.id, {"python": "3.11"})  # running again; its results stay until it ends
    store.close()
    filters = {"teacher": "xlmr", "stage": "teacher", "benchmark": "xnli"}
    with connect(url) as experiments:
        (group,) = experiments.seed_groups(frame=False, **filters)
        (table,) = experiments.report(**filters)
        (everything,) = experiments.seed_groups(frame=False, status=["succeeded", "running"], **filters)
    assert group["seeds"] == 2 and group["fr_n"] == 2 and everything["fr_n"] == 3
    assert next(cell.n for cell in table.rows[0].cells if cell is not None) == 2
    shown = CliRunner().invoke(app, ["query", "--group-seeds", "--db", url, "--teacher", "xlmr", "--stage",
                                     "teacher", "--benchmark", "xnli", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert [row["runs"] for row in json.loads(shown.stdout)] == [2]
