"""Benchmark: `kdreg query` and `kdreg report` on 100,000 runs × 16 languages (1.6 M results).

Why whole processes: what a user waits for is Python start-up, imports, opening and
checking the database and the SQL itself, so each command is timed as a subprocess and
printed with its ratio to a bare ``python -c pass`` measured in the same session (the
baseline absorbs how fast or loaded this machine is today).

The database is created by :func:`kdreg.store.store.open_store` (the real schema and
migrations), then bulk-filled with ``sqlite3`` ``executemany`` — the store API's
one-transaction-per-write path would take minutes for 1.6 M rows and is not what is
being measured.

    python bench/query_report.py                 # build in a temp dir, time, print
    python bench/query_report.py --db big.db     # keep (or reuse) the database
    python bench/query_report.py --runs 20000 --repeat 7

Goals (issue 5): query ≤ 0.5 s, report ≤ 2 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

TEACHERS = ("mbert", "xlmr-base", "xlmr-large", "bert-large")
STUDENTS = ("layers:keep=6", "distilmbert", "small:hidden=256")
LOSSES = ("kl:alpha=1,temperature=1", "kl:alpha=0.5,temperature=4", "mse", "hidden", "attention", "cosine")
CORPORA = ("wikipedia", "cc100")
XNLI_LANGS = ("en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi", "sw", "ur", "ja")
SIB_LANGS = tuple(
    f"{code}_{script}"
    for code, script in (
        ("eng", "Latn"),
        ("fra", "Latn"),
        ("spa", "Latn"),
        ("deu", "Latn"),
        ("ell", "Grek"),
        ("bul", "Cyrl"),
        ("rus", "Cyrl"),
        ("tur", "Latn"),
        ("arb", "Arab"),
        ("vie", "Latn"),
        ("tha", "Thai"),
        ("zho", "Hans"),
        ("hin", "Deva"),
        ("swh", "Latn"),
        ("urd", "Arab"),
        ("jpn", "Jpan"),
    )
)
BENCHMARKS = {"xnli": XNLI_LANGS, "pawsx": XNLI_LANGS, "sib200": SIB_LANGS, "synthetic": XNLI_LANGS}
METRICS = {"xnli": ("accuracy",), "pawsx": ("accuracy",), "sib200": ("accuracy", "macro_f1"),
           "synthetic": ("accuracy",)}
"""As the built-in benchmarks declare them; every benchmark is evaluated on both splits."""
SPLITS = ("validation", "test")


def _configs() -> list[tuple[str, str | None, str, str | None, str | None]]:
    """(teacher, student, stage, loss, corpus) per teacher: the teacher row and each student's stages."""
    out: list[tuple[str, str | None, str, str | None, str | None]] = []
    for teacher in TEACHERS:
        out.append((teacher, None, "teacher", None, None))
        for student in STUDENTS:
            out.append((teacher, student, "none", None, None))
            for loss in LOSSES:
                out.append((teacher, student, "finetune", loss, None))
                for corpus in CORPORA:
                    out.append((teacher, student, "pretrain", loss, corpus))
                    out.append((teacher, student, "both", loss, corpus))
    return out


def build_database(path: Path, runs: int = 100_000, seed: int = 0) -> int:
    """Create ``path`` with the real schema and fill it with ``runs`` runs; returns #results.

    Like a real study's runs, each carries every language of its benchmark × both splits ×
    the benchmark's metrics (32 or 64 results).
    """
    from kdreg.languages import normalize_language
    from kdreg.store.store import open_store

    store = open_store(f"sqlite:///{path}")
    grid_id = store.create_grid("kdreg run (bench)", None)
    store.close()
    rng = random.Random(seed)
    configs = [(b, *c) for b in BENCHMARKS for c in _configs()]
    start = datetime(2025, 1, 1)
    norm = {code: normalize_language(code) for langs in BENCHMARKS.values() for code in langs}
    from kdreg.pipeline.hparams import HParams

    hparams = HParams().as_config()  # real configs carry them: reports read them per run
    run_rows, result_rows, member_rows = [], [], []
    for run_id in range(1, runs + 1):
        benchmark, teacher, student, stage, loss, corpus = configs[(run_id - 1) % len(configs)]
        run_seed = (run_id - 1) // len(configs)
        config = {
            "teacher": teacher,
            "student": student,
            "stage": stage,
            "loss": loss,
            "corpus": corpus,
            "benchmark": benchmark,
            "seed": run_seed,
            "hparams": hparams,
        }
        text = json.dumps(config, sort_keys=True)
        created = (start + timedelta(seconds=300 * run_id)).strftime("%Y-%m-%d %H:%M:%S.%f")
        name = lambda spec: None if spec is None else spec.split(":")[0]  # noqa: E731
        run_rows.append(
            (
                run_id,
                hashlib.sha256(text.encode()).hexdigest(),
                text,
                teacher,
                teacher,
                name(student),
                student,
                name(loss),
                loss,
                benchmark,
                benchmark,
                name(corpus),
                corpus,
                stage,
                run_seed,
                "succeeded",
                created,
                created,
                created,
                60.0,
            )
        )
        member_rows.append((grid_id, run_id))
        base = 0.55 + 0.3 * rng.random()
        for i, language in enumerate(BENCHMARKS[benchmark]):
            for split in SPLITS:
                for metric in METRICS[benchmark]:
                    value = max(0.0, min(1.0, base - 0.01 * i + rng.gauss(0, 0.02)))
                    result_rows.append(
                        (run_id, language, norm[language], split, metric, round(value, 6), i == 0)
                    )
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO runs (id, config_hash, config, teacher, teacher_spec, student, student_spec, "
                "loss, loss_spec, benchmark, benchmark_spec, corpus, corpus_spec, stage, seed, status, "
                "created_at, started_at, finished_at, duration_s) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                run_rows,
            )
            conn.executemany("INSERT INTO grid_runs (grid_id, run_id) VALUES (?, ?)", member_rows)
            conn.executemany(
                "INSERT INTO results (run_id, language, lang, split, metric, value, is_source) "
                "VALUES (?,?,?,?,?,?,?)",
                result_rows,
            )
        # No ANALYZE: the planner sees what it sees in a user's store, which kdreg never analyses.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return len(result_rows)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(argv: list[str], repeat: int, env: dict[str, str]) -> tuple[float, float, str]:
    """Median wall and CPU seconds of ``argv`` over ``repeat`` runs (after one warm-up), and its stdout.

    CPU time (user + system of the child) is printed beside wall time because it hardly
    moves when other processes load the machine, while wall time does.
    """
    subprocess.run(argv, capture_output=True, env=env, check=False)
    walls, cpus, out = [], [], ""
    for _ in range(repeat):
        cpu0, t0 = _children_cpu(), time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        walls.append(time.perf_counter() - t0)
        cpus.append(_children_cpu() - cpu0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
        out = proc.stdout
    return statistics.median(walls), statistics.median(cpus), out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="database file to build (or reuse when it exists)")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kdreg-bench-") as tmp:
        path = args.db or Path(tmp) / "bench.db"
        if not path.exists():
            t0 = time.perf_counter()
            n = build_database(path, args.runs)
            print(f"built {path}: {args.runs:,} runs, {n:,} results in {time.perf_counter() - t0:.1f} s")
        else:
            print(f"reusing {path}")
        env = {**os.environ, "KDREG_HOME": tmp, "KDREG_DB": f"sqlite:///{path}", "COLUMNS": "200"}
        py = [sys.executable]
        cases = [
            ("python -c pass", [*py, "-c", "pass"], None),
            ("kdreg --help", [*py, "-m", "kdreg", "--help"], None),
            (
                "kdreg query --lang de --benchmark sib200 --limit 20",
                [*py, "-m", "kdreg", "query", "--lang", "de", "--benchmark", "sib200", "--limit", "20"],
                0.5,
            ),
            (
                "kdreg query --lang de --benchmark xnli --sort de --limit 20",
                [
                    *py,
                    "-m",
                    "kdreg",
                    "query",
                    "--lang",
                    "de",
                    "--benchmark",
                    "xnli",
                    "--sort",
                    "de",
                    "--limit",
                    "20",
                ],
                None,
            ),
            ("kdreg report", [*py, "-m", "kdreg", "report"], 2.0),
            (
                "kdreg report --teacher mbert --student layers",
                [*py, "-m", "kdreg", "report", "--teacher", "mbert", "--student", "layers"],
                None,
            ),
        ]
        baseline = None
        load = os.getloadavg()[0]
        print(f"\nmedian of {args.repeat} runs (after one warm-up), {os.cpu_count()} CPUs, "
              f"load average {load:.2f}")
        print(f"{'command':<58} {'wall s':>7} {'cpu s':>7} {'× python':>9}  goal (wall)")
        for label, command, goal in cases:
            wall, cpu, _ = time_command(command, args.repeat, env)
            baseline = baseline or wall
            verdict = "" if goal is None else (f"≤ {goal} s " + ("ok" if wall <= goal else "MISSED"))
            print(f"{label:<58} {wall:7.3f} {cpu:7.3f} {wall / baseline:9.1f}  {verdict}")


if __name__ == "__main__":
    main()
