"""`kdreg run` end to end with a live teacher, `--lang` selection, and students with other vocabularies.

The tiny world of test_run_cli.py (a saved 2-layer BERT teacher, the `files` benchmark in
en/de/fr, a `text` corpus); everything trains for real for a few steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_world import invoke as _invoke
from tiny_world import rows as _rows

from kdreg.grid import expand_grid
from kdreg.pipeline import model_cache
from kdreg.plugins.resolve import PluginSet
from kdreg.request import build_request
from kdreg.testing.tiny import DEFAULT_WORDS, save_tiny_bert

# 1 layer, 16 wide, 1 head against the teacher's 2 × 32 × 2: the hidden loss needs its projection
# and the attention loss must average heads.
NARROW = "small:layers=1,hidden=16,heads=1,intermediate=32"


def _cached_kinds() -> list[str]:
    return sorted(p.name.rsplit("-", 1)[0] for p in model_cache.models_dir().iterdir() if p.is_dir())


def test_live_teacher_losses_in_finetune_and_pretrain(world: dict[str, str], kdreg_home: Path) -> None:
    result = _invoke("run", "--teacher", world["teacher"], "--student", NARROW,
                     "--loss", "kl+0.5*hidden", "--loss", "attention:heads=average",
                     "--benchmark", world["benchmark"], "--corpus", world["corpus"],
                     "--stage", "finetune,pretrain", "--config", world["grid"])
    assert result.exit_code == 0, result.output
    db = kdreg_home / "kdreg.db"
    runs = _rows(db, "SELECT id, stage, loss_spec, status FROM runs ORDER BY id")
    assert [row[1:] for row in runs] == [
        ("teacher", None, "succeeded"),
        ("finetune", "kl+0.5*hidden", "succeeded"),
        ("finetune", "attention:heads=average", "succeeded"),
        ("pretrain", "kl+0.5*hidden", "succeeded"),
        ("pretrain", "attention:heads=average", "succeeded"),
    ]
    curves = {(run_id, phase): json.loads(losses)
              for run_id, phase, losses in _rows(db, "SELECT run_id, phase, losses FROM curves")}
    ids = [row[0] for row in runs]
    # KD against the fine-tuned teacher, and KD against the pre-trained teacher (then hard labels)
    kd = [curves[ids[1], "finetune_kd"], curves[ids[2], "finetune_kd"],
          curves[ids[3], "pretrain_kd"], curves[ids[4], "pretrain_kd"]]
    assert all(len(c) == n for c, n in zip(kd, (6, 6, 4, 4), strict=True))
    assert all(value == value and value >= 0 for c in kd for value in c)
    assert kd[0] != kd[1] and kd[2] != kd[3]  # two different objectives
    assert (ids[3], "finetune") in curves and (ids[4], "finetune") in curves
    per_run = dict(_rows(db, "SELECT run_id, COUNT(*) FROM results WHERE split != 'model' GROUP BY run_id"))
    assert per_run == {run_id: 3 * 2 * 2 for run_id in ids}  # besides its model's size (split 'model')
    # one fine-tuned teacher for both KD losses; one distilled student per pretraining loss
    assert result.output.count("fine-tuning teacher") == 1
    assert _cached_kinds() == ["student-pretrained", "student-pretrained", "teacher"]


def test_lang_selects_targets_the_source_always_and_refuses_unknown_codes(world: dict[str, str],
                                                                          kdreg_home: Path) -> None:
    base = ["run", "--teacher", world["teacher"], "--student", "layers:k=1",
            "--benchmark", world["benchmark"], "--stage", "teacher,none", "--config", world["grid"]]
    unknown = _invoke(*base, "--lang", "de,xx")
    assert unknown.exit_code == 1
    lines = [line for line in unknown.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "xx" in lines[0] and "en, de, fr" in lines[0]
    assert not (kdreg_home / "kdreg.db").exists()
    bad_device = _invoke(*base, "--device", "tpu")  # checked before the database is opened, too
    assert bad_device.exit_code == 1 and "Unknown device 'tpu'" in bad_device.output
    assert not (kdreg_home / "kdreg.db").exists()

    assert _invoke(*base, "--lang", "DE").exit_code == 0
    db = kdreg_home / "kdreg.db"
    assert sorted(_rows(db, "SELECT DISTINCT language, lang, is_source FROM results")) == [
        ("de", "de", 0), ("en", "en", 1)]
    # the runs record the codes the benchmark evaluated, in its order
    assert [json.loads(config)["languages"] for (config,) in _rows(db, "SELECT config FROM runs")] == [
        ["en", "de"], ["en", "de"]]
    # the same selection, spelled otherwise, is the same two runs
    again = _invoke(*base, "--lang", "en,deu", "--dry-run")
    assert again.exit_code == 0 and "0 to run, 2 skipped" in again.output


def test_every_language_selected_is_the_same_run_as_no_selection(world: dict[str, str]) -> None:
    def hashes(**options: list[str]) -> list[str]:
        request = build_request({"teacher": [world["teacher"]], "benchmark": [world["benchmark"]],
                                 "student": ["layers:k=1"], "stage": ["none"], **options})
        return [job.record.config_hash for job in expand_grid(request, PluginSet())]

    assert hashes(lang=["fr", "de"]) == hashes() == hashes(lang=["EN", "fr", "de"])
    assert hashes(lang=["de"]) != hashes()


@pytest.fixture(scope="module")
def other_vocabulary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT whose tokenizer is not the teacher's: other ids, other size."""
    words = (*reversed(DEFAULT_WORDS), "tea", "coffee")
    return save_tiny_bert(tmp_path_factory.mktemp("other-vocab"), words=words, layers=1, hidden=16, heads=2,
                          intermediate=32, seed=3)


def test_students_with_their_own_vocabulary(world: dict[str, str], kdreg_home: Path,
                                            other_vocabulary: Path) -> None:
    args = ["run", "--teacher", world["teacher"], "--student", f"hf:path={other_vocabulary}",
            "--loss", "kl", "--loss", "hidden", "--benchmark", world["benchmark"],
            "--corpus", world["corpus"], "--config", world["grid"]]
    # KD during pretraining compares the two models token by token: refused before any teacher trains
    refused = _invoke(*args, "--stage", "finetune,pretrain")
    assert refused.exit_code == 1
    lines = [line for line in refused.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "share a tokenizer" in lines[0] and "layers:k=N or small" in lines[0]
    assert not (kdreg_home / "kdreg.db").exists() and not model_cache.models_dir().exists()

    first = _invoke(*args, "--stage", "finetune")
    assert first.exit_code == 1  # the grid went on past the failure, and says so
    db = kdreg_home / "kdreg.db"
    runs = {(stage, loss): (run_id, status, error) for run_id, stage, loss, status, error in
            _rows(db, "SELECT id, stage, loss, status, error FROM runs")}
    # logit KD in fine-tuning works across vocabularies: the teacher's class scores are looked up per example
    assert runs["teacher", None][1] == runs["finetune", "kl"][1] == "succeeded"
    # hidden states are compared token by token: refused, naming what to do, before training
    run_id, status, error = runs["finetune", "hidden"]
    assert status == "failed" and "IncompatiblePluginsError: " in error and "kl, mse" in error
    assert "\n" not in error
    assert _rows(db, f"SELECT COUNT(*) FROM curves WHERE run_id = {run_id}") == [(0,)]
    assert _cached_kinds() == ["teacher"]
    assert first.output.count("fine-tuning teacher") == 1

    stopped = _invoke(*args, "--stage", "finetune", "--retry-failed", "--fail-fast")
    assert stopped.exit_code == 1
    errors = [line for line in stopped.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--fail-fast" in errors[0] and "IncompatiblePluginsError" in errors[0]
    assert _rows(db, "SELECT COUNT(*) FROM runs WHERE status = 'failed'") == [(1,)]
