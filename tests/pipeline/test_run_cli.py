"""`kdreg run` end to end on a tiny saved teacher, a tiny benchmark and corpus written to disk.

Everything is real: the built-in `hf` teacher loads by path through from_pretrained, the
students are built from it, the `files` benchmark and `text` corpus read the files the
test writes (tiny_world.py, fixture `world` in conftest.py), training steps run, and every
result lands in an SQLite file.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_world import GRID, LANGUAGES
from tiny_world import invoke as _invoke
from tiny_world import rows as _rows

from kdreg.pipeline import model_cache


def test_every_stage_end_to_end(world: dict[str, str], kdreg_home: Path) -> None:
    result = _invoke("run", "--teacher", world["teacher"], "--student", "layers:k=1", "--loss", "kl",
                     "--benchmark", world["benchmark"], "--corpus", world["corpus"],
                     "--stage", "none,finetune,pretrain,both", "--seed", "0", "--config", world["grid"])
    assert result.exit_code == 0, result.output
    db = kdreg_home / "kdreg.db"
    runs = dict(_rows(db, "SELECT stage, status FROM runs"))
    assert runs == {"teacher": "succeeded", "none": "succeeded", "finetune": "succeeded",
                    "pretrain": "succeeded", "both": "succeeded"}
    # every language × evaluation split × metric, the source flagged
    per_run = _rows(db, "SELECT run_id, COUNT(*), SUM(is_source) FROM results "
                        "WHERE split NOT IN ('model', 'chance') GROUP BY run_id")
    assert len(per_run) == 5 and all(count == 3 * 2 * 2 and source == 4 for _, count, source in per_run)
    # and the size of the model each run evaluated: the teacher's row gives the teacher's
    sizes = dict(_rows(db, "SELECT r.stage, v.value FROM results v JOIN runs r ON r.id = v.run_id "
                           "WHERE v.split = 'model' AND v.metric = 'parameters' AND v.is_source"))
    assert set(sizes) == set(runs) and all(n == int(n) > 0 for n in sizes.values())
    assert sizes["teacher"] > sizes["none"] == sizes["finetune"]  # a 1-layer student of a 2-layer teacher
    langs = {row[0] for row in _rows(db, "SELECT DISTINCT lang FROM results")}
    assert langs == set(LANGUAGES)
    values = [v for (v,) in _rows(db, "SELECT value FROM results WHERE split NOT IN ('model', 'chance')")]
    assert all(0.0 <= v <= 1.0 for v in values)
    phases = set(_rows(db, "SELECT r.stage, c.phase FROM curves c JOIN runs r ON r.id = c.run_id"))
    assert {("teacher", "teacher_finetune"), ("none", "finetune"), ("finetune", "finetune_kd"),
            ("pretrain", "pretrain_kd"), ("pretrain", "finetune"), ("both", "finetune_kd")} <= phases
    # the fine-tuned teacher was trained once and the distilled student is shared by pretrain and both
    cached = sorted(p.name.split("-")[0] for p in model_cache.models_dir().iterdir() if p.is_dir())
    assert cached == ["student", "teacher"]
    assert result.output.count("fine-tuning teacher") == 1
    env = _rows(db, "SELECT environment FROM runs WHERE stage = 'both'")[0][0]
    assert '"torch"' in env and '"distribution": "kdreg"' in env
    # the summary table of this grid, as `kdreg report --grid 1` shows it, and the claims' verdicts under it
    assert "grid 1 (`kdreg report --grid 1` shows it again)" in result.output
    assert "accuracy on test ×100" in result.output
    claims = " ".join(result.output[result.output.index("Claims of the seed study"):].split())
    assert "1. KD in pretraining beats KD in fine-tuning on zero-shot targets: INCONCLUSIVE" in claims
    assert "2. KD in fine-tuning may hurt zero-shot transfer (vs. no KD): INCONCLUSIVE" in claims
    assert "one seed: an interval needs more seeds (kdreg run --seed 0,1,2)" in claims
    assert "3. A larger teacher distils a better student (source and targets): INCONCLUSIVE" in claims
    assert "needs distilled students of two teachers of different sizes" in claims


def test_failing_combination_is_stored_and_retried_only_on_request(world: dict[str, str],
                                                                   kdreg_home: Path) -> None:
    args = ["run", "--teacher", world["teacher"], "--student", "layers:k=1",
            "--student", "small:layers=1,hidden=16,heads=2,intermediate=32", "--loss", "kl,mse,cosine",
            "--benchmark", world["benchmark"], "--stage", "none,finetune", "--config", world["grid"]]
    first = _invoke(*args)
    db = kdreg_home / "kdreg.db"
    statuses = _rows(db, "SELECT student_spec, loss, status, error, traceback FROM runs ORDER BY id")
    assert len(statuses) == 9
    failed = [row for row in statuses if row[2] == "failed"]
    assert [(s, loss) for s, loss, *_ in failed] == [
        ("small:heads=2,hidden=16,intermediate=32,layers=1", "cosine")]
    assert "IncompatiblePluginsError" in failed[0][3] and "Traceback" in failed[0][4]
    assert sum(row[2] == "succeeded" for row in statuses) == 8
    assert first.exit_code == 1  # the grid went on, but says that something failed
    # one fine-tuned teacher served both students and all three losses
    assert first.output.count("fine-tuning teacher") == 1
    assert [p.name.split("-")[0] for p in model_cache.models_dir().iterdir() if p.is_dir()] == ["teacher"]

    again = _invoke(*args)
    assert "0 to run" in again.output
    assert _rows(db, "SELECT COUNT(*) FROM runs")[0][0] == 9

    retry = _invoke(*args, "--retry-failed")
    assert "1 to run" in retry.output
    started = _rows(db, "SELECT COUNT(*) FROM runs WHERE started_at IS NOT NULL")[0][0]
    assert started == 9
    dry = _invoke(*args, "--dry-run")
    assert dry.exit_code == 0 and "8 skipped" not in dry.output and "0 to run, 9 skipped" in dry.output


def test_same_config_gives_the_same_numbers(world: dict[str, str], kdreg_home: Path) -> None:
    args = ["run", "--teacher", world["teacher"], "--student", "layers:k=1", "--loss", "kl",
            "--benchmark", world["benchmark"], "--stage", "finetune", "--config", world["grid"]]
    assert _invoke(*args).exit_code == 0
    db = kdreg_home / "kdreg.db"
    first = _rows(db, "SELECT run_id, language, split, metric, value FROM results ORDER BY 1, 2, 3, 4")
    first_curves = _rows(db, "SELECT run_id, phase, steps, losses FROM curves ORDER BY 1, 2")
    model_cache.clear()  # the teacher is fine-tuned again from scratch, too
    assert _invoke(*args, "--force").exit_code == 0
    second = _rows(db, "SELECT run_id, language, split, metric, value FROM results ORDER BY 1, 2, 3, 4")
    assert first == second
    # the training curves too (the tiny benchmark's accuracies alone would hide most differences)
    assert _rows(db, "SELECT run_id, phase, steps, losses FROM curves ORDER BY 1, 2") == first_curves
    assert [phase for _, phase, _, _ in first_curves] == ["teacher_finetune", "finetune_kd"]


def test_numbers_do_not_depend_on_which_models_were_cached(world: dict[str, str], kdreg_home: Path) -> None:
    """A KD run that fine-tunes the teacher itself gives the numbers of one that found it cached."""
    args = ["run", "--teacher", world["teacher"], "--student", "layers:k=1", "--loss", "kl",
            "--benchmark", world["benchmark"], "--config", world["grid"]]
    # the loss curve shows any difference in initialisation, dropout or batch order; the tiny
    # benchmark's accuracies alone would hide most of them
    query = ("SELECT c.phase, c.steps, c.losses FROM curves c JOIN runs u ON u.id = c.run_id "
             "WHERE u.stage = 'finetune' UNION ALL "
             "SELECT language || split || metric, value, '' FROM results r JOIN runs u ON u.id = r.run_id "
             "WHERE u.stage = 'finetune' ORDER BY 1")
    # 1: the teacher row fine-tunes the teacher; the finetune run finds it cached
    first_db = kdreg_home / "first.db"
    assert _invoke(*args, "--stage", "finetune", "--db", str(first_db)).exit_code == 0
    # 2: the teacher row succeeded before, the cache was cleared since: the finetune run trains the teacher
    second_db = kdreg_home / "second.db"
    assert _invoke(*args, "--stage", "teacher,none", "--db", str(second_db)).exit_code == 0
    model_cache.clear()
    second = _invoke(*args, "--stage", "finetune", "--db", str(second_db))
    assert second.exit_code == 0 and "1 to run" in second.output
    assert second.output.count("fine-tuning teacher") == 1
    # a curve, 12 scores and the student's parameter count
    assert _rows(first_db, query) == _rows(second_db, query) and len(_rows(first_db, query)) == 1 + 12 + 1


def test_several_seeds_end_in_a_table_of_means_that_fits_the_terminal(
        world: dict[str, str], kdreg_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two seeds: one row per configuration with mean ± std and n = 2, every line within 80 columns."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich's switch: stdout counts as a terminal
    monkeypatch.setenv("COLUMNS", "80")
    result = _invoke("run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
                     world["benchmark"], "--stage", "teacher,none", "--seed", "0,1",
                     "--config", world["grid"])
    assert result.exit_code == 0, result.output
    table = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout[result.stdout.index("grid 1 ("):])  # bold: best
    assert max(len(line) for line in table.splitlines()) <= 80, table
    rows = [line for line in table.splitlines() if re.match(r"(teacher|none)\s", line) and "±" in line]
    assert len(rows) == 2 and all(re.search(r"\s2\s+\d+\.\d ± \d+\.\d", line) for line in rows), table
    assert "*" not in rows[0]  # the teacher's row: the reference, never "best"


def test_dry_run_writes_nothing(world: dict[str, str], kdreg_home: Path) -> None:
    result = _invoke("run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
                     world["benchmark"], "--corpus", world["corpus"], "--config", world["grid"], "--dry-run")
    assert result.exit_code == 0, result.output
    assert "new" in result.output and "5 to run" in result.output
    assert not (kdreg_home / "kdreg.db").exists()


def test_offline_hub_model_is_one_line_and_writes_nothing(world: dict[str, str], kdreg_home: Path,
                                                          tmp_path: Path, kdreg_cli) -> None:  # type: ignore[no-untyped-def]
    proc = kdreg_cli("run", "--teacher", "mbert", "--benchmark", world["benchmark"], "--stage", "none",
                     env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "hf:path=" in lines[0], proc.stderr
    assert not (kdreg_home / "kdreg.db").exists()


@pytest.mark.parametrize(("signum", "code", "how"), [
    (signal.SIGINT, 130, "Ctrl-C"),  # the shell convention: 128 + the signal's number
    (signal.SIGHUP, 129, "SIGHUP"),  # a closed terminal; SIGTERM is in tests/execution/test_status.py
])
def test_an_interrupt_marks_the_run_interrupted_and_keeps_what_was_stored(
        world: dict[str, str], kdreg_home: Path, tmp_path: Path, signum: int, code: int, how: str) -> None:
    slow = tmp_path / "slow.toml"
    slow.write_text(GRID.replace("[finetune]\nmax_steps = 6", "[finetune]\nmax_steps = 100000"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kdreg", "run", "--teacher", world["teacher"], "--student", "layers:k=1",
         "--benchmark", world["benchmark"], "--stage", "teacher,none", "--config", str(slow)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    db = kdreg_home / "kdreg.db"
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            if _rows(db, "SELECT COUNT(*) FROM runs WHERE stage = 'none' AND status = 'running'")[0][0]:
                break
        except sqlite3.Error:
            continue
    time.sleep(1.0)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "interrupted" in stderr.lower()
    assert dict(_rows(db, "SELECT stage, status FROM runs")) == {"teacher": "succeeded",
                                                                 "none": "interrupted"}
    assert _rows(db, "SELECT error FROM runs WHERE stage = 'none'") == [(f"Interrupted ({how})",)]
    teacher_results = "SELECT COUNT(*) FROM results r JOIN runs u ON u.id = r.run_id WHERE stage = 'teacher'"
    assert _rows(db, teacher_results)[0][0] > 0


def test_sigterm_while_planning_ends_with_the_shells_code_and_writes_nothing(
        world: dict[str, str], kdreg_home: Path) -> None:
    """A signal before the grid is recorded (imports, preflight) ends kdreg as one after it: 143, one line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                       os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import os, signal, kdreg.grid as g\n"
         "def stop(*a, **k): os.kill(os.getpid(), signal.SIGTERM)\n"
         "g.expand_grid = stop\n"  # the signal arrives while the grid is being planned
         "from kdreg.cli.main import main; main()",
         "run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark", world["benchmark"],
         "--stage", "none", "--config", world["grid"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "error: Interrupted." and "Traceback" not in stderr
    assert not (kdreg_home / "kdreg.db").exists()


def test_cache_command_shows_size_and_clears(world: dict[str, str], kdreg_home: Path) -> None:
    ran = _invoke("run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
                  world["benchmark"], "--stage", "finetune", "--config", world["grid"])
    assert ran.exit_code == 0, ran.output
    # the plan's head says which defaults filled the keys the options and the grid file left out
    assert f"defaults: your study (--config {world['grid']}): loss kl, seed 0, every language" in ran.output
    # a plugin's own cache (the synthetic teacher keeps one) lives under the same folder
    from kdreg.paths import cache_dir

    (cache_dir() / "some-plugin" / "abc123").mkdir(parents=True)
    (cache_dir() / "some-plugin" / "abc123" / "weights").write_bytes(b"w" * 100)
    (cache_dir() / "some-plugin" / "abc123" / "kdreg-complete.json").write_text("{}")
    # what is not a finished kdreg model is neither listed nor cleared
    (cache_dir() / "some-plugin" / "half-written").mkdir()
    (cache_dir() / "notes.txt").write_text("mine")
    shown = _invoke("cache", "--json")
    assert shown.exit_code == 0
    import json

    info = json.loads(shown.output)
    assert info["bytes"] > 0
    assert sorted(m["model"].split("-")[0] for m in info["models"]) == ["models/teacher", "some"]
    # what the fine-tuned teacher is, as the pipeline recorded it beside the weights
    teacher = next(m for m in info["models"] if m["kind"] == "teacher")
    assert {k: teacher["about"][k] for k in ("kind", "teacher", "benchmark", "seed")} == {
        "kind": "teacher", "teacher": world["teacher"], "benchmark": world["benchmark"], "seed": 0}
    assert teacher["description"] == f"teacher {world['teacher']} fine-tuned on {world['benchmark']}, seed 0"
    cleared = _invoke("cache", "clear", "--yes")
    assert cleared.exit_code == 0 and "freed" in cleared.output
    assert json.loads(_invoke("cache", "--json").output)["models"] == []
    assert (cache_dir() / "notes.txt").read_text() == "mine"
    assert (cache_dir() / "some-plugin" / "half-written").is_dir()
    assert not (cache_dir() / "models").exists()


def test_a_run_without_a_terminal_prints_progress_lines(world: dict[str, str], kdreg_home: Path,
                                                        tmp_path: Path) -> None:
    grid = tmp_path / "longer.toml"
    grid.write_text(GRID.replace("[finetune]\nmax_steps = 6", "[finetune]\nmax_steps = 300"))
    done = subprocess.run(
        [sys.executable, "-m", "kdreg", "run", "--teacher", world["teacher"], "--student", "layers:k=1",
         "--benchmark", world["benchmark"], "--stage", "none", "--config", str(grid)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "KDREG_PROGRESS_SECONDS": "0.2", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip().startswith("finetune step ")]
    assert len(lines) >= 2 and lines[-1].startswith("finetune step 300/300 · loss ")
    assert all(" steps/s" in line for line in lines) and any("s to go" in line for line in lines[:-1])
    bad = subprocess.run([sys.executable, "-m", "kdreg", "run", "--dry-run"], capture_output=True, text=True,
                         env={**os.environ, "KDREG_PROGRESS_SECONDS": "often"}, timeout=120)
    assert bad.returncode == 1 and "KDREG_PROGRESS_SECONDS='often'" in bad.stderr
