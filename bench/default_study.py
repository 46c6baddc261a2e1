"""The cold default study: ``kdreg run`` with a fresh home, against the previous default, side by side.

Issue 13's budget for the offline default study is ≤ 3 minutes and ≤ 2 GB peak memory on a
quiet 2-core machine, from a fresh ``KDREG_HOME`` (nothing cached: the teachers are
fine-tuned, the students distilled, every run evaluated). This script runs it the way a
user does — the installed ``kdreg`` command in a fresh process and home — and, as the
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
BUDGET_S, BUDGET_GIB = 180.0, 2.0


def previous_default(folder: Path) -> Path:
    """The default grid as it was: KD at the masked positions only, 1,500 steps."""
    text = DEFAULT_GRID.read_text()
    masked = 'loss = "kl:alpha=0.9,positions=masked,temperature=4"'
    text = re.sub(r'^loss = "kl:alpha=0.9,temperature=4"$', masked, text, count=1, flags=re.M)
    text = re.sub(r"^max_steps = 800\b", "max_steps = 1500", text, count=1, flags=re.M)
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
            with open(f"/proc/{current}/task/{current}/children") as children:
                todo.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue
    return total


def cold_run(home: Path, config: Path | None) -> tuple[float, float]:
    """Wall seconds and peak GiB (process tree, sampled every 0.1 s) of one cold ``kdreg run``."""
    env = {**os.environ, "KDREG_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("KDREG_DB", None)
    env.pop("KDREG_CACHE", None)
    command = ["kdreg", "run"] + (["--config", str(config)] if config is not None else [])
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
    return wall, peak[0] / 2**30


def zero_shot(home: Path) -> dict[tuple[str, str], float]:
    """(teacher, stage) → zero-shot average test accuracy of the study in ``home``."""
    done = subprocess.run(["kdreg", "query", "--metric", "accuracy", "--split", "test", "--format", "csv"],
                          env={**os.environ, "KDREG_HOME": str(home)}, capture_output=True, text=True,
                          check=True)
    rows = csv.DictReader(io.StringIO(done.stdout))
    return {(row["teacher"], row["stage"]): float(row["zero_shot"]) for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="cold runs of each study (median reported)")
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
                print(f"{name}: {wall:.1f} s, {peak:.2f} GiB", flush=True)
        print(f"\ncores: {os.cpu_count()} · repeats: {args.repeats} (median)")
        for name in studies:
            wall, peak = statistics.median(walls[name]), max(peaks[name])
            verdict = "within" if wall <= BUDGET_S and peak <= BUDGET_GIB else "OVER"
            print(f"{name:40s} {wall:6.1f} s  {peak:.2f} GiB  ({verdict} the {BUDGET_S:.0f} s / "
                  f"{BUDGET_GIB:.0f} GiB budget)")
        print("\nzero-shot average, test accuracy (seed 0):")
        print(f"  {'teacher':22s} {'stage':9s} " + "  ".join(name.split(" (")[0] for name in studies))
        keys = sorted({key for table in scores.values() for key in table})
        for teacher, stage in keys:
            cells = "  ".join(f"{scores[name].get((teacher, stage), float('nan')):.3f}" for name in studies)
            print(f"  {teacher:22s} {stage:9s} {cells}")
        if len(studies) == 2:
            baseline, current = (statistics.median(walls[name]) for name in reversed(list(studies)))
            print(f"\nprevious default / default: {baseline / current:.2f}× faster")


if __name__ == "__main__":
    sys.exit(main())
