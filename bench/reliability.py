"""Reliability figures: kill -9 and SIGTERM at random moments, concurrent writers, bad inputs.

Every figure comes from real processes on a real SQLite store, with the tiny world of the
tests. Printed so the next change can be judged by the same numbers:

* **kill -9 / SIGTERM** — ``kdreg run`` (and, with ``local:workers=2``, its workers' parent)
  is killed at a random moment, then the same command is run again until it completes:
  runs lost (stored results that changed or vanished), runs left running, runs not
  finished, trainings of a run beyond one that completed (from its claim count);
* **concurrent writers** — several ``kdreg run`` on one grid at once, with and without
  ``--force``: database lock errors, runs trained more than once per grid (``--force``: more
  than once per invocation), runs not succeeded;
* **bad input** — commands that must each end in one line of error, exit code 1 or 2, no
  traceback, and the database untouched (its bytes unchanged).

    python bench/reliability.py [--kills 4] [--writers 6] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
GRID = """
[teacher_finetune]
max_steps = 6
batch_size = 8
max_length = 24
[finetune]
max_steps = 150
batch_size = 8
max_length = 24
[pretrain]
max_steps = 20
batch_size = 8
max_length = 24
"""


def kdreg(args: list[str], env: dict[str, str], **options: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kdreg", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **options,
    )


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``sql``; none when the database or its tables are not there yet (killed that early)."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


def stored(db: Path) -> dict[str, tuple[Any, ...]]:
    """Every run's stored numbers by hash, whatever its status (a forced re-run keeps them)."""
    out: dict[str, list[Any]] = {}
    for key, *row in rows(
        db,
        "SELECT u.config_hash, r.language, r.split, r.metric, r.value FROM results r JOIN "
        "runs u ON u.id = r.run_id ORDER BY 1, 2, 3, 4",
    ):
        out.setdefault(key, []).append(tuple(row))
    return {k: tuple(v) for k, v in out.items()}


def killing(
    args: list[str], env: dict[str, str], db: Path, signum: int, trials: int, rng: random.Random
) -> dict[str, int]:
    """Kill ``kdreg run`` ``trials`` times at random moments; finish the grid after each."""
    figures = {"kills": 0, "runs lost": 0, "left running": 0, "not finished": 0, "exit codes right": 0}
    expected = 143 if signum == signal.SIGTERM else -signal.SIGKILL
    for _ in range(trials):
        before = stored(db) if db.exists() else {}
        proc = kdreg([*args, "--force"] if before else args, env, start_new_session=True)
        time.sleep(rng.uniform(1.0, 6.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signum) if signum == signal.SIGKILL else proc.send_signal(signum)
            figures["kills"] += 1
        proc.communicate(timeout=300)
        figures["exit codes right"] += proc.returncode in (expected, 0)
        if signum == signal.SIGTERM:
            figures["left running"] += len(rows(db, "SELECT id FROM runs WHERE status = 'running'"))
        after = stored(db) if db.exists() else {}
        figures["runs lost"] += sum(1 for key, numbers in before.items() if after.get(key) != numbers)
        time.sleep(2.5 if signum == signal.SIGKILL else 0)  # a killed process's runs must go stale first
        kdreg(args, {**env, "KDREG_STALE_SECONDS": "2"}).communicate(timeout=600)
        unfinished = rows(db, "SELECT stage, status, error FROM runs WHERE status != 'succeeded'")
        figures["not finished"] += len(unfinished)
        for stage, status, error in unfinished:
            print(f"  not finished: {stage} {status}: {(error or '')[:150]}")
    return figures


def writers(args: list[str], env: dict[str, str], db: Path, count: int, force: bool) -> dict[str, int]:
    """``count`` processes run one grid at once."""
    before = {h: a for h, a in rows(db, "SELECT config_hash, attempts FROM runs")} if db.exists() else {}
    procs = [kdreg(args + (["--force"] if force else []), env) for _ in range(count)]
    errors = [p.communicate(timeout=900)[1] for p in procs]
    after = dict(rows(db, "SELECT config_hash, attempts FROM runs"))
    trainings = [a - before.get(h, 0) for h, a in after.items()]
    return {
        "processes": count,
        "lock errors": sum("locked" in e.lower() for e in errors),
        "tracebacks": sum("Traceback" in e for e in errors),
        "trainings per run": round(sum(trainings) / len(trainings), 2),
        "most": max(trainings),
        "not succeeded": rows(db, "SELECT COUNT(*) FROM runs WHERE status != 'succeeded'")[0][0],
    }


BAD = [
    ["run", "--seed", "-1"],
    ["run", "--seed", "99999999999999999999"],
    ["run", "--stage", "sometimes"],
    ["run", "--teacher", "nope"],
    ["run", "--teacher", "hf:path="],
    ["run", "--student", "layers:k=0"],
    ["run", "--loss", "-1*kl"],
    ["run", "--loss", "kl:temperature=nan"],
    ["run", "--device", "tpu"],
    ["run", "--executor", "nope"],
    ["run", "--executor", "local:workers=-1"],
    ["run", "--threads", "0"],
    ["run", "--config", "/nonexistent.toml"],
    ["run", "--lang", "xx"],
    ["query", "-n", "99999999999999999999"],
    ["query", "--since", "yesterday"],
    ["query", "--sort", "nope"],
    ["show", "99999999999999999999999"],
    ["show", "abc"],
    ["report", "--scale", "nan"],
    ["report", "--format", "pdf"],
    ["export", "--format", "xls"],
    ["status", "0"],
    ["status", "abc"],
    ["db", "upgrade", "--db", "postgresql://u@h:abc/db"],
    ["plugins", "show", "nope"],
    ["plugins", "--kind", "losses"],
    ["cache", "clear", "--older-than", "x"],
]


def bad_inputs(env: dict[str, str], db: Path, world: dict[str, str]) -> dict[str, int]:
    """Each bad command: one line, exit 1 or 2, no traceback, the database's bytes unchanged."""
    checksum = hashlib.sha256(db.read_bytes()).hexdigest()
    figures = {"tried": 0, "one clean line": 0, "tracebacks": 0, "database changed": 0}
    for argv in BAD:
        if argv[0] == "run":
            argv = [*argv[:1], "--teacher", world["teacher"], "--benchmark", world["benchmark"], *argv[1:]]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "kdreg",
                *argv,
                *(
                    ["--db", str(db)]
                    if argv[0] in ("run", "query", "show", "report", "export", "status")
                    else []
                ),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        figures["tried"] += 1
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        figures["one clean line"] += (
            done.returncode in (1, 2) and "Traceback" not in done.stderr and bool(lines)
        )
        figures["tracebacks"] += "Traceback" in done.stderr
        if done.returncode not in (1, 2) or "Traceback" in done.stderr:
            print(
                f"  not clean: kdreg {' '.join(argv)[:80]} → {done.returncode}: {(lines or [''])[-1][:120]}"
            )
    figures["database changed"] += hashlib.sha256(db.read_bytes()).hexdigest() != checksum
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    from tiny_world import write_benchmark, write_corpus

    from kdreg.testing.tiny import save_tiny_bert

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "grid.toml").write_text(GRID)
        world = {
            "teacher": f"hf:path={save_tiny_bert(folder / 'bert')}",
            "benchmark": f"files:path={write_benchmark(folder / 'bench')},source=en",
            "corpus": f"text:path={write_corpus(folder / 'corpus')}",
        }
        grid = [
            "run",
            "--teacher",
            world["teacher"],
            "--student",
            "layers:k=1",
            "--benchmark",
            world["benchmark"],
            "--corpus",
            world["corpus"],
            "--stage",
            "none,finetune,pretrain,both",
            "--config",
            str(folder / "grid.toml"),
        ]
        base = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "KDREG_HOME": str(folder / "home"),
            "OMP_NUM_THREADS": "1",
        }
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        for name, signum, executor in (
            ("kill -9", signal.SIGKILL, "inline"),
            ("SIGTERM", signal.SIGTERM, "inline"),
            ("kill -9", signal.SIGKILL, "local:workers=2"),
            ("SIGTERM", signal.SIGTERM, "local:workers=2"),
        ):
            db = folder / f"{name}-{executor}.db".replace(" ", "").replace(":", "")
            figures = killing(
                [*grid, "--db", str(db), "--executor", executor], base, db, signum, args.kills, rng
            )
            print(f"{name:8} {executor:16} " + " · ".join(f"{k} {v}" for k, v in figures.items()))
        for force in (False, True):
            db = folder / f"writers-{force}.db"
            if force:
                kdreg([*grid, "--db", str(db)], base).communicate(timeout=600)
            figures = writers([*grid, "--db", str(db)], base, db, args.writers, force)
            print(
                f"writers{' --force' if force else '':8} "
                + " · ".join(f"{k} {v}" for k, v in figures.items())
            )
        figures = bad_inputs(base, folder / "writers-True.db", world)
        print("bad input " + " · ".join(f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
