"""What a run costs outside training, on a grid of 50 tiny runs, with a profile of where it goes.

A grid of 50 student runs (five students through stages none and finetune, five seeds; the
five teacher rows and fine-tuned teachers come with it) on the tiny world, a few training
steps each, ``--executor inline``. Per run: its task's time (claim, environment, rebuilding
its job, loading models, training, evaluating, recording) minus the time in training loops;
goal (issue 15): ≤ 0.5 s. Then the profile of the whole grid, summed over the parts a run is
made of, per run.

    python bench/run_overhead.py [--steps 6]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

PARTS = {
    "evaluate (all languages and splits)": "evaluate.py:" + "evaluate",
    "train loops": "training.py:train",
    "load a cached model": "artifacts.py:load_cached",
    "build a student": "students.py:build",
    "claim, start, record (store)": ("lifecycle.py:claim_run", "lifecycle.py:start_run",
                                     "lifecycle.py:complete_run", "tasks.py:task_started",
                                     "tasks.py:task_finished"),
    "environment (versions, git)": "environment.py:environment",
    "rebuild the job (plugins)": "graph.py:rebuild",
}


def grid_once(options: dict[str, Any], grid: Path, *, before: bool) -> tuple[Any, ...]:
    """Run the grid inline; ``before``: as kdreg did before (no evaluation cache, gc per phase).

    Before, too, nothing was frozen out of the collector's sight (``gc.freeze``, which came
    later and makes each full collection cheap): the baseline unfreezes and does not freeze,
    or its collections would walk only what the grid made and cost nothing.
    """
    import gc

    from kdreg.execution import worker
    from kdreg.execution.coordinator import GridMonitor, SilentReporter, record_grid
    from kdreg.execution.plan import plan_grid, preflight
    from kdreg.execution.worker import use_store
    from kdreg.grid import expand_grid
    from kdreg.pipeline import evaluate as evaluation
    from kdreg.pipeline import phases
    from kdreg.plugins.resolve import PluginSet
    from kdreg.request import build_request
    from kdreg.store.store import open_store

    original_get, original_train = evaluation.EvaluationSets.get, phases.Trainer.train
    original_freeze = worker.freeze_what_lasts
    if before:
        gc.unfreeze()
        worker.freeze_what_lasts = lambda: None

        def uncached(self: Any, *a: Any, **k: Any) -> Any:
            self._sets.clear()
            return original_get(self, *a, **k)

        def collecting(self: Any, *a: Any, **k: Any) -> Any:
            try:
                return original_train(self, *a, **k)
            finally:
                gc.collect()

        evaluation.EvaluationSets.get, phases.Trainer.train = uncached, collecting  # type: ignore[method-assign]
    try:
        plugins = PluginSet()
        jobs = expand_grid(build_request(options, grid), plugins)
        preflight(jobs, plugins)
        executor = plugins.checked(plugins.resolve("executor", "inline"))
        store = open_store()
        outcome = record_grid(store, plan_grid(store, jobs), command="bench", executor_spec="inline",
                              executor=executor, device="cpu")
        use_store(store)
        outcomes: dict[str, Any] = {}

        class Keep(GridMonitor):
            def finished(self, task: Any, result: Any) -> None:
                outcomes[task.key] = (task, result)
                super().finished(task, result)

        profile = cProfile.Profile()
        profile.enable()
        executor.execute(outcome.graph, Keep(store, outcome, SilentReporter(), fail_fast=False))
        profile.disable()
    finally:
        evaluation.EvaluationSets.get = original_get  # type: ignore[method-assign]
        phases.Trainer.train = original_train  # type: ignore[method-assign]
        worker.freeze_what_lasts = original_freeze
    assert all(r.status == "succeeded" for _, r in outcomes.values())
    runs = [(t, r) for t, r in outcomes.values() if t.kind == "run" and t.job.stage != "teacher"]
    outside = [r.seconds - r.train_seconds for _, r in runs]
    return outside, [r.train_seconds for _, r in runs], len(runs), len(outcomes) - len(runs), profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from kdreg.threads import prepare_threads

    prepare_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["KDREG_HOME"] = str(folder / "home")
        from tiny_world import write_benchmark

        from kdreg.testing.tiny import save_tiny_bert

        grid = folder / "grid.toml"
        grid.write_text("\n".join(f"[{p}]\nmax_steps = {args.steps}\nbatch_size = 8\nmax_length = 24\n"
                                  for p in ("teacher_finetune", "finetune")))
        students = ["layers:k=1", "layers:k=2", "small:layers=1,hidden=16,heads=2,intermediate=32",
                    "small:layers=1,hidden=32,heads=2,intermediate=64",
                    "small:layers=2,hidden=16,heads=2,intermediate=32"]
        options = {"teacher": [f"hf:path={save_tiny_bert(folder / 'teacher')}"], "student": students,
                   "loss": ["kl"], "benchmark": [f"files:path={write_benchmark(folder / 'bench')},source=en"],
                   "stage": ["none", "finetune"], "seed": [str(s) for s in range(5)]}
        results = {}
        for label in ("before", "after"):
            os.environ["KDREG_HOME"] = str(folder / f"home-{label}")
            results[label] = grid_once(options, grid, before=label == "before")
            outside, trained, runs, others, profile = results[label]
            print(f"{label}: {runs} student runs (+{others} teacher rows and models) · per run outside "
                  f"training mean {statistics.mean(outside):.3f} s, median {statistics.median(outside):.3f} s"
                  f" · in training {statistics.mean(trained):.3f} s · load average {os.getloadavg()[0]:.2f}")
        before, after = statistics.mean(results["before"][0]), statistics.mean(results["after"][0])
        print(f"per-run cost outside training: {after:.3f} s (goal ≤ 0.5 s), {before / after:.1f}× less than "
              "before (evaluation sets prepared per run, a full garbage collection per training phase)")
        profile = results["after"][4]
        count = results["after"][2] + results["after"][3]
        stats = pstats.Stats(profile)
        totals: dict[str, float] = {}
        entries = stats.stats.items()  # type: ignore[attr-defined]
        for (filename, _line, function), (_cc, _nc, _tt, cumulative, _callers) in entries:
            for part, names in PARTS.items():
                for name in (names,) if isinstance(names, str) else names:
                    file, func = name.split(":")
                    if filename.endswith(file) and function == func:
                        totals[part] = totals.get(part, 0.0) + cumulative
        print(f"profile after, per task ({count} tasks; a part may contain another):")
        for part, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
            print(f"  {part:38} {seconds / count:.3f} s")


if __name__ == "__main__":
    main()
