"""The cold default study: ``kdreg run`` with a fresh home, against the previous default, side by side.

Issue 13's budget for the offline default study is ≤ 3 minutes and ≤ 2 GB peak memory on a
quiet 2-core machine, from a fresh ``KDREG_HOME`` (nothing cached: the teachers are
fine-tuned, the students distilled, every run evaluated). This script runs it the way a
user does — ``python -m kdreg`` of this interpreter, in a fresh process and home — and, as the
baseline in the same run, the default study as it was before KD in pretraining distilled
at every token: the same grid with ``kl:...,positions=masked`` and 1,500 KD steps (the
masked-only rule needed them to align). It prints wall time, peak resident memory of the
command's process tree, each study's zero-shot average per teacher and stage, and the
ratio.

    python bench/default_study.py [--repeats 1] [--no-baseline]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GRID = ROOT / "kdreg" / "default_grid.toml"
BUDGET_S, BUDGET_BYTES = 180.0, 2e9
KDREG = [sys.executable, "-m", "kdreg"]
"""This checkout's kdreg, whatever else is on PATH."""


def previous_default(folder: Path) -> Path:
    """The default grid as it was: KD at the masked positions only, 1,500 steps."""
    text = DEFAULT_GRID.read_text()
    masked = 'loss = "kl:alpha=0.9,positions=masked,temperature=4"'
    text = re.sub(r'^loss = "kl:alpha=0.9,temperature=4"$', masked, text, count=1, flags=re.M)
    text = re.sub(r"^(\[pretrain\][^[]*?^max_steps = )800\b", r"\g<1>1500", text, count=1, flags=re.M | re.S)
    if "positions=masked" not in text or "max_steps = 1500" not in text:
        raise SystemExit("kdreg/default_grid.toml changed: update bench/default_study.py's baseline")
    path = folder / "previous_default.toml"
    path.write_text(text)
    return path


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants (Linux /proc; 0 where unreadable)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in Path(f"/proc/{current}/task").iterdir():  # children of every thread
                todo.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def _env(home: Path) -> dict[str, str]:
    """A fresh home, offline, and no database or cache named from outside it."""
    env = {**os.environ, "KDREG_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    for name in ("KDREG_DB", "KDREG_CACHE"):
        env.pop(name, None)
    return env


def cold_run(home: Path, config: Path | None) -> tuple[float, float]:
    """Wall seconds and peak bytes (process tree, sampled every 0.1 s) of one cold ``kdreg run``."""
    command = [*KDREG, "run"] + (["--config", str(config)] if config is not None else [])
    started = time.perf_counter()
    process = subprocess.Popen(command, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    peak = [0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_rss(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, errors = process.communicate()
    wall = time.perf_counter() - started
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"kdreg run failed ({process.returncode}): {errors.strip()[-500:]}")
    return wall, peak[0]


def zero_shot(home: Path) -> dict[tuple[str, str], float]:
    """(teacher, stage) → zero-shot average test accuracy of the study in ``home``."""
    done = subprocess.run([*KDREG, "query", "--metric", "accuracy", "--split", "test", "--format", "csv"],
                          env=_env(home), capture_output=True, text=True, check=True)
    rows = csv.DictReader(io.StringIO(done.stdout))
    return {(row["teacher"], row["stage"]): float(row["zero_shot"]) for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1,
                        help="cold runs of each study (median wall time and largest peak reported)")
    parser.add_argument("--no-baseline", action="store_true", help="only the current default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kdreg-bench-") as tmp:
        folder = Path(tmp)
        studies = {"default": None}
        if not args.no_baseline:
            studies["previous default (masked, 1,500 steps)"] = previous_default(folder)
        walls: dict[str, list[float]] = {name: [] for name in studies}
        peaks: dict[str, list[float]] = {name: [] for name in studies}
        scores: dict[str, dict[tuple[str, str], float]] = {}
        for repeat in range(args.repeats):
            for index, (name, config) in enumerate(studies.items()):  # interleaved
                home = folder / f"home-{index}-{repeat}"
                wall, peak = cold_run(home, config)
                walls[name].append(wall)
                peaks[name].append(peak)
                scores[name] = zero_shot(home)
                print(f"{name}: {wall:.1f} s, {peak / 2**30:.2f} GiB", flush=True)
        print(f"\ncores: {os.cpu_count()} · repeats: {args.repeats} (median)")
        for name in studies:
            wall, peak = statistics.median(walls[name]), max(peaks[name])
            verdict = "within" if wall <= BUDGET_S and peak <= BUDGET_BYTES else "OVER"
            print(f"{name:40s} {wall:6.1f} s  {peak / 2**30:.2f} GiB  ({verdict} the {BUDGET_S:.0f} s / "
                  f"{BUDGET_BYTES / 1e9:.0f} GB budget)")
        print("\nzero-shot average, test accuracy (seed 0):")
        headers = [name.split(" (")[0] for name in studies]
        print(f"  {'teacher':22s} {'stage':9s} " + "  ".join(f"{h:>16s}" for h in headers))
        keys = sorted({key for table in scores.values() for key in table})
        for teacher, stage in keys:
            cells = "  ".join(f"{scores[name].get((teacher, stage), float('nan')):16.3f}" for name in studies)
            print(f"  {teacher:22s} {stage:9s} {cells}")
        if len(studies) == 2:
            baseline, current = (statistics.median(walls[name]) for name in reversed(list(studies)))
            print(f"\nprevious default / default: {baseline / current:.2f}× faster")


if __name__ == "__main__":
    sys.exit(main())
