"""`kdreg run` never distils from a head that was never trained, and every run says what it loaded.

The teacher is the tiny world's BERT saved as the bare encoder (a sentence-transformers
layout, no masked-LM head): as safetensors, which the preflight previews, and pickled,
which only the run's real load can judge.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_world import invoke, rows

from kdreg.pipeline import model_cache
from kdreg.testing.tiny import save_tiny_bert


@pytest.fixture(scope="module")
def headless(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("headless")
    return {"safetensors": save_tiny_bert(root / "encoder", mlm_head=False),
            "pickled": save_tiny_bert(root / "pickled", mlm_head=False, safetensors=False)}


def _args(world: dict[str, str], teacher: str, *more: str) -> list[str]:
    return ["run", "--teacher", teacher, "--student", "layers:k=1", "--benchmark", world["benchmark"],
            "--corpus", world["corpus"], "--config", world["grid"], *more]


def _loads(db: Path, stage: str) -> list[dict[str, object]]:
    (environment,) = rows(db, f"SELECT environment FROM runs WHERE stage = '{stage}'")[0]
    return list(json.loads(environment)["loads"])


def test_logit_kd_from_a_missing_mlm_head_is_refused_before_anything_is_written(
        world: dict[str, str], headless: dict[str, Path], kdreg_home: Path) -> None:
    teacher = f"hf:path={headless['safetensors']}"
    for stage in ("pretrain", "both"):
        refused = invoke(*_args(world, teacher, "--loss", "kl", "--stage", f"none,{stage}"))
        assert refused.exit_code == 1
        lines = [line for line in refused.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), refused.output
        assert "no trained masked-LM head" in lines[0] and "allow_new_head=true" in lines[0]
    dry = invoke(*_args(world, teacher, "--loss", "mse", "--stage", "pretrain", "--dry-run"))
    assert dry.exit_code == 1 and "no trained masked-LM head" in dry.output
    assert not (kdreg_home / "kdreg.db").exists() and not model_cache.models_dir().exists()


def test_hidden_state_kd_or_an_explicit_opt_in_runs_and_the_run_shows_its_random_head(
        world: dict[str, str], headless: dict[str, Path], kdreg_home: Path) -> None:
    teacher = f"hf:path={headless['safetensors']}"
    hidden = invoke(*_args(world, teacher, "--loss", "hidden", "--stage", "pretrain"))
    assert hidden.exit_code == 0, hidden.output
    opted = invoke(*_args(world, teacher + ",allow_new_head=true", "--loss", "kl", "--stage", "pretrain"))
    assert opted.exit_code == 0, opted.output
    db = kdreg_home / "kdreg.db"
    assert rows(db, "SELECT loss, status FROM runs ORDER BY id") == [
        ("hidden", "succeeded"), ("kl", "succeeded")]
    loads = _loads(db, "pretrain")  # the first: KD on hidden states
    via = "student distilled in pretraining"
    assert [(e["role"], e["head"], e.get("via")) for e in loads] == [("student", "mlm", via),
                                                                     ("teacher", "mlm", via)]
    assert all(len(e["missing"]) == 6 for e in loads)  # the head the checkpoint lacked, copied by layers:k=1
    shown = invoke("show", "1")
    assert shown.exit_code == 0
    assert (f"teacher {teacher} with a mlm head (via the {via}): 6 head weights initialised randomly "
            "(cls.predictions.*); 2 checkpoint weights unused (pooler.dense.*)") in shown.output


def test_a_teacher_that_cannot_be_previewed_is_refused_by_its_real_load(
        world: dict[str, str], headless: dict[str, Path], kdreg_home: Path) -> None:
    teacher = f"hf:path={headless['pickled']}"
    result = invoke(*_args(world, teacher, "--loss", "kl", "--loss", "hidden", "--stage", "pretrain"))
    assert result.exit_code == 1  # the grid went on past the refused run
    db = kdreg_home / "kdreg.db"
    runs = dict(((loss, (status, error)) for loss, status, error in
                 rows(db, "SELECT loss, status, error FROM runs")))
    assert runs["hidden"][0] == "succeeded"
    status, error = runs["kl"]
    assert status == "failed" and "no trained masked-LM head" in error and "\n" not in error
    built = sorted(p.name.split("-")[0] for p in model_cache.models_dir().iterdir() if p.is_dir())
    assert built == ["student"]


def test_every_run_records_what_it_loaded_through_the_fine_tuned_teacher(
        world: dict[str, str], kdreg_home: Path) -> None:
    result = invoke("run", "--teacher", world["teacher"], "--student", "layers:k=1", "--loss", "kl",
                    "--benchmark", world["benchmark"], "--stage", "finetune", "--config", world["grid"])
    assert result.exit_code == 0, result.output
    db = kdreg_home / "kdreg.db"
    student, teacher = _loads(db, "finetune")
    assert (student["role"], student["head"], student.get("via")) == ("student", "classification", None)
    assert (teacher["role"], teacher["head"], teacher["via"]) == ("teacher", "classification",
                                                                  "fine-tuned teacher")
    assert teacher["missing"] == ["bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias",
                                  "classifier.weight"]
    assert [e["via"] for e in _loads(db, "teacher")] == ["fine-tuned teacher"]
