"""Executors side by side on one grid: wall time, speed-up, submit-to-start latency, per-task overhead.

The grid: a tiny saved BERT teacher, a three-language benchmark and a corpus written to
disk, two students (``layers:k=1`` and a small random one) through stages none, finetune,
pretrain and both, two seeds — 16 student runs, 2 teacher rows and 6 models to build
first — with a few dozen training steps per phase. Every executor starts from an empty
store and model cache and records the same numbers (checked). Measured per executor:

* **wall** — the whole grid, from the first task handed over to the last outcome;
* **latency** — from a task handed to the executor until it starts (mean);
* **overhead** — per task, time outside its stage (claim, store writes, rebuilding the job,
  loading plugins), from the worker's own clock (mean);
* the speed-up of ``local:workers=2`` over ``inline`` on this machine (goal ≥ 1.6× on 2
  cores) and its per-task overhead (goal ≤ 0.5 s);
* **command** — the whole ``kdreg run`` of the grid in a fresh process and home, for each
  executor (planning and every import included: what a user waits for), median of
  ``--repeat``.

The executor phase is timed in this process, after planning; ``local``'s workers fork from
a server that ``warm_up`` started before planning, and since this process has torch and
transformers imported already (a cold ``kdreg run`` imports them while it plans), the bench
waits for that server to be ready before it starts the clock. The command timing has no
such allowance.

With ``--clusters`` it also runs the grid on a local single-node Slurm cluster (root, the
slurm-wlm and munge packages; started and stopped here, as the tests do) and on a local
Ray cluster, against ``local:workers=2`` (issue 12).

    python bench/executors.py [--clusters] [--steps 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def world(folder: Path, steps: int) -> dict[str, Any]:
    """The grid's plugins and hyper-parameters, written under ``folder``."""
    from tiny_world import write_benchmark, write_corpus

    from kdreg.testing.tiny import save_tiny_bert

    folder.mkdir(parents=True, exist_ok=True)
    grid = folder / "grid.toml"
    phases = "\n".join(f"[{p}]\nmax_steps = {steps}\nbatch_size = 8\nmax_length = 24\nlearning_rate = 1e-3"
                       for p in ("teacher_finetune", "finetune", "pretrain"))
    grid.write_text(phases + "\n")
    return {
        "teacher": [f"hf:path={save_tiny_bert(folder / 'teacher')}"],
        "student": ["layers:k=1", "small:layers=1,hidden=16,heads=2,intermediate=32"],
        "loss": ["kl"],
        "benchmark": [f"files:path={write_benchmark(folder / 'bench')},source=en"],
        "corpus": [f"text:path={write_corpus(folder / 'corpus')}"],
        "stage": ["none", "finetune", "pretrain", "both"],
        "seed": ["0", "1"],
        "grid": grid,
    }


def run(executor_spec: str, options: dict[str, Any], home: Path) -> dict[str, Any]:
    """Run the grid on ``executor_spec`` in a fresh home and time every task."""
    os.environ["KDREG_HOME"] = str(home)
    os.environ.pop("KDREG_CACHE", None)
    from kdreg.execution.coordinator import GridMonitor, SilentReporter, record_grid
    from kdreg.execution.follow import follow
    from kdreg.execution.journal import entries
    from kdreg.execution.plan import plan_grid, preflight
    from kdreg.execution.worker import use_store
    from kdreg.grid import expand_grid
    from kdreg.plugins.resolve import PluginSet
    from kdreg.records import TaskOutcome
    from kdreg.request import build_request
    from kdreg.store.store import open_store

    plugins = PluginSet()
    request = build_request({k: v for k, v in options.items() if k != "grid"}, options["grid"])
    executor = plugins.checked(plugins.resolve("executor", executor_spec))
    executor.warm_up()  # as `kdreg run` does: workers start while the grid is planned
    jobs = expand_grid(request, plugins)
    preflight(jobs, plugins)
    if executor_spec.startswith("local"):
        # A cold `kdreg run` imports torch and transformers while it plans, as long as the fork
        # server's own imports; this process has them already, so wait as the CLI would have.
        from kdreg.execution.forkserver import wait_until_ready

        wait_until_ready()
    store = open_store()
    outcome = record_grid(store, plan_grid(store, jobs), command="bench", executor_spec=executor_spec,
                          executor=executor, device="cpu")
    use_store(store)
    handed: dict[str, float] = {}
    outcomes: dict[str, Any] = {}
    graph = outcome.graph
    call = graph.call

    def timed_call(task: Any) -> Any:  # what the executor ships is built right before it hands it over
        handed.setdefault(task.key, time.time())
        return call(task)

    graph.call = timed_call  # type: ignore[method-assign]

    class Timed(GridMonitor):
        def finished(self, task: Any, result: Any) -> None:
            outcomes[task.key] = result
            super().finished(task, result)

    started = time.time()
    executor.execute(graph, Timed(store, outcome, SilentReporter(), fail_fast=False))
    if outcome.unfinished:  # an engine that runs on after submission: follow it, read its journal
        follow(store, outcome, executor, SilentReporter(), poll_seconds=0.5)
        journal = graph.context.journal if graph.context is not None else None
        for entry in entries(Path(journal)) if journal else []:
            if entry.outcome is not None:
                outcomes[entry.key] = TaskOutcome.from_json(entry.outcome["outcome"])
    wall = time.time() - started
    statuses = {t.status for t in store.grid_tasks(outcome.grid_id)}
    assert statuses == {"succeeded"}, f"{executor_spec}: {statuses}"
    latency, overhead, in_worker = [], [], []
    for key, result in outcomes.items():
        if result.started_at is None or result.finished_at is None or key not in handed:
            continue
        latency.append(result.started_at - handed[key])
        overhead.append(result.finished_at - handed[key] - result.busy_seconds)
        in_worker.append(result.seconds - result.busy_seconds)
    numbers = store.test_results([r.id for r in store.grid_runs(outcome.grid_id)])
    return {"wall": wall, "tasks": len(graph.tasks), "latency": statistics.mean(latency),
            "overhead": statistics.mean(overhead), "overhead_median": statistics.median(overhead),
            "in_worker": statistics.mean(in_worker),
            "numbers": sorted((n.language, n.metric, round(n.value, 9)) for n in numbers)}


def command_seconds(executor_spec: str, options: dict[str, Any], home: Path) -> float:
    """Wall seconds of ``kdreg run`` of the grid on ``executor_spec``, a fresh process in a fresh home."""
    import subprocess

    argv = [sys.executable, "-m", "kdreg", "run", "--executor", executor_spec,
            "--config", str(options["grid"])]
    for name in ("teacher", "student", "loss", "benchmark", "corpus", "stage", "seed"):
        for value in options[name]:
            argv += [f"--{name}", value]
    env = {**os.environ, "KDREG_HOME": str(home)}
    env.pop("KDREG_CACHE", None)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"kdreg run --executor {executor_spec} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--clusters", action="store_true", help="also Slurm and Ray (local clusters)")
    parser.add_argument("--repeat", type=int, default=3, help="whole commands per executor (median)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
        os.environ.setdefault(name, value)  # as `kdreg run` does: no load reports between the lines
    from kdreg.threads import prepare_threads

    prepare_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        options = world(folder / "world", args.steps)
        print(f"cores: {os.cpu_count()} · load average before: {os.getloadavg()[0]:.2f}")
        results: dict[str, dict[str, Any]] = {}
        specs = ["inline", "local:workers=2"]
        if args.clusters:
            specs += ["slurm:cpus_per_task=1,array_parallelism=2", "ray:cluster_cpus=2"]
        for spec in specs:
            if spec.startswith("slurm"):
                from slurm_cluster import start_slurm

                with start_slurm():
                    results[spec] = run(spec, options, folder / spec.split(":")[0])
            else:
                results[spec] = run(spec, options, folder / spec.split(":")[0])
            r = results[spec]
            print(f"{spec:42} wall {r['wall']:6.1f} s · {r['tasks']} tasks · latency {r['latency']:5.2f} s · "
                  f"overhead {r['overhead']:5.2f} s (median {r['overhead_median']:.2f}, in the worker "
                  f"{r['in_worker']:.2f})", flush=True)
        base = results["inline"]
        for spec, r in results.items():
            same = "same numbers" if r["numbers"] == base["numbers"] else "DIFFERENT NUMBERS"
            print(f"  {spec:43} {base['wall'] / r['wall']:5.2f}× inline's speed ({same})")
        local = results["local:workers=2"]
        print(f"local:workers=2 speed-up over inline: {base['wall'] / local['wall']:.2f}× (goal ≥ 1.6×); "
              f"per-task overhead {local['overhead']:.2f} s (goal ≤ 0.5 s)")
        commands: dict[str, list[float]] = {"inline": [], "local:workers=2": []}
        for i in range(args.repeat):  # interleaved, so a machine that gets busier slows both
            for spec in commands:
                commands[spec].append(command_seconds(spec, options, folder / f"command-{i}-{spec[:5]}"))
        whole = {spec: statistics.median(times) for spec, times in commands.items()}
        inline, local = whole["inline"], whole["local:workers=2"]
        print(f"whole `kdreg run` (median of {args.repeat}): inline {inline:.1f} s, local:workers=2 "
              f"{local:.1f} s: {inline / local:.2f}× inline's speed")
        for spec in specs[2:]:
            r = results[spec]
            print(f"{spec.split(':')[0]}: latency {r['latency'] / local['latency']:.1f}× local's, overhead "
                  f"{r['overhead'] / local['overhead']:.1f}× local's, "
                  f"wall {r['wall'] / local['wall']:.2f}× local's")


if __name__ == "__main__":
    main()
