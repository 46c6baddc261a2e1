"""kdreg.testing's conformance checks: good plugins pass, each kind of breakage is named.

The plugins here are small real classes; losses run on real tensors, models are tiny
saved BERTs loaded through the built-in ``hf`` teacher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kdreg.errors import IncompatiblePluginsError
from kdreg.plugins.spec import Benchmark, CheckSetup, Corpus, Example, Loss, ModelGeometry
from kdreg.testing import CheckResult, assert_plugin_conforms, check_plugin


def failures(results: list[CheckResult]) -> dict[str, str]:
    return {r.name: r.reason for r in results if r.status == "fail"}


def loadable(kind: str, name: str) -> bool:
    """Whether a built-in exists and imports (other helpers may not have committed it yet)."""
    from kdreg.errors import KdregError
    from kdreg.plugins.registry import registry

    try:
        registry().entry(kind, name).load()
    except KdregError:
        return False
    return True


# ------------------------------------------------------------------ plugins
@dataclass(frozen=True)
class TemperatureParams:
    temperature: float = field(default=2.0, metadata={"help": "softmax temperature"})


class SoftKL(Loss):
    """Soft-target KL (Hinton et al. 2015), T²-scaled."""

    Params: ClassVar[type] = TemperatureParams

    def compute(self, student: Any, teacher: Any, batch: Any) -> Any:
        import torch.nn.functional as F

        t = self.params.temperature
        log_q = F.log_softmax(student.logits / t, -1)
        log_p = F.log_softmax(teacher.logits.detach() / t, -1)
        return (log_p.exp() * (log_p - log_q)).sum(-1).mean() * t * t


class WrongSignature(SoftKL):
    """Forgets the batch argument."""

    def compute(self, student: Any, teacher: Any) -> Any:  # type: ignore[override]
        return student.logits.sum()


class NotFinite(SoftKL):
    """Divides by zero."""

    def compute(self, student: Any, teacher: Any, batch: Any) -> Any:
        return student.logits.sum() / 0.0


class TrainsTheTeacher(SoftKL):
    """Does not detach the teacher."""

    def compute(self, student: Any, teacher: Any, batch: Any) -> Any:
        return ((student.logits - teacher.logits) ** 2).mean()


class UndeclaredOutput(SoftKL):
    """Reads hidden states without declaring them in needs."""

    def compute(self, student: Any, teacher: Any, batch: Any) -> Any:
        return (student.hidden_states[-1] - teacher.hidden_states[-1].detach()).pow(2).mean()


class FinetuneOnly(SoftKL):
    """Refuses pretraining."""

    def prepare(self, teacher: Any, student: Any, stage: str) -> Any:
        if stage == "pretrain":
            raise IncompatiblePluginsError("class logits only")
        return None


class DeclaredFinetuneOnly(FinetuneOnly):
    """Refuses pretraining, and says why."""

    check_setup = CheckSetup(skips={"loss: pretrain": "masked-LM logits are not class scores"})


@dataclass(frozen=True)
class HeadsParams:
    heads: int = 12
    temperature: float = 2.0


class TwelveHeads(SoftKL):
    """Refuses every student without its number of heads (12 by default, the check's model has 2)."""

    Params: ClassVar[type] = HeadsParams

    def prepare(self, teacher: Any, student: Any, stage: str) -> Any:
        if student.num_heads != self.params.heads:
            have = student.num_heads
            raise IncompatiblePluginsError(f"needs {self.params.heads} heads, the student has {have}")
        return None


class HeadsByParams(TwelveHeads):
    """Checked with heads=2."""

    check_setup = CheckSetup(params="heads=2")


class HeadsByGeometry(TwelveHeads):
    """Checked on models with 12 heads."""

    check_setup = CheckSetup(
        teacher=ModelGeometry(vocab_size=40, hidden_size=24, num_layers=4, num_heads=12),
        student=ModelGeometry(vocab_size=40, hidden_size=24, num_layers=2, num_heads=12),
    )


class WrongSetup(SoftKL):
    """check_setup is not a CheckSetup."""

    check_setup: ClassVar[Any] = {"params": "temperature=2"}


class NoCompute:
    """Not a subclass, and no compute."""

    needs = frozenset({"logits"})


@dataclass(frozen=True)
class ListParams:
    layers: list[int] = field(default_factory=lambda: [1, 2])


class ListParameter(SoftKL):
    """A parameter kdreg cannot parse from text."""

    Params: ClassVar[type] = ListParams


@dataclass(frozen=True)
class NameParams:
    prefix: str = "x"


class CommaParameter(SoftKL):
    """A string parameter."""

    Params: ClassVar[type] = NameParams


LANGUAGES = {"en": ["a good day", "a bad day"], "de": ["ein guter Tag", "ein schlechter Tag"]}


class TwoLanguages(Benchmark):
    """Good/bad days in English and German."""

    label_offset: ClassVar[int] = 0

    def languages(self) -> list[str]:
        return list(LANGUAGES)

    def source_language(self) -> str:
        return "en"

    def labels(self) -> list[str]:
        return ["good", "bad"]

    def examples(self, language: str, split: str) -> list[Example]:
        return [Example(text, i + self.label_offset) for i, text in enumerate(LANGUAGES[language])]


class LabelOutOfRange(TwoLanguages):
    """Labels shifted by one."""

    label_offset: ClassVar[int] = 1


class MissingTestSplit(TwoLanguages):
    """German has no test split."""

    def examples(self, language: str, split: str) -> list[Example]:
        return [] if (language, split) == ("de", "test") else super().examples(language, split)


class Lines(Corpus):
    """Two lines per language."""

    def languages(self) -> list[str]:
        return list(LANGUAGES)

    def texts(self, language: str) -> Any:
        return iter(LANGUAGES[language])

    def sizes(self) -> dict[str, int]:
        return {language: 2 for language in LANGUAGES}


class Shuffled(Lines):
    """A different order on every call."""

    calls: ClassVar[list[int]] = []

    def texts(self, language: str) -> Any:
        self.calls.append(1)
        lines = LANGUAGES[language]
        return iter(lines if len(self.calls) % 2 else lines[::-1])


# -------------------------------------------------------------------- tests
def test_a_good_loss_passes_every_check_in_both_stages() -> None:
    results = assert_plugin_conforms("loss", SoftKL, "temperature=4")
    by_name = {r.name: r for r in results}
    assert by_name["loss: finetune"].passed and by_name["loss: pretrain"].passed
    assert "gradients reach student logits only" in by_name["loss: finetune"].reason
    assert by_name["params: round-trip"].reason == "softkl:temperature=4"
    assert by_name["contract: compute"].reason == "compute(self, student, teacher, batch)"


@pytest.mark.parametrize(
    ("cls", "row", "words"),
    [
        (WrongSignature, "contract: compute", ["compute(self, student, teacher)", "batch"]),
        (NotFinite, "loss: finetune", ["compute returned", "not finite"]),
        (TrainsTheTeacher, "loss: finetune", ["teacher", "detach"]),
        (UndeclaredOutput, "loss: finetune", ["compute raised", "needs"]),
        (ListParameter, "params: dataclass", ["layers", "list[int]"]),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_broken_losses_fail_with_a_reason_naming_the_member(cls: type, row: str, words: list[str]) -> None:
    found = failures(check_plugin("loss", cls))
    assert row in found, found
    for word in words:
        assert word in found[row]


def test_a_class_missing_members_gets_one_row_per_member() -> None:
    found = failures(check_plugin("loss", NoCompute))
    assert "'compute' is missing" in found["contract: compute"]
    assert "'uses_teacher' is missing" in found["contract: uses_teacher"]
    assert "'prepare' is missing" in found["contract: prepare"]


def test_an_unimplemented_required_member_is_named() -> None:
    class Lazy(Loss):
        """Inherits compute from the base class."""

    found = failures(check_plugin("loss", Lazy))
    assert "'compute' is not implemented" in found["contract: compute"]


def test_a_refused_stage_fails_until_the_plugin_declares_why() -> None:
    """A behaviour check the plugin refuses never ran its maths: not a pass (issue 16 §3)."""
    found = failures(check_plugin("loss", FinetuneOnly))
    assert list(found) == ["loss: pretrain"]
    reason = found["loss: pretrain"]
    assert "so compute never ran: class logits only" in reason and "\n" not in reason
    assert "check_setup = CheckSetup(" in reason and "skips={'loss: pretrain'" in reason
    with pytest.raises(AssertionError, match="loss: pretrain"):
        assert_plugin_conforms("loss", FinetuneOnly)

    results = assert_plugin_conforms("loss", DeclaredFinetuneOnly)
    by_name = {r.name: r for r in results}
    assert by_name["loss: pretrain"].status == "skip"
    assert "declared by the plugin: masked-LM logits are not class scores" in by_name["loss: pretrain"].reason
    assert by_name["loss: finetune"].status == "pass"
    assert "declared skip of 'loss: pretrain'" in by_name["contract: check_setup"].reason


def test_check_setup_gives_the_parameters_or_geometry_that_fit() -> None:
    assert "needs 12 heads" in failures(check_plugin("loss", TwelveHeads))["loss: finetune"]
    by_params = {r.name: r for r in assert_plugin_conforms("loss", HeadsByParams)}
    assert by_params["params: build"].reason == "HeadsParams(heads=2, temperature=2.0)"
    assert by_params["loss: pretrain"].passed and not by_params["loss: pretrain"].skipped
    by_geometry = {r.name: r for r in assert_plugin_conforms("loss", HeadsByGeometry)}
    assert "student geometry" in by_geometry["contract: check_setup"].reason
    assert by_geometry["loss: finetune"].passed
    # parameters given explicitly still win over the declared ones
    assert "needs 5 heads" in failures(check_plugin("loss", HeadsByParams, "heads=5"))["loss: finetune"]
    bad = failures(check_plugin("loss", WrongSetup))
    assert "must be a kdreg.plugins.spec.CheckSetup" in bad["contract: check_setup"]


def test_parameters_that_do_not_survive_their_canonical_text_fail() -> None:
    found = failures(check_plugin("loss", CommaParameter, {"prefix": "a,b"}))
    assert "prefix" in found["params: round-trip"]


def test_bad_parameters_are_a_failed_row_and_skip_the_rest() -> None:
    results = check_plugin("loss", SoftKL, "temperature=warm")
    assert "must be float" in failures(results)["params: build"]
    assert results[-1].name == "behaviour" and results[-1].status == "skip"


def test_assert_plugin_conforms_lists_every_failure() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_plugin_conforms("loss", WrongSignature)
    message = str(caught.value)
    assert "contract: compute" in message and "WrongSignature" in message


def test_benchmark_checks() -> None:
    results = assert_plugin_conforms("benchmark", TwoLanguages)
    names = [r.name for r in results]
    assert "examples: en/train" in names and "examples: validation" in names and "examples: test" in names
    assert (
        "label 2 is outside range"
        in failures(check_plugin("benchmark", LabelOutOfRange))["examples: en/train"]
    )
    assert "'de', 'test'" in failures(check_plugin("benchmark", MissingTestSplit))["examples: test"]


def test_corpus_checks() -> None:
    results = assert_plugin_conforms("corpus", Lines)
    assert {r.name for r in results} >= {"corpus: languages", "corpus: texts", "corpus: sizes"}
    assert "deterministic" in failures(check_plugin("corpus", Shuffled))["corpus: texts"]


def test_an_unknown_installed_name_is_one_failed_row() -> None:
    results = check_plugin("loss", "no-such-loss")
    assert [r.name for r in results] == ["import"]
    assert "no-such-loss" in results[0].reason


@pytest.mark.parametrize(
    "name", ["ce", "kl", "mse", "hidden", "attention", "cosine", "minilm", "minilm:version=v2"]
)
def test_builtin_losses_conform(name: str) -> None:
    if not loadable("loss", name.split(":")[0]):
        pytest.skip(f"built-in loss {name!r} is not there yet")
    results = assert_plugin_conforms("loss", name)
    assert not any(r.skipped for r in results)  # every behaviour check really ran


def test_builtin_teacher_and_student_conform(tiny_bert: Path) -> None:
    if not (loadable("teacher", "hf") and loadable("student", "layers")):
        pytest.skip("built-in hf teacher / layers student are not there yet")
    results = assert_plugin_conforms("teacher", "hf", {"path": str(tiny_bert)})  # text in a mapping is parsed
    assert any(r.name == "load(mlm)" and "2 layers" in r.reason for r in results)
    results = assert_plugin_conforms("student", "layers:k=1", teacher=f"hf:path={tiny_bert}")
    assert any(r.name == "build(classification, 3 labels)" and "1 layers" in r.reason for r in results)


def test_builtin_data_plugins_conform(tmp_path: Path) -> None:
    if not (loadable("benchmark", "files") and loadable("corpus", "text")):
        pytest.skip("built-in files benchmark / text corpus are not there yet")
    for language, texts in LANGUAGES.items():
        (tmp_path / "corpus").mkdir(exist_ok=True)
        (tmp_path / "corpus" / f"{language}.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
        folder = tmp_path / "task" / language
        folder.mkdir(parents=True)
        rows = "text\tlabel\n" + "".join(f"{t}\t{['good', 'bad'][i]}\n" for i, t in enumerate(texts))
        for split in ("train", "dev", "test"):
            (folder / f"{split}.tsv").write_text(rows, encoding="utf-8")
    assert_plugin_conforms("corpus", "text", f"path={tmp_path / 'corpus'}")
    assert_plugin_conforms("benchmark", "files", f"path={tmp_path / 'task'}")


def test_a_model_this_machine_cannot_have_skips_the_checks_it_needs_not_fails_them(tmp_path: Path) -> None:
    """Offline, mBERT is not a flaw of the mbert plugin; a folder that is not a model still fails."""
    from typer.testing import CliRunner

    from kdreg.cli.main import app

    results = assert_plugin_conforms("teacher", "mbert")  # HF_HUB_OFFLINE=1 in the tests
    rows = {r.name: r for r in results}
    assert rows["check()"].status == "skip" and rows["behaviour"].status == "skip"
    assert "not available here: ModelUnavailableError" in rows["check()"].reason
    assert "the Hugging Face Hub is not used (HF_HUB_OFFLINE=1)" in rows["check()"].reason
    done = CliRunner().invoke(app, ["plugins", "check", "mbert"])
    assert done.exit_code == 0, done.output
    assert "not fully checked here teacher mbert" in " ".join(done.output.split())
    (tmp_path / "empty").mkdir()
    broken = {r.name: r for r in check_plugin("teacher", f"hf:path={tmp_path / 'empty'}")}
    assert broken["check()"].status == "fail"  # nothing to obtain: the folder itself is wrong
