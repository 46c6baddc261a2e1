"""Light commands against ``python -c "import torch"``, side by side (issue 15 §4).

A command that needs no model should cost a small fraction of what importing torch
costs. Both are timed as whole processes in the same session, interleaved (one round
runs every command once, then the next round), so a machine that gets busier halfway
slows both sides alike; each is the median of ``--repeat`` rounds after one warm-up.
CPU time (user + system of the child) is printed beside wall time because it hardly
moves under load, and the ratio is given for both.

The store is small but real: created by kdreg's own schema and filled by
``bench/query_report.py``'s builder (``--runs`` runs × 2 splits × every language).

    python bench/light_commands.py [--repeat 9] [--runs 300]

Goals: every command ≥ 6× faster than ``import torch`` and ≤ 0.15 s on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_RATIO = 6.0
GOAL_SECONDS = 0.15


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kdreg_command() -> list[str]:
    """The installed console script beside this Python (what users run), else ``python -m kdreg``."""
    script = Path(sys.executable).with_name("kdreg")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kdreg"]


def commands() -> list[tuple[str, list[str]]]:
    kdreg = kdreg_command()
    cases = [
        ("kdreg --help", [*kdreg, "--help"]),
        ("kdreg plugins", [*kdreg, "plugins"]),
        ("kdreg query", [*kdreg, "query"]),
        ("kdreg report", [*kdreg, "report"]),
        ("kdreg db current", [*kdreg, "db", "current"]),
    ]
    from importlib.util import find_spec

    if find_spec("kdreg.cli.status") is not None:
        cases.append(("kdreg status", [*kdreg, "status"]))
    return cases


def measure(
    cases: list[tuple[str, list[str]]], repeat: int, env: dict[str, str]
) -> dict[str, tuple[float, float]]:
    """Median (wall, cpu) seconds per case over ``repeat`` interleaved rounds, after one warm-up round."""
    walls: dict[str, list[float]] = {label: [] for label, _ in cases}
    cpus: dict[str, list[float]] = {label: [] for label, _ in cases}
    for round_ in range(repeat + 1):
        for label, argv in cases:
            cpu0, t0 = _children_cpu(), time.perf_counter()
            done = subprocess.run(argv, capture_output=True, env=env, check=False)
            wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
            if done.returncode != 0:
                raise SystemExit(f"{label} failed ({done.returncode}):\n{done.stderr.decode()}")
            if round_:  # round 0 warms the file cache and the .pyc files
                walls[label].append(wall)
                cpus[label].append(cpu)
    return {label: (statistics.median(walls[label]), statistics.median(cpus[label])) for label, _ in cases}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--runs", type=int, default=300, help="runs in the store (2 splits × every language)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from query_report import build_database

    tmp = Path(tempfile.mkdtemp(prefix="kdreg-light-"))
    try:
        build_database(tmp / "kdreg.db", args.runs)
        env = {**os.environ, "KDREG_HOME": str(tmp), "COLUMNS": "120"}
        # As installed: Python keeps compiled bytecode (a wheel's is compiled by pip, an editable
        # install's on first use, here the warm-up round). With PYTHONDONTWRITEBYTECODE set, every
        # command would compile kdreg's own modules from source (≈ 35 ms) and torch would not.
        for name in ("KDREG_DB", "PYTHONDONTWRITEBYTECODE"):
            env.pop(name, None)
        baseline = ("python -c 'import torch'", [sys.executable, "-c", "import torch"])
        results = measure([baseline, *commands()], args.repeat, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    torch_wall, torch_cpu = results.pop(baseline[0])
    print(f"median of {args.repeat} interleaved rounds, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} (1 min)")
    print(f"{'command':<28} {'wall s':>7} {'cpu s':>7} {'torch/wall':>11} {'torch/cpu':>10}  goal")
    print(f"{baseline[0]:<28} {torch_wall:7.3f} {torch_cpu:7.3f}")
    for label, (wall, cpu) in results.items():
        ok = min(torch_wall / wall, torch_cpu / cpu) >= GOAL_RATIO and cpu <= GOAL_SECONDS
        print(f"{label:<28} {wall:7.3f} {cpu:7.3f} {torch_wall / wall:10.1f}x {torch_cpu / cpu:9.1f}x  "
              f"≥ {GOAL_RATIO:g}x, ≤ {GOAL_SECONDS} s: {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
