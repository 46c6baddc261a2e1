"""Benchmark: kdreg's read commands against hand-written SQL on the same SQLite file.

The store holds 100,000 runs as real studies leave them: every language of the run's
benchmark × 2 splits × the benchmark's metrics (1 or 2), about 4 M results. Each kdreg
command is timed beside ``bench/handwritten_sql.py`` doing the same work with
``sqlite3`` (and pyarrow for Parquet) and producing the same output — which is checked
byte for byte (Parquet: table equality) before anything is timed:

* ``kdreg query --lang de --format csv`` — every run, with its de score;
* ``kdreg query --lang de --sort de -n 20`` — the best 20 by de (a table; its content is
  checked through ``--format csv``);
* ``kdreg report`` — seed statistics per group (the table; checked through ``--format csv``);
* ``kdreg export --benchmark sib200`` — CSV to stdout and Parquet to a file (1.6 M rows).

Why whole processes: what a user waits for is Python start-up, imports, opening and
checking the database and the SQL itself. Both sides take turns (one round runs every
case once), so a machine that gets busier slows both alike; wall and CPU time are the
medians of ``--repeat`` rounds after one warm-up round.

The database is created by :func:`kdreg.store.store.open_store` (the real schema and
migrations), then bulk-filled with ``sqlite3`` ``executemany`` — the store API's
one-transaction-per-write path would take far too long for 4 M rows and is not what is
being measured.

    python bench/query_report.py                 # build in a temp dir, time, print
    python bench/query_report.py --db big.db     # keep (or reuse) the database
    python bench/query_report.py --runs 20000 --repeat 3

Goal (issue 15): every kdreg command ≤ 1.5× the hand-written SQL doing the same work.
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
    the benchmark's metrics (32 or 64 results), and its benchmark's chance level of accuracy.
    """
    from kdreg.languages import normalize_language
    from kdreg.store.store import open_store

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from handwritten_sql import LABELS  # the built-in benchmarks' label counts, said once

    store = open_store(f"sqlite:///{path}")
    grid_id = store.create_grid("kdreg run (bench)", None)
    store.close()
    rng = random.Random(seed)
    configs = [(b, *c) for b in BENCHMARKS for c in _configs()]
    start = datetime(2025, 1, 1)
    norm = {code: normalize_language(code) for langs in BENCHMARKS.values() for code in langs}
    from kdreg.hparams import HParams

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
        source = BENCHMARKS[benchmark][0]  # and the chance level of accuracy, as every run stores it
        result_rows.append((run_id, source, norm[source], "chance", "accuracy", 1 / LABELS[benchmark], True))
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


GOAL = 1.5
HANDWRITTEN = Path(__file__).resolve().with_name("handwritten_sql.py")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall and CPU seconds of one run of ``argv``, and its stdout."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, check=False)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr.decode()}")
    return wall, cpu, done.stdout


def cases(db: Path, out: Path) -> list[tuple[str, list[str], list[str], list[str] | None]]:
    """(label, kdreg argv, hand-written argv, kdreg argv whose output must equal the hand-written one's)."""
    py = sys.executable
    kdreg = [py, "-m", "kdreg"]
    raw = [py, str(HANDWRITTEN)]
    same = None  # the timed command's own output is compared
    return [
        ("query --lang de --format csv", [*kdreg, "query", "--lang", "de", "--format", "csv"],
         [*raw, "query-de", str(db)], same),
        ("query --lang de --sort de -n 20", [*kdreg, "query", "--lang", "de", "--sort", "de", "-n", "20"],
         [*raw, "query-sort-de", str(db)],
         [*kdreg, "query", "--lang", "de", "--sort", "de", "-n", "20", "--format", "csv"]),
        ("report", [*kdreg, "report"], [*raw, "report", str(db)], [*kdreg, "report", "--format", "csv"]),
        ("report --format csv", [*kdreg, "report", "--format", "csv"], [*raw, "report", str(db)], same),
        ("export --benchmark sib200 (CSV)", [*kdreg, "export", "--benchmark", "sib200"],
         [*raw, "export-csv", str(db)], same),
        ("export --benchmark sib200 -f parquet",
         [*kdreg, "export", "--benchmark", "sib200", "-f", "parquet", "-o", str(out / "kdreg.parquet")],
         [*raw, "export-parquet", str(db), str(out / "raw.parquet")], same),
    ]


def check_same(label: str, kdreg_out: bytes, raw_out: bytes, out: Path) -> None:
    """The two sides must have produced the same thing, or the timing means nothing."""
    if "parquet" in label:
        import pyarrow.parquet as pq

        same = pq.read_table(out / "kdreg.parquet").equals(pq.read_table(out / "raw.parquet"))
    else:
        same = kdreg_out == raw_out
    if not same:
        raise SystemExit(f"{label}: kdreg and the hand-written SQL disagree; fix the baseline first")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="database file to build (or reuse when it exists)")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kdreg-bench-") as tmp:
        path = (args.db or Path(tmp) / "bench.db").resolve()
        if not path.exists():
            t0 = time.perf_counter()
            n = build_database(path, args.runs)
            print(f"built {path}: {args.runs:,} runs, {n:,} results in {time.perf_counter() - t0:.1f} s")
        else:
            print(f"reusing {path}")
        env = {**os.environ, "KDREG_HOME": tmp, "KDREG_DB": f"sqlite:///{path}", "COLUMNS": "200"}
        out = Path(tmp)
        todo = cases(path, out)
        for label, kdreg_argv, raw_argv, check_argv in todo:  # also the warm-up round
            kdreg_out = run(check_argv or kdreg_argv, env)[2]
            check_same(label, kdreg_out, run(raw_argv, env)[2], out)
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.repeat):
            for label, kdreg_argv, raw_argv, _check in todo:
                times.setdefault((label, "kdreg"), []).append(run(kdreg_argv, env)[:2])
                times.setdefault((label, "raw"), []).append(run(raw_argv, env)[:2])
    print(f"\nmedian of {args.repeat} interleaved rounds (after a warm-up round whose outputs were "
          f"compared), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'kdreg command':<40} {'kdreg s':>8} {'SQL s':>7} {'ratio':>6} {'cpu ratio':>9}  goal ≤ {GOAL}x")
    for label, *_rest in todo:
        k_wall = statistics.median(w for w, _ in times[label, "kdreg"])
        k_cpu = statistics.median(c for _, c in times[label, "kdreg"])
        r_wall = statistics.median(w for w, _ in times[label, "raw"])
        r_cpu = statistics.median(c for _, c in times[label, "raw"])
        ok = "ok" if k_wall / r_wall <= GOAL else "MISSED"
        print(f"{label:<40} {k_wall:8.2f} {r_wall:7.2f} {k_wall / r_wall:5.2f}x {k_cpu / r_cpu:8.2f}x  {ok}")


if __name__ == "__main__":
    main()
