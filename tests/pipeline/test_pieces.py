"""Pipeline pieces checked against hand-computed values: metrics, batching, hyper-parameters, model cache."""

from __future__ import annotations

import random
import re
import threading
from pathlib import Path

import pytest

from kdreg.errors import ConfigError
from kdreg.hparams import PretrainHParams, hparams_from_mapping
from kdreg.languages import evaluation_languages, selected_languages
from kdreg.pipeline import model_cache
from kdreg.pipeline.data import Encoded, length_grouped_order, pad_batch
from kdreg.pipeline.evaluate import accuracy, macro_f1
from kdreg.pipeline.phases import pretrain_steps
from kdreg.pipeline.training import steps_for
from kdreg.plugins.spec import Benchmark, Corpus


def test_accuracy_and_macro_f1_by_hand() -> None:
    gold = [0, 0, 1, 1, 2, 2]
    pred = [0, 1, 1, 1, 0, 2]
    assert accuracy(gold, pred) == pytest.approx(4 / 6)
    # class 0: tp 1, fp 1, fn 1 → 2/4; class 1: tp 2, fp 1, fn 0 → 4/5; class 2: tp 1, fp 0, fn 1 → 2/3
    assert macro_f1(gold, pred, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # a class absent from gold and predictions does not count
    assert macro_f1([0, 1], [0, 1], 5) == pytest.approx(1.0)


def test_length_grouped_batches_cover_everything_once_and_are_deterministic() -> None:
    lengths = [random.Random(1).randint(1, 60) for _ in range(1000)]
    a = length_grouped_order(lengths, 16, random.Random(7))
    b = length_grouped_order(lengths, 16, random.Random(7))
    assert a == b
    assert sorted(i for batch in a for i in batch) == list(range(1000))
    spread = sum(max(lengths[i] for i in batch) - min(lengths[i] for i in batch) for batch in a) / len(a)
    assert spread < 10  # grouped: random batches of 16 would spread ~55
    ordered = length_grouped_order(lengths, 16, None)
    flat = [lengths[i] for batch in ordered for i in batch]
    assert flat == sorted(flat)


def test_pad_batch_pads_and_masks() -> None:
    batch = pad_batch([Encoded([5, 6, 7], [0, 0, 1], 1), Encoded([5], [0], 0)], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert batch["labels"].tolist() == [1, 0]


def test_steps_for() -> None:
    assert steps_for(100, 32, 3.0, 0) == 12
    assert steps_for(100, 32, 0.5, 0) == 2
    assert steps_for(100, 32, 3.0, 7) == 7


def test_hparams_validation() -> None:
    hp = hparams_from_mapping({"pretrain": {"max_steps": 10, "language_alpha": 0.3}})
    assert hp.pretrain.max_steps == 10 and hp.pretrain.language_alpha == 0.3
    with pytest.raises(ConfigError, match="batch_size"):
        hparams_from_mapping({"finetune": {"batch_size": 0}})
    with pytest.raises(ConfigError, match="max_steps > 0 or epochs > 0"):
        hparams_from_mapping({"finetune": {"epochs": 0}})


def test_model_cache_creates_once_and_never_leaves_half_written_models(kdreg_home: Path) -> None:
    calls: list[int] = []

    def create(folder: Path) -> None:
        calls.append(1)
        (folder / "weights").write_text("w")

    threads = [threading.Thread(target=model_cache.get_or_create, args=("teacher", "abc", create))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    path, created = model_cache.get_or_create("teacher", "abc", create)
    assert calls == [1] and not created and (path / "weights").read_text() == "w"

    def crash(folder: Path) -> None:
        (folder / "partial").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        model_cache.get_or_create("teacher", "def", crash)
    assert not model_cache.model_path("teacher", "def").exists()
    assert not [p for p in model_cache.models_dir().iterdir() if p.name.startswith(".")]
    assert model_cache.folder_size(model_cache.models_dir()) > 0
    assert model_cache.clear() > 0 and not model_cache.models_dir().exists()


def test_clearing_the_cache_touches_nothing_but_models(kdreg_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """KDREG_CACHE may point at a folder that also holds the database or other files."""
    shared = tmp_path / "shared"
    monkeypatch.setenv("KDREG_CACHE", str(shared))
    monkeypatch.setenv("KDREG_DB", str(shared / "kdreg.db"))
    shared.mkdir()
    (shared / "kdreg.db").write_bytes(b"runs")
    (shared / "project" / "data").mkdir(parents=True)
    (shared / "project" / "data" / "train.tsv").write_text("text\tlabel\n")
    path, _ = model_cache.get_or_create("teacher", "k1", lambda f: (f / "w").write_bytes(b"w" * 10))
    assert model_cache.cached_models() == [path]
    assert model_cache.clear() >= 10 and not path.exists()
    assert (shared / "kdreg.db").read_bytes() == b"runs"
    assert (shared / "project" / "data" / "train.tsv").exists()
    assert model_cache.clear() == 0


def test_pretraining_hparams_are_checked() -> None:
    with pytest.raises(ConfigError, match="mlm_probability"):
        hparams_from_mapping({"pretrain": {"mlm_probability": 1.5}})
    with pytest.raises(ConfigError, match="language_alpha"):
        hparams_from_mapping({"pretrain": {"language_alpha": -0.1}})
    assert hparams_from_mapping({"pretrain": {"max_steps": 0, "epochs": 2}}).pretrain.epochs == 2.0
    for value in (float("nan"), float("inf")):  # TOML spells them nan and inf
        with pytest.raises(ConfigError, match=r"\[finetune\] learning_rate must be a finite number"):
            hparams_from_mapping({"finetune": {"learning_rate": value}})
    with pytest.raises(ConfigError, match=r"weight_decay = -0.1 is out of range: give 0 to 1"):
        hparams_from_mapping({"teacher_finetune": {"weight_decay": -0.1}})


@pytest.mark.parametrize(("section", "name", "value", "bound"), [
    ("finetune", "learning_rate", 1e300, "give 0 to 1 (AdamW"),
    ("teacher_finetune", "max_steps", 10**30, "give 0 to 1,000,000,000"),
    ("pretrain", "epochs", 1e300, "give 0 to 10,000"),
    ("finetune", "batch_size", 2**40, "give 1 to 65,536"),
    ("pretrain", "language_alpha", 1e300, "give 0 to 10"),
    ("finetune", "weight_decay", 1e300, "give 0 to 1"),
])
def test_absurd_hyper_parameters_are_refused_with_their_bounds(
    section: str, name: str, value: float, bound: str
) -> None:
    """Issue 14: learning_rate = 1e300 trained into NaN and was stored as a failed run."""
    with pytest.raises(ConfigError, match=rf"\[{section}\] {name} = .* is out of range: {re.escape(bound)}"):
        hparams_from_mapping({section: {name: value}})


class Flores(Benchmark):
    """Languages spelled the SIB-200 way, with two scripts of one language."""

    def languages(self) -> list[str]:
        return ["eng_Latn", "deu_Latn", "zho_Hans", "zho_Hant", "fra_Latn"]

    def source_language(self) -> str:
        return "eng_Latn"


def test_lang_codes_match_exactly_then_by_normalised_form() -> None:
    bench = Flores()
    assert evaluation_languages(bench, []) == bench.languages()
    assert evaluation_languages(bench, ["de"]) == ["eng_Latn", "deu_Latn"]
    assert evaluation_languages(bench, ["zho_Hant"]) == ["eng_Latn", "zho_Hant"]  # not zho_Hans too
    assert evaluation_languages(bench, ["ZHO_HANS", "fr"]) == ["eng_Latn", "zho_Hans", "fra_Latn"]
    assert evaluation_languages(bench, ["zh"]) == ["eng_Latn", "zho_Hans", "zho_Hant"]
    assert selected_languages(bench, ["deu", "en"]) == selected_languages(bench, ["de"]) == (
        "eng_Latn", "deu_Latn")
    assert selected_languages(bench, ["de", "zh", "fr"]) == ()  # every language: the same run as no --lang
    with pytest.raises(ConfigError, match=r"xx, qq not in benchmark sib:x \(it has eng_Latn, deu") as info:
        evaluation_languages(bench, ["de", "xx", "qq"], "sib:x")
    assert "\n" not in str(info.value)


class Lines(Corpus):
    """A corpus that only knows its sizes (or not)."""

    def __init__(self, sizes: dict[str, int] | None) -> None:
        super().__init__()
        self._sizes = sizes

    def sizes(self) -> dict[str, int] | None:
        return self._sizes


def test_pretraining_steps_from_max_steps_or_epochs_over_the_corpus() -> None:
    assert pretrain_steps(PretrainHParams(max_steps=7), Lines(None), "c") == 7
    # 280 lines in batches of 8 = 35 steps per pass, two passes
    assert pretrain_steps(PretrainHParams(max_steps=0, epochs=2, batch_size=8), Lines({"en": 200, "de": 80}),
                          "c") == 70
    with pytest.raises(ConfigError, match="text:x does not report one; set \\[pretrain\\] max_steps"):
        pretrain_steps(PretrainHParams(max_steps=0, epochs=1), Lines(None), "text:x")


def test_a_cached_fine_tuned_teacher_with_other_labels_is_refused(tiny_bert: Path, tmp_path: Path) -> None:
    """Data changed under the same benchmark spec: a clear error instead of transformers' size mismatch."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kdreg.errors import DataError
    from kdreg.pipeline.artifacts import load_cached
    from kdreg.plugins.spec import Head

    folder = tmp_path / "teacher-abc"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3)
    model_cache.save_model(folder, model, AutoTokenizer.from_pretrained(tiny_bert))
    assert load_cached(folder, Head("classification", 3), fine_tuned=True).model.config.num_labels == 3
    with pytest.raises(DataError, match=r"has 3 labels but the benchmark now has 2.*kdreg cache clear"):
        load_cached(folder, Head("classification", 2), fine_tuned=True)


def test_evaluation_sets_are_prepared_once_per_tokenizer_and_give_the_same_scores(tiny_bert: Path,
                                                                                 tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from kdreg.pipeline.evaluate import EvaluationSets, evaluate, tokenizer_fingerprint
    from kdreg.pipeline.training import Device
    from kdreg.plugins.spec import Example
    from kdreg.testing.tiny import save_tiny_bert

    class Counting(Benchmark):
        calls = 0

        def languages(self) -> list[str]:
            return ["en", "de"]

        def source_language(self) -> str:
            return "en"

        def labels(self) -> list[str]:
            return ["a", "b"]

        def examples(self, language: str, split: str) -> list[Example]:
            Counting.calls += 1
            return [Example(f"w{i} w{i + 1} hello", i % 2) for i in range(12)]

    first, again = AutoTokenizer.from_pretrained(tiny_bert), AutoTokenizer.from_pretrained(tiny_bert)
    other = AutoTokenizer.from_pretrained(save_tiny_bert(tmp_path / "other", words=["x", "y", "z"]))
    assert tokenizer_fingerprint(first) == tokenizer_fingerprint(again) != tokenizer_fingerprint(other)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    sets, device, bench = EvaluationSets(), Device("cpu"), Counting()
    scores = evaluate(model, first, bench, ["en", "de"], max_length=16, batch_size=5, device=device,
                      sets=sets, benchmark_key="counting")
    assert Counting.calls == 4  # two languages × two evaluation splits, read and tokenised once
    cached = evaluate(model, again, bench, ["en", "de"], max_length=16, batch_size=5, device=device,
                      sets=sets, benchmark_key="counting")
    assert Counting.calls == 4 and cached == scores  # another load of the same tokenizer: the same batches
    assert evaluate(model, first, bench, ["en", "de"], max_length=16, batch_size=5, device=device) == scores
