"""The built-in `minilm` loss through `kdreg run`: KD in pretraining and in fine-tuning (issue 16 §4).

The tiny world of test_run_cli.py (a saved 2-layer, 32-wide, 2-head BERT teacher). v1 on
a `layers` student (the teacher's head count); v2 on a student of another width and head
count (16 wide, 1 head), which only relation heads make comparable.
"""

from __future__ import annotations

import json
from pathlib import Path

from tiny_world import invoke as _invoke
from tiny_world import rows as _rows

NARROW = "small:layers=1,hidden=16,heads=1,intermediate=32"


def test_minilm_in_both_stages_across_widths_and_head_counts(world: dict[str, str], kdreg_home: Path) -> None:
    common = ["--teacher", world["teacher"], "--benchmark", world["benchmark"], "--corpus", world["corpus"],
              "--config", world["grid"]]
    both = ["--stage", "pretrain,finetune"]
    same_heads = _invoke("run", *common, *both, "--student", "layers:k=1", "--loss", "minilm")
    assert same_heads.exit_code == 0, same_heads.output
    other_heads = _invoke("run", *common, *both, "--student", NARROW, "--loss", "minilm:version=v2")
    assert other_heads.exit_code == 0, other_heads.output
    db = kdreg_home / "kdreg.db"
    runs = _rows(db, "SELECT id, stage, student, loss_spec, status FROM runs WHERE stage != 'teacher' "
                     "AND loss_spec LIKE 'minilm%' ORDER BY student, stage")
    assert [row[1:] for row in runs] == [
        ("finetune", "layers", "minilm", "succeeded"),
        ("pretrain", "layers", "minilm", "succeeded"),
        ("finetune", "small", "minilm:version=v2", "succeeded"),
        ("pretrain", "small", "minilm:version=v2", "succeeded"),
    ]
    curves = {(run_id, phase): json.loads(losses)
              for run_id, phase, losses in _rows(db, "SELECT run_id, phase, losses FROM curves")}
    kd = [curves[run_id, f"{stage}_kd"] for run_id, stage, *_ in runs]
    assert [len(c) for c in kd] == [6, 4, 6, 4]
    assert all(value > 0 and value == value for c in kd for value in c)  # KL of two different models
    # in fine-tuning, with a task loss beside it (what the README advises)
    paired = _invoke("run", *common, "--stage", "finetune", "--student", "layers:k=1", "--loss", "kl+minilm")
    assert paired.exit_code == 0, paired.output
    paired_runs = _rows(db, "SELECT stage, status FROM runs WHERE loss_spec = 'kl+minilm'")
    assert paired_runs == [("finetune", "succeeded")]
    # v1 with the wrong head count is refused before training, naming the fix
    refused = _invoke("run", *common, "--stage", "finetune", "--student", NARROW, "--loss", "minilm")
    assert refused.exit_code == 1
    error = _rows(db, "SELECT error FROM runs WHERE loss_spec = 'minilm' AND student = 'small'")[0][0]
    assert "minilm:version=v2" in error and "\n" not in error
