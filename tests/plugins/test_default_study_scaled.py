"""The default study's design, scaled down and run end to end through the real ``kdreg run``.

The default grid (``kdreg/default_grid.toml``) has two synthetic teachers of different
capacity, each with its students through every stage, and a soft-target KD loss. Its
real run takes minutes, so this test keeps the design — two teacher sizes, every stage,
the same loss, two seeds so that intervals exist — on a tiny world with tiny models, and
checks what the issue asks of it: the claims block ends the run, and each verdict is
what its numbers say (the same paired comparison ``kdreg compare`` gives, judged by the
documented rule: the 95 % interval on the claimed side of 0 supports, on the other side
contradicts, containing 0 is inconclusive).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomllib

from kdreg.request import DEFAULT_GRID

WORLD = ("languages=2,topics=3,nouns_per_topic=2,verbs_per_topic=1,generic_nouns=2,generic_verbs=1,"
         "adjectives=1")
TEACHER = f"synthetic:{WORLD},documents=600,heads=2,steps=200,batch_size=16"
SMALL = f"{TEACHER},layers=1,hidden=16,intermediate=32"
LARGE = f"{TEACHER},layers=2,hidden=32,intermediate=64"
STAGES = ["none", "finetune", "pretrain", "both"]
SMALL_SPEC, LARGE_SPEC = ("synthetic:" + ",".join(sorted(spec.removeprefix("synthetic:").split(",")))
                          for spec in (SMALL, LARGE))
"""Each teacher's spec as kdreg writes it (parameters sorted)."""


def _grid(default: dict[str, Any]) -> str:
    """The default grid's keys with a tiny world, tiny models and few steps."""
    return f"""
teacher = ["{SMALL}", "{LARGE}"]
student = "synthetic:layers=1,hidden=32,heads=2,intermediate=64"
loss = "{default['loss']}"
benchmark = "synthetic:{WORLD},train_examples=150,eval_examples=30"
corpus = "synthetic:{WORLD},documents=400"
stage = {json.dumps(default['stage'])}
seed = [0, 1]
[teacher_finetune]
epochs = 10.0
learning_rate = 3e-3
batch_size = 16
[finetune]
epochs = 10.0
learning_rate = 3e-3
batch_size = 16
[pretrain]
max_steps = 60
batch_size = 16
mlm_probability = 0.4
"""


def _verdict_of(measures: list[dict[str, Any]], direction: int) -> str:
    """The documented rule, applied to ``kdreg compare``'s numbers."""
    found = set()
    for m in measures:
        if m["n"] < 2 or m["ci_low"] is None:
            continue
        if m["ci_low"] > 0 or m["ci_high"] < 0:
            found.add("supported" if (m["ci_low"] > 0) == (direction > 0) else "contradicted")
    if len(found) == 1:
        return found.pop()
    return "inconclusive"


def _zero_shot(kdreg_cli: Any, *args: str) -> list[dict[str, Any]]:
    done = kdreg_cli("compare", *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    comparisons = json.loads(done.stdout)["comparisons"]
    return [m for c in comparisons for m in c["measures"] if m["column"] == "zero_shot"]


def test_the_default_grid_has_both_teacher_sizes_every_stage_and_soft_targets() -> None:
    default = tomllib.loads(DEFAULT_GRID.read_text(encoding="utf-8"))
    assert default["teacher"] == ["synthetic", "synthetic:size=large"]
    assert default["stage"] == STAGES
    assert default["loss"].startswith("kl:") and "temperature=4" in default["loss"]


@pytest.mark.slow
def test_a_scaled_down_default_study_ends_with_claims_that_follow_from_its_numbers(
        kdreg_cli: Any, tmp_path: Path) -> None:
    default = tomllib.loads(DEFAULT_GRID.read_text(encoding="utf-8"))
    grid = tmp_path / "grid.toml"
    grid.write_text(_grid(default))
    run = kdreg_cli("run", "--config", str(grid), "--device", "cpu")
    assert run.returncode == 0, run.stderr
    assert "20 to run" in run.stderr  # 2 teachers × 2 seeds × (teacher row + 4 stages)
    # each run stored the benchmark's chance level of what it scored: this world's three topics, 1/3
    chance = kdreg_cli("query", "--split", "chance", "--metric", "accuracy", "--format", "json")
    assert chance.returncode == 0, chance.stderr
    levels = [row["source"] for row in json.loads(chance.stdout)]
    assert len(levels) == 20 and levels == pytest.approx([1 / 3] * 20)
    block = " ".join(run.stdout[run.stdout.index("Claims of the seed study"):].split())

    done = kdreg_cli("claims", "--format", "json")
    assert done.returncode == 0, done.stderr
    claims = {c["number"]: c for c in json.loads(done.stdout)["claims"]}
    for number, claim in claims.items():  # the block under the run's table says what `kdreg claims` says
        assert f"{number}. {claim['claim']}: {claim['verdict'].upper()}" in block

    # claim 1: pretrain (A) − finetune (B) on the zero-shot average, A > B claimed
    one = _zero_shot(kdreg_cli, "--a", "stage=pretrain", "--b", "stage=finetune")
    assert [m["n"] for m in one] == [4]  # a pair per teacher and seed
    assert claims[1]["verdict"] == _verdict_of(one, +1)
    assert sorted(e["delta"] for e in claims[1]["evidence"]) == pytest.approx(
        sorted(m["delta"] for m in one))
    # claim 2: finetune − none and both − pretrain, A < B claimed
    two = (_zero_shot(kdreg_cli, "--a", "stage=finetune", "--b", "stage=none")
           + _zero_shot(kdreg_cli, "--a", "stage=both", "--b", "stage=pretrain"))
    assert claims[2]["verdict"] == _verdict_of(two, -1)
    # claim 3: students of the larger teacher (by its recorded parameter count) − the smaller's
    assert claims[3]["compared"].startswith(f"students of {LARGE_SPEC} (")  # A: the larger, by parameters
    assert f"− students of {SMALL_SPEC} (" in claims[3]["compared"] and claims[3]["evidence"]
    measures = claims[3]["evidence"]  # each a measure with its verdict
    assert claims[3]["verdict"] == _verdict_of(measures, +1)
    assert {m["column"] for m in measures} >= {"zero_shot"}
