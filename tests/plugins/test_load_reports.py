"""transformers' loading report, kept instead of silenced, and its preview from weight names alone.

Checkpoints built here: a tiny BERT with its masked-LM head, the same saved as the bare
encoder (a sentence-transformers layout: no head, a pooler), and that one as a pickled
``pytorch_model.bin`` (no safetensors header to preview).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kdreg.errors import DataError, IncompatiblePluginsError
from kdreg.plugins.compatibility import refuse_untrained_mlm_head
from kdreg.plugins.load_report import MAX_KEYS, LoadReport
from kdreg.plugins.spec import Head
from kdreg.testing.tiny import save_tiny_bert
from kdreg_plugins.models.teachers import HFTeacher, HFTeacherParams

HEAD_KEYS = ("cls.predictions.bias", "cls.predictions.decoder.bias",
             "cls.predictions.transform.LayerNorm.bias", "cls.predictions.transform.LayerNorm.weight",
             "cls.predictions.transform.dense.bias", "cls.predictions.transform.dense.weight")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        "with head": save_tiny_bert(root / "with-head"),
        "no head": save_tiny_bert(root / "no-head", mlm_head=False),
        "no head, pickled": save_tiny_bert(root / "pickled", mlm_head=False, safetensors=False),
    }


def _teacher(path: Path) -> HFTeacher:
    return HFTeacher(HFTeacherParams(path=str(path)))


@pytest.mark.parametrize("head", [Head("mlm"), Head("classification", 3)], ids=["mlm", "classification"])
@pytest.mark.parametrize("name", ["with head", "no head"])
def test_the_preview_from_weight_names_is_what_loading_reports(checkpoints: dict[str, Path], name: str,
                                                               head: Head) -> None:
    teacher = _teacher(checkpoints[name])
    preview = teacher.preview_load(head)
    loaded = teacher.load(head).load_report
    assert preview is not None and loaded is not None
    assert preview == loaded


def test_a_checkpoint_without_its_masked_lm_head_reports_a_random_head(checkpoints: dict[str, Path]) -> None:
    report = _teacher(checkpoints["no head"]).load(Head("mlm")).load_report
    assert report is not None
    assert report.new_head == HEAD_KEYS and report.new_encoder == ()
    assert report.unexpected == ("pooler.dense.bias", "pooler.dense.weight")
    assert report.encoder_prefix == "bert"
    assert report.describe() == ("6 head weights initialised randomly (cls.predictions.*); "
                                 "2 checkpoint weights unused (pooler.dense.*)")
    complete = _teacher(checkpoints["with head"]).load(Head("mlm")).load_report
    assert complete is not None and complete.clean
    assert complete.describe() == "all weights loaded from the checkpoint"
    # a classification head is new whatever the checkpoint: expected, and reported as such
    classifier = _teacher(checkpoints["with head"]).load(Head("classification", 2)).load_report
    assert classifier is not None and classifier.new_head == ("classifier.bias", "classifier.weight")


def test_a_pickled_checkpoint_is_not_previewed_but_its_load_reports(checkpoints: dict[str, Path]) -> None:
    teacher = _teacher(checkpoints["no head, pickled"])
    assert teacher.preview_load(Head("mlm")) is None  # no safetensors header: the run checks the real load
    report = teacher.load(Head("mlm")).load_report
    assert report is not None and report.new_head == HEAD_KEYS


def test_the_refusal_names_the_way_out() -> None:
    report = LoadReport(missing=HEAD_KEYS, encoder_prefix="bert")
    with pytest.raises(IncompatiblePluginsError) as refused:
        refuse_untrained_mlm_head(report, teacher="hf:path=/m", loss="kl")
    message = str(refused.value)
    assert "\n" not in message and "hf:path=/m" in message and "loss kl" in message
    for way_out in ("masked-LM head", "hidden", "--stage finetune", "allow_new_head=true"):
        assert way_out in message
    refuse_untrained_mlm_head(LoadReport(missing=("bert.pooler.dense.weight",), encoder_prefix="bert"),
                              teacher="t", loss="kl")  # an encoder part is not the head
    refuse_untrained_mlm_head(None, teacher="t", loss="kl")  # unknown: the run checks


def test_a_stored_report_keeps_long_lists_short_and_reads_back() -> None:
    report = LoadReport(missing=tuple(f"cls.w{i:03d}" for i in range(MAX_KEYS + 5)), unexpected=("x.y",),
                        mismatched=("classifier.weight",), encoder_prefix="bert")
    stored = report.to_json()
    assert len(stored["missing"]) == MAX_KEYS and stored["missing_count"] == MAX_KEYS + 5
    back = LoadReport.from_json(stored)
    assert back.unexpected == ("x.y",) and back.mismatched == ("classifier.weight",)
    assert back.new_head[-1] == "classifier.weight"  # a re-shaped weight is re-initialised too


def test_a_cached_model_missing_its_trained_head_is_a_damaged_cache(checkpoints: dict[str, Path]) -> None:
    from kdreg.pipeline.artifacts import load_cached

    with pytest.raises(DataError, match=r"lacks its trained mlm head.*kdreg cache clear"):
        load_cached(checkpoints["no head"], Head("mlm"))
    with pytest.raises(DataError, match="lacks its trained classification head"):
        load_cached(checkpoints["with head"], Head("classification", 2), fine_tuned=True)
    # a student distilled in pretraining gets a new classifier: that is expected
    loaded = load_cached(checkpoints["with head"], Head("classification", 2))
    assert loaded.load_report is not None and loaded.load_report.new_head == ("classifier.bias",
                                                                             "classifier.weight")


def test_a_preview_is_remembered_and_read_back_without_transformers(
        checkpoints: dict[str, Path], kdreg_home: Path, tmp_path: Path) -> None:
    """The second plan with a teacher reads its preview from the cache: no model is built."""
    import json
    import shutil
    import subprocess
    import sys

    folder = shutil.copytree(checkpoints["no head"], tmp_path / "teacher")
    first = _teacher(folder).preview_load(Head("mlm"))
    remembered = list((kdreg_home / "cache" / "previews").glob("*.json"))
    assert first is not None and first.new_head == HEAD_KEYS and len(remembered) == 1

    script = (
        "import json, sys\n"
        "from kdreg.plugins.spec import Head\n"
        "from kdreg_plugins.models.teachers import HFTeacher, HFTeacherParams\n"
        f"report = HFTeacher(HFTeacherParams(path={str(folder)!r})).preview_load(Head('mlm'))\n"
        "print(json.dumps({'missing': list(report.missing), 'unexpected': list(report.unexpected),\n"
        "                  'imported': sorted(m for m in ('torch', 'transformers') if m in sys.modules)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    again = json.loads(done.stdout)
    assert again == {"missing": list(first.missing), "unexpected": list(first.unexpected), "imported": []}

    # Another configuration is another preview; a damaged entry is previewed again, not believed.
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))
    assert _teacher(folder).preview_load(Head("mlm")) == first
    assert len(list((kdreg_home / "cache" / "previews").glob("*.json"))) == 2
    (folder / "config.json").write_text(json.dumps(config))
    rest = {"unexpected": [], "mismatched": [], "encoder_prefix": ""}
    for damaged in ("{not json", "[]", "null", "{}", '{"missing": null}',
                    json.dumps({"missing": "cls.x", **rest}), json.dumps({"missing": [1, 2], **rest})):
        remembered[0].write_text(damaged)
        assert _teacher(folder).preview_load(Head("mlm")) == first, damaged
        assert json.loads(remembered[0].read_text())["missing"] == list(first.missing), damaged
    assert [p.name for p in remembered[0].parent.iterdir() if p.name.startswith(".")] == []


def test_a_model_with_its_own_code_is_not_previewed(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """Its weight names are its code's to decide: the check waits for the real load."""
    import json
    import shutil

    folder = shutil.copytree(checkpoints["with head"], tmp_path / "custom")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForMaskedLM": "modeling_custom.CustomForMaskedLM"}
    (folder / "config.json").write_text(json.dumps(config))
    assert _teacher(folder).preview_load(Head("mlm")) is None
