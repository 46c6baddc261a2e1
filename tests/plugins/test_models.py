"""The built-in teachers and students, on tiny real models saved to disk (no network).

Every model here is a real transformers model with random weights written by
``save_pretrained`` (BERT through ``kdreg.testing.tiny``, plus XLM-R- and
DistilBERT-style configs built here), loaded by path through the same calls the hub
models take. Hub ids are tested only for the offline failure, with an empty cache.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kdreg.errors import IncompatiblePluginsError, ModelUnavailableError, ParameterError
from kdreg.plugins.registry import registry
from kdreg.plugins.spec import Head, LoadedModel, Teacher
from kdreg.testing.tiny import save_tiny_bert
from kdreg_plugins.models.students import LayersStudent, SmallStudent, spread
from kdreg_plugins.models.teachers import HFTeacher


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache (env and the constant huggingface_hub read at import), offline."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache / "hub"))
    return cache


@pytest.fixture(scope="module")
def tiny_bert4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-layer tiny BERT, for students that keep some of its layers."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert4"), layers=4, seed=1)


def save_tiny_family(path: Path, family: str, tokenizer_dir: Path, layers: int = 2) -> Path:
    """A tiny XLM-R or DistilBERT masked LM saved with the tiny BERT tokenizer (same vocabulary)."""
    import torch
    from transformers import (
        AutoTokenizer,
        DistilBertConfig,
        DistilBertForMaskedLM,
        XLMRobertaConfig,
        XLMRobertaForMaskedLM,
    )

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(2)
    if family == "xlmr":
        model: Any = XLMRobertaForMaskedLM(XLMRobertaConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id,
        ))
    else:
        model = DistilBertForMaskedLM(DistilBertConfig(
            vocab_size=len(tokenizer), dim=32, n_layers=layers, n_heads=2, hidden_dim=64,
            max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
        ))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def saved_weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def teacher_at(path: Path) -> Teacher:
    return registry().resolve("teacher", f"hf:path={path}").create()


def encode(loaded: LoadedModel, text: str = "hello world der w1") -> Any:
    return loaded.tokenizer(text, return_tensors="pt")


# ------------------------------------------------------------------ teachers
def test_teacher_from_path_loads_saved_mlm_weights(tiny_bert: Path) -> None:
    import torch

    loaded = teacher_at(tiny_bert).load(Head("mlm"))
    assert type(loaded.model).__name__ == "BertForMaskedLM"
    assert loaded.model.dtype == torch.float32
    state = loaded.model.state_dict()
    saved = saved_weights(tiny_bert)
    assert saved  # the file really holds weights
    for key, tensor in saved.items():
        assert torch.equal(state[key], tensor), key
    vocab = (tiny_bert / "vocab.txt").read_text().split()
    ids = loaded.tokenizer("hello world")["input_ids"]
    assert ids == [vocab.index(t) for t in ("[CLS]", "hello", "world", "[SEP]")]
    with torch.no_grad():
        logits = loaded.model(**encode(loaded)).logits
    assert logits.shape[-1] == loaded.model.config.vocab_size


def test_teacher_classification_head_gets_num_labels(tiny_bert: Path) -> None:
    import torch

    loaded = teacher_at(tiny_bert).load(Head("classification", 3))
    assert loaded.model.config.num_labels == 3
    saved = saved_weights(tiny_bert)
    encoder_key = "bert.encoder.layer.1.attention.self.query.weight"
    assert torch.equal(loaded.model.state_dict()[encoder_key], saved[encoder_key])
    with torch.no_grad():
        assert loaded.model(**encode(loaded)).logits.shape == (1, 3)


def test_loading_prints_no_report_and_restores_verbosity(
    tiny_bert: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_warning()
    try:
        teacher_at(tiny_bert).load(Head("classification", 2))  # a new head: transformers would report it
        out, err = capfd.readouterr()
        assert out == "" and err == ""
        assert hf_logging.get_verbosity() == hf_logging.WARNING
    finally:
        hf_logging.set_verbosity_warning()


# ------------------------------------------------------------- offline errors
@pytest.mark.parametrize(("kind", "name"), [("teacher", "mbert"), ("teacher", "xlmr-large"),
                                            ("student", "distilmbert")])
def test_offline_hub_model_is_a_one_line_error(kind: str, name: str, tiny_bert: Path) -> None:
    plugin = registry().resolve(kind, name).create()
    for attempt in (plugin.check, lambda: plugin.load(Head("mlm")) if kind == "teacher"
                    else plugin.build(teacher_at(tiny_bert), Head("mlm"))):
        with pytest.raises(ModelUnavailableError) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message
        assert f"--{kind} hf:path=" in message
        assert "not in the local Hugging Face cache" in message and "HF_HOME" in message
        assert plugin.source().location in message


def test_missing_local_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    teacher = teacher_at(missing)
    for attempt in (teacher.check, lambda: teacher.load(Head("mlm"))):
        with pytest.raises(ModelUnavailableError, match="does not exist") as info:
            attempt()
        assert str(missing) in str(info.value) and "\n" not in str(info.value)


def test_folder_without_model_fails_check(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelUnavailableError, match=r"no config\.json"):
        teacher_at(tmp_path).check()


def test_teacher_parameters_are_validated() -> None:
    with pytest.raises(ParameterError, match="needs path"):
        registry().resolve("teacher", "hf")
    with pytest.raises(ParameterError, match="no parameter 'path'"):
        registry().resolve("teacher", "mbert:path=/x")


# ------------------------------------------------------------------ students
def test_hf_student_has_its_own_model_and_tokenizer(tiny_bert: Path, tiny_bert4: Path) -> None:
    student = registry().resolve("student", f"hf:path={tiny_bert4}").create()
    loaded = student.build(teacher_at(tiny_bert), Head("classification", 2))
    assert loaded.model.config.num_hidden_layers == 4
    assert loaded.model.config.num_labels == 2
    assert loaded.tokenizer.name_or_path == str(tiny_bert4)


def test_spread_is_every_other_layer_at_half() -> None:
    assert spread(12, 6) == [0, 2, 4, 6, 8, 10]
    assert spread(4, 2) == [0, 2]
    assert spread(2, 1) == [0]
    assert spread(12, 4) == [0, 3, 6, 9]
    assert spread(6, 6) == list(range(6))


def _layer_tensors(model: Any, prefix: str, index: int) -> dict[str, Any]:
    start = f"{prefix}.{index}."
    return {k[len(start):]: v for k, v in model.state_dict().items() if k.startswith(start)}


def assert_layers_copied(student: Any, teacher: Any, prefix: str, kept: list[int]) -> None:
    import torch

    for student_index, teacher_index in enumerate(kept):
        mine = _layer_tensors(student, prefix, student_index)
        theirs = _layer_tensors(teacher, prefix, teacher_index)
        assert mine and mine.keys() == theirs.keys()
        for name in mine:
            assert torch.equal(mine[name], theirs[name]), (student_index, teacher_index, name)
    assert not _layer_tensors(student, prefix, len(kept))
    outside = {k: v for k, v in teacher.state_dict().items() if not k.startswith(prefix + ".")}
    student_state = student.state_dict()
    for key, tensor in outside.items():  # embeddings and head
        assert torch.equal(student_state[key], tensor), key


def test_layers_k1_from_two_layer_teacher(tiny_bert: Path) -> None:
    import torch

    teacher = teacher_at(tiny_bert)
    reference = teacher.load(Head("mlm"))
    built = registry().resolve("student", "layers:k=1").create().build(teacher, Head("mlm"))
    assert built.model.config.num_hidden_layers == 1
    assert_layers_copied(built.model, reference.model, "bert.encoder.layer", [0])
    assert built.tokenizer.get_vocab() == reference.tokenizer.get_vocab()
    assert built.model.cls.predictions.decoder.weight is built.model.bert.embeddings.word_embeddings.weight
    with torch.no_grad():
        assert built.model(**encode(built)).logits.shape[-1] == reference.model.config.vocab_size


def test_layers_k2_from_four_layer_teacher_keeps_classifier(tiny_bert4: Path) -> None:
    import torch

    teacher = teacher_at(tiny_bert4)
    torch.manual_seed(7)
    reference = teacher.load(Head("classification", 3))  # the new head is drawn from the seeded RNG
    torch.manual_seed(7)
    built = LayersStudent(LayersStudent.Params(k=2)).build(teacher, Head("classification", 3))
    assert built.model.config.num_hidden_layers == 2 and built.model.config.num_labels == 3
    assert_layers_copied(built.model, reference.model, "bert.encoder.layer", [0, 2])
    assert torch.equal(built.model.classifier.weight, reference.model.classifier.weight)


def test_layers_default_is_half_the_teacher(tiny_bert4: Path) -> None:
    built = LayersStudent().build(teacher_at(tiny_bert4), Head("mlm"))
    assert built.model.config.num_hidden_layers == 2


@pytest.mark.parametrize(("family", "prefix"), [("xlmr", "roberta.encoder.layer"),
                                                ("distilbert", "distilbert.transformer.layer")])
def test_layers_works_for_other_families(family: str, prefix: str, tiny_bert: Path, tmp_path: Path) -> None:
    import torch

    folder = save_tiny_family(tmp_path / family, family, tiny_bert, layers=2)
    teacher = teacher_at(folder)
    reference = teacher.load(Head("mlm"))
    built = LayersStudent(LayersStudent.Params(k=1)).build(teacher, Head("mlm"))
    assert built.model.config.num_hidden_layers == 1
    assert_layers_copied(built.model, reference.model, prefix, [0])
    with torch.no_grad():
        assert built.model(**encode(built)).logits.shape[-1] == len(reference.tokenizer)
    saved = tmp_path / "student"
    built.model.save_pretrained(saved)  # the pruned config round-trips
    assert teacher_at(saved).load(Head("mlm")).model.config.num_hidden_layers == 1


def test_layers_validates_k(tiny_bert: Path) -> None:
    with pytest.raises(ParameterError, match="must be 1 to 1024"):
        registry().resolve("student", "layers:k=0")
    with pytest.raises(ParameterError, match="must be 1 to 1024"):
        registry().resolve("student", "layers:k=5000")
    # issue 14: beyond 64 bits it overflowed in the run and was stored as a failed run
    with pytest.raises(ParameterError, match=r"layers:k = 9999.* is out of range: it must be an integer"):
        registry().resolve("student", "layers:k=99999999999999999999999")
    with pytest.raises(ParameterError, match="1 <= k <= 2"):
        LayersStudent(LayersStudent.Params(k=3)).build(teacher_at(tiny_bert), Head("mlm"))


def test_small_has_teacher_vocabulary_and_requested_geometry(tiny_bert: Path) -> None:
    import torch

    teacher = teacher_at(tiny_bert)
    spec = "small:layers=3,hidden=24,heads=4,intermediate=40"
    built = registry().resolve("student", spec).create().build(teacher, Head("mlm"))
    config = built.model.config
    assert (config.num_hidden_layers, config.hidden_size) == (3, 24)
    assert (config.num_attention_heads, config.intermediate_size) == (4, 40)
    assert config.vocab_size == teacher.load_config().vocab_size
    assert built.tokenizer.get_vocab() == teacher.load_tokenizer().get_vocab()
    assert built.model.bert.embeddings.word_embeddings.weight.shape == (config.vocab_size, 24)
    with torch.no_grad():
        assert built.model(**encode(built)).logits.shape[-1] == config.vocab_size
    classifier = SmallStudent(SmallStudent.Params(layers=1, hidden=8, heads=2, intermediate=16))
    assert classifier.build(teacher, Head("classification", 5)).model.config.num_labels == 5


def test_small_is_seeded_by_the_caller(tiny_bert: Path) -> None:
    import torch

    teacher = teacher_at(tiny_bert)
    student = SmallStudent(SmallStudent.Params(layers=1, hidden=8, heads=2, intermediate=16))
    weights = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        weights.append(student.build(teacher, Head("mlm")).model.bert.encoder.layer[0].output.dense.weight)
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


class FolderTeacher(Teacher):
    """A third-party-style teacher with only the contract's ``load`` (no config/tokenizer shortcut)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def load(self, head: Head) -> LoadedModel:
        return HFTeacher(HFTeacher.Params(path=str(self.folder))).load(head)


def test_small_and_layers_need_only_the_teacher_contract(tiny_bert: Path, tmp_path: Path) -> None:
    teacher = FolderTeacher(save_tiny_family(tmp_path / "distil", "distilbert", tiny_bert))
    geometry = SmallStudent.Params(layers=1, hidden=16, heads=4, intermediate=24)
    small = SmallStudent(geometry).build(teacher, Head("mlm"))
    config = small.model.config
    assert type(small.model).__name__ == "DistilBertForMaskedLM"
    assert (config.n_layers, config.dim, config.n_heads, config.hidden_dim) == (1, 16, 4, 24)
    assert LayersStudent().build(teacher, Head("mlm")).model.config.n_layers == 1


def test_small_validates_geometry() -> None:
    with pytest.raises(ParameterError, match="multiple of heads"):
        registry().resolve("student", "small:hidden=100,heads=12")
    with pytest.raises(ParameterError, match="small:layers must be 1 to 1,024"):
        registry().resolve("student", "small:layers=0")
    with pytest.raises(ParameterError, match="small:hidden must be 1 to 65,536"):
        registry().resolve("student", "small:hidden=99999999,heads=1")


def test_layers_refuses_a_model_without_a_layer_list(tiny_bert: Path) -> None:
    class Flat(FolderTeacher):
        def load(self, head: Head) -> LoadedModel:
            loaded = super().load(head)
            loaded.model.bert.encoder.blocks = loaded.model.bert.encoder.layer  # renamed: nothing to find
            del loaded.model.bert.encoder.layer
            return loaded

    with pytest.raises(IncompatiblePluginsError, match="cannot find the 2 transformer layers"):
        LayersStudent().build(Flat(tiny_bert), Head("mlm"))


# ------------------------------------------------------------------ mBERT vocabulary
def test_real_mbert_vocabulary(shared_data: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    vocab_dir = shared_data / "mbert-vocab"
    if not (vocab_dir / "vocab.txt").is_file():
        pytest.skip("../shared/data/mbert-vocab is absent")
    assert AutoTokenizer.from_pretrained(vocab_dir)("Hello world")["input_ids"] == [101, 31178, 11356, 102]
    folder = save_tiny_bert(tmp_path / "mbert-tiny", layers=1, hidden=32, vocab_file=vocab_dir / "vocab.txt")
    loaded = teacher_at(folder).load(Head("mlm"))
    assert loaded.tokenizer("Hello world")["input_ids"] == [101, 31178, 11356, 102]
    assert loaded.model.config.vocab_size == len(loaded.tokenizer) > 100_000


# ------------------------------------------------------------------ registry and imports
def test_every_model_plugin_has_a_one_line_summary() -> None:
    names = {"teacher": ["hf", "bert-large", "mbert", "xlmr-base", "xlmr-large"],
             "student": ["hf", "distilmbert", "layers", "small"]}
    for kind, plugins in names.items():
        for name in plugins:
            entry = registry().entry(kind, name)
            entry.load()
            summary = entry.summary()
            assert summary and "\n" not in summary and len(summary) <= 110, (kind, name)


def test_importing_the_plugins_is_cheap() -> None:
    code = ("import sys, kdreg_plugins.models.teachers, kdreg_plugins.models.students; "
            "print(sorted(m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_copied_folder_loads_like_the_original(tiny_bert: Path, tmp_path: Path) -> None:
    """A relative-looking folder name with several parts is a path, not a hub id."""
    copy = tmp_path / "models" / "nested" / "teacher"
    shutil.copytree(tiny_bert, copy)
    assert teacher_at(copy).load(Head("mlm")).model.config.num_hidden_layers == 2


def test_a_relative_local_folder_is_recorded_by_its_absolute_path(tiny_bert: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`hf:path=my-model` typed in two folders names two models, so it must be two configs."""
    monkeypatch.chdir(tiny_bert.parent)
    resolved = registry().resolve("teacher", f"hf:path={tiny_bert.name}")
    assert resolved.params.path == str(tiny_bert.resolve())
    assert str(tiny_bert.resolve()) in resolved.spec
    hub_id = registry().resolve("teacher", "hf:path=google-bert/bert-base-cased")
    assert hub_id.params.path == "google-bert/bert-base-cased"  # no such folder here: a hub id, as written
