"""Planning large grids (issue 15 §5): ``kdreg run --dry-run`` on 1,000 to 10,000 combinations.

Two studies, each made larger by more seeds:

* **default** — the offline default study (two synthetic teachers × four stages, plus the
  teacher rows: 10 combinations per seed);
* **hf** — a saved tiny BERT teacher, two students, two losses, the four stages, a
  `files` benchmark and a `text` corpus (15 combinations per seed). Its preflight previews
  what loading the teacher's checkpoint for KD in pretraining would report, which builds
  the model on torch's meta device: transformers' model stack is imported (about 3.5 s of
  CPU here), whatever the size of the grid;
* **hf-again** — the same grid planned again in the same home: the preview is remembered
  in kdreg's cache (keyed by the checkpoint's config and tensor names), as on every plan
  after a teacher's first.

The plan expands the grid, hashes every run, preflights every plugin, reads the store and
builds the task graph, then prints a summary. Every size runs as its own process
(``--format json`` as well as the terminal table, since a script reads every row); CPU time
of the child (user + system) is what is compared, since it hardly moves under load. The
baseline is the smallest grid: the marginal cost of a combination between two sizes stays
the same when planning is linear.

    python bench/plan.py [--grids default,hf,hf-again] [--repeat 3]

Goal: ≤ 2 s for 10,000 combinations, linear in their number.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
GOAL_SECONDS = 2.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def world(root: Path) -> list[str]:
    """The options of the grid, minus seeds."""
    from tiny_world import write_benchmark, write_corpus

    from kdreg.testing.tiny import save_tiny_bert

    teacher = save_tiny_bert(root / "teacher")
    return ["--teacher", f"hf:path={teacher}", "--student", "layers:k=1,small:layers=1,hidden=16,heads=1",
            "--loss", "kl,mse", "--benchmark", f"files:path={write_benchmark(root / 'bench')},source=en",
            "--corpus", f"text:path={write_corpus(root / 'corpus')}"]


def measure(options: list[str], seeds: int, fmt: str, home: Path) -> tuple[float, float, int]:
    """(CPU s, wall s, combinations) of one dry run in a fresh process."""
    env = {**os.environ, "KDREG_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    for name in ("KDREG_CACHE", "KDREG_DB"):  # everything in the fresh home: a cold plan stays cold
        env.pop(name, None)
    seed_list = ",".join(str(s) for s in range(seeds))
    before, start = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kdreg", "run", *options, "--seed", seed_list, "--dry-run",
                           "--format", fmt], capture_output=True, text=True, env=env, timeout=600)
    wall, cpu = time.perf_counter() - start, _children_cpu() - before
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    if fmt == "json":
        return cpu, wall, len(json.loads(done.stdout)["runs"])
    line = next(line for line in done.stdout.splitlines() if " to run, " in line)
    to_run, rest = line.split(" to run, ")
    return cpu, wall, int(to_run.split()[-1]) + int(rest.split()[0])


SEEDS = {"default": [100, 500, 1000], "hf": [67, 334, 667], "hf-again": [67, 334, 667]}
"""Seeds per size: about 1,000, 5,000 and 10,000 combinations."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grids", default="default,hf,hf-again",
                        help="which studies (default, hf, hf-again)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"median of {args.repeat} runs each, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.2f} (1 min)")
        print(f"{'grid':8} {'format':7} {'combinations':>12} {'cpu s':>7} {'wall s':>7} "
              f"{'marginal ms/comb.':>18}  goal")
        for grid in args.grids.split(","):
            options = world(root) if grid.startswith("hf") else []
            warm = root / "home-warm"
            if grid == "hf-again":
                measure(options, 1, "json", warm)  # a first plan with this teacher previews it
            for fmt in ("table", "json"):
                previous: tuple[int, float] | None = None
                for seeds in SEEDS[grid]:
                    runs = [measure(options, seeds, fmt,
                                    warm if grid == "hf-again" else root / f"home-{grid}-{fmt}-{seeds}-{i}")
                            for i in range(args.repeat)]
                    cpu, wall = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
                    combos = runs[0][2]
                    marginal = ("" if previous is None
                                else f"{(cpu - previous[1]) / (combos - previous[0]) * 1e3:.3f}")
                    goal = ""
                    if combos >= 10_000:
                        goal = f"≤ {GOAL_SECONDS:.0f} s: {'ok' if cpu <= GOAL_SECONDS else 'MISSED'}"
                    print(f"{grid:8} {fmt:7} {combos:>12,} {cpu:>7.2f} {wall:>7.2f} {marginal:>18}  {goal}")
                    previous = (combos, cpu)
        print("linear: the marginal cost per combination is the same between every two sizes; the rest "
              "is the fixed cost of one dry run (imports, preflight of each plugin).")


if __name__ == "__main__":
    main()
