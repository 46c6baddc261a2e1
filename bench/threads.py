"""kdreg's thread policy on a quiet machine and on a busy one, against torch's default, side by side.

Each measurement is a fresh process (OpenMP reads its settings once, at torch's import)
that trains a small student against a live teacher with kdreg's own training loop
(``kdreg.pipeline.training.train``, a KL loss, length-grouped batches) and reports
optimiser steps per second: the median of several windows after a warm-up. It runs

* **quiet** — nothing else on the machine;
* **busy** — with two busy-loop processes, started by this script, competing for the cores.

for the **old** policy (torch's defaults: OpenMP threads spin while waiting, one thread
per core) and kdreg's **new** one (``kdreg.threads``: a brief spin, then passive waiting);
and, as a **reference** for what the machine gives any process under that load, plain
matrix products (no kdreg, the new policy's threads) shaped like the teacher's feed-forward
layer: their busy/quiet ratio is the share the operating system grants a process with as
many threads as cores beside two spinning ones (a reference, not a bound: a training step's
many small operations suffer a descheduled thread differently). Goals
(issue 15): new/old quiet ≥ 0.95 (no cost on a quiet machine) and new busy / new quiet ≥
0.5 (the fair share of a machine that two other processes want). To show where a ratio below that
goes, each side also reports the CPU it was given (cores: CPU seconds per second) and the work
it did per CPU second.

    python bench/threads.py [--steps 40] [--windows 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import json, os, statistics, sys, time
policy, folder, steps, windows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if policy in ("new", "reference"):
    from kdreg.threads import prepare_threads
    prepare_threads()
import torch
if policy == "reference":  # no kdreg: plain matrix products shaped like the teacher's feed-forward layer
    x, w = torch.randn(32 * 64, 256), torch.randn(256, 1024)
    def products(seconds):
        started, n = time.perf_counter(), 0
        while time.perf_counter() - started < seconds:
            for _ in range(10):
                x @ w
            n += 10
        return n / (time.perf_counter() - started)
    products(0.5)
    cpu, wall = time.process_time(), time.perf_counter()
    rates = [products(1.0) for _ in range(windows)]
    print(json.dumps({"steps_per_s": statistics.median(rates), "threads": torch.get_num_threads(),
                      "cores": (time.process_time() - cpu) / (time.perf_counter() - wall)}))
    sys.exit(0)
from transformers import AutoModelForMaskedLM
from kdreg.pipeline.training import Device, train
from kdreg.plugins.spec import ModelOutputs
from kdreg.plugins.registry import registry

device = Device("cpu")
teacher = AutoModelForMaskedLM.from_pretrained(folder + "/teacher").eval()
student = AutoModelForMaskedLM.from_pretrained(folder + "/student")
loss = registry().resolve("loss", "kl:temperature=2").create()
g = torch.Generator().manual_seed(0)
batches = [{"input_ids": torch.randint(5, 100, (32, 64), generator=g),
            "attention_mask": torch.ones(32, 64, dtype=torch.long),
            "labels": torch.randint(5, 100, (32, 64), generator=g)} for _ in range(8)]

def endless():
    while True:
        yield from batches

def side(batch):
    with torch.no_grad():
        return ModelOutputs(logits=teacher(input_ids=batch["input_ids"],
                                           attention_mask=batch["attention_mask"]).logits)

def rate(n):
    started = time.perf_counter()
    train(device, student=student, loss=loss, stage="pretrain", batches=endless(), total_steps=n,
          learning_rate=1e-4, weight_decay=0.0, warmup_ratio=0.0, teacher_side=side)
    return n / (time.perf_counter() - started)

rate(max(2, steps // 4))  # warm-up
cpu, wall = time.process_time(), time.perf_counter()
rates = [rate(steps) for _ in range(windows)]
print(json.dumps({"steps_per_s": statistics.median(rates), "threads": torch.get_num_threads(),
                  "cores": (time.process_time() - cpu) / (time.perf_counter() - wall),
                  "wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default: spin)")
                                 + (f", GOMP_SPINCOUNT={os.environ['GOMP_SPINCOUNT']}"
                                    if "GOMP_SPINCOUNT" in os.environ else "")}))
"""


def busy_loop() -> None:
    while True:
        pass


def measure(policy: str, folder: Path, steps: int, windows: int) -> dict[str, float]:
    policy_variables = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in policy_variables}
    done = subprocess.run([sys.executable, "-c", WORKER, policy, str(folder), str(steps), str(windows)],
                          capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--windows", type=int, default=5)
    args = parser.parse_args()
    from kdreg.testing.tiny import save_tiny_bert

    words = [f"w{i}" for i in range(120)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_tiny_bert(folder / "teacher", words=words, layers=4, hidden=256, heads=4, intermediate=1024)
        save_tiny_bert(folder / "student", words=words, layers=2, hidden=128, heads=2, intermediate=512,
                       seed=1)
        print(f"cores: {os.cpu_count()} · load average before: {os.getloadavg()[0]:.2f}")
        results: dict[tuple[str, str], dict[str, float]] = {}
        for load in ("quiet", "busy"):
            hogs = []
            if load == "busy":
                hogs = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(2)]
                for hog in hogs:
                    hog.start()
                time.sleep(1)
            try:
                for policy in ("old", "new", "reference"):
                    results[load, policy] = measure(policy, folder, args.steps, args.windows)
            finally:
                for hog in hogs:
                    hog.terminate()
            for policy in ("old", "new"):
                r = results[load, policy]
                print(f"{load:5} {policy}: {r['steps_per_s']:6.2f} steps/s on {r['cores']:.2f} cores "
                      f"({r['threads']} threads, OMP_WAIT_POLICY={r['wait_policy']})")
    rate = {key: r["steps_per_s"] for key, r in results.items()}
    print(f"new / old, quiet: {rate['quiet', 'new'] / rate['quiet', 'old']:.2f}× (goal ≥ 0.95)")
    print(f"busy / quiet, new: {rate['busy', 'new'] / rate['quiet', 'new']:.2f}× (goal ≥ 0.5)")
    print(f"busy / quiet, old: {rate['busy', 'old'] / rate['quiet', 'old']:.2f}×")
    print(f"new / old, busy: {rate['busy', 'new'] / rate['busy', 'old']:.2f}×")
    reference = rate["busy", "reference"] / rate["quiet", "reference"]
    print(f"plain matrix products ({results['quiet', 'reference']['threads']} threads): "
          f"{rate['quiet', 'reference']:.0f}/s quiet, {rate['busy', 'reference']:.0f}/s busy")
    print(f"busy / quiet, plain matrix products (the share the OS grants): {reference:.2f}×; "
          f"new policy against it: {rate['busy', 'new'] / rate['quiet', 'new'] / reference:.2f}×")
    # Where the busy/quiet ratio goes: the CPU the process was given (cores = its CPU seconds per
    # second) and what it made of each CPU second. Beside two busy loops, the scheduler's fair
    # share for two threads is one core of two; a thread that sleeps while it waits gives its turn away.
    for policy in ("new", "reference"):
        quiet, busy = results["quiet", policy], results["busy", policy]
        work = (busy["steps_per_s"] / busy["cores"]) / (quiet["steps_per_s"] / quiet["cores"])
        print(f"{policy}: {quiet['cores']:.2f} cores quiet, {busy['cores']:.2f} busy "
              f"({busy['cores'] / quiet['cores']:.2f}×); work per CPU second busy / quiet {work:.2f}×")


if __name__ == "__main__":
    main()
