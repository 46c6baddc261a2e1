"""The synthetic world and its four plugins, on a reduced world that builds in milliseconds."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kdreg.errors import DataError
from kdreg.plugins.registry import contract_problems, registry
from kdreg.plugins.spec import Head
from kdreg_plugins.synthetic.benchmark import SyntheticTopics
from kdreg_plugins.synthetic.corpus import SyntheticCorpus
from kdreg_plugins.synthetic.teacher import COMPLETE, SyntheticTeacher
from kdreg_plugins.synthetic.world import NAMES, NUMBERS, World, WorldConfig

SMALL = dict(languages=4, topics=3, nouns_per_topic=4, verbs_per_topic=2, generic_nouns=4, generic_verbs=2,
             adjectives=3)
TINY_TEACHER = dict(SMALL, documents=200, layers=1, hidden=32, heads=2, intermediate=64, steps=8,
                    batch_size=16)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder the tests that only *use* the tiny teacher share, so it is pretrained once."""
    return tmp_path_factory.mktemp("synthetic-cache")


@pytest.fixture
def tiny_teacher(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> SyntheticTeacher:
    monkeypatch.setenv("KDREG_CACHE", str(shared_cache))
    return SyntheticTeacher(SyntheticTeacher.Params(**TINY_TEACHER))


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _world_digest(seed: int) -> str:
    corpus = SyntheticCorpus(SyntheticCorpus.Params(**SMALL, world_seed=seed, documents=50))
    bench = SyntheticTopics(SyntheticTopics.Params(**SMALL, world_seed=seed, train_examples=20,
                                                   eval_examples=10))
    texts = [list(corpus.texts(lang)) for lang in corpus.languages()]
    splits = [bench.examples(lang, split) for lang in bench.languages()
              for split in ("train", "validation", "test")]
    return _digest(corpus.world.vocabulary, texts, splits)


# ----------------------------------------------------------------- the world
def test_same_seed_gives_the_same_world_and_another_seed_another() -> None:
    assert _world_digest(0) == _world_digest(0)
    assert _world_digest(0) != _world_digest(1)


def test_the_world_touches_no_global_random_state() -> None:
    import random

    random.seed(123)
    before = random.random()
    random.seed(123)
    _world_digest(5)
    assert random.random() == before


def test_vocabularies_are_disjoint_except_the_shared_anchors() -> None:
    world = World(WorldConfig(**SMALL))
    lexicons = [set(world.lexicon[lang]) for lang in world.languages]
    assert all(len(lex) == len(world.concepts) for lex in lexicons)  # a bijective renaming
    for i, a in enumerate(lexicons):
        for b in lexicons[i + 1 :]:
            assert not a & b
    anchors = set(world.anchors)
    assert anchors == {".", *NUMBERS, *NAMES}
    assert not anchors & set().union(*lexicons)
    used_anchors = [{w for text in SyntheticCorpus(SyntheticCorpus.Params(**SMALL, documents=200)).texts(lang)
                     for w in text.split() if w in anchors} for lang in world.languages]
    assert all(len(u) > 10 for u in used_anchors)  # every language really uses the anchors


def test_word_orders_differ_between_languages() -> None:
    world = World(WorldConfig(languages=6))
    concept_of = {w: i for lang in world.languages for i, w in enumerate(world.lexicon[lang])}
    docs = world.labelled_documents("test", 40)

    def sequence(doc: object, lang: str) -> tuple[object, ...]:
        return tuple(concept_of.get(w, w) for w in world.render(doc, lang).split())  # type: ignore[arg-type]

    orders = {lang: [sequence(d, lang) for d in docs] for lang in world.languages}
    assert orders["l1"] == orders["l0"]  # same order, other words
    for lang in ("l2", "l3", "l4", "l5"):
        assert orders[lang] != orders["l0"]
        assert [sorted(map(str, s)) for s in orders[lang]] == [sorted(map(str, s)) for s in orders["l0"]]
    assert len({tuple(v) for v in orders.values()}) == 5
    reversed_first = orders["l5"][0]
    assert list(reversed_first[:-1]) == list(reversed(orders["l0"][0][:-1]))  # full stop stays last


def test_code_switching_is_present_at_about_the_configured_rate() -> None:
    params = SyntheticCorpus.Params(**SMALL, documents=2000, switch_documents=0.5, switch_words=0.2)
    corpus = SyntheticCorpus(params)
    world = corpus.world
    anchors = set(world.anchors)
    own = set(world.lexicon["l2"])
    mixed_docs = foreign = content = 0
    for text in corpus.texts("l2"):
        words = [w for w in text.split() if w not in anchors]
        alien = sum(w not in own for w in words)
        mixed_docs += alien > 0
        foreign += alien
        content += len(words)
    assert foreign / content == pytest.approx(0.5 * 0.2, abs=0.015)
    # a switched document of n words keeps all of them with probability 0.8^n
    assert 0.35 < mixed_docs / 2000 < 0.5
    clean = SyntheticCorpus(SyntheticCorpus.Params(**SMALL, documents=300, switch_documents=0.0))
    assert all(w in own or w in anchors for t in clean.texts("l2") for w in t.split())


# ----------------------------------------------------- benchmark and corpus
def test_benchmark_satisfies_the_contract() -> None:
    spec = "synthetic:languages=4,topics=3,train_examples=30,eval_examples=12"
    bench = registry().resolve("benchmark", spec)
    assert contract_problems("benchmark", bench.cls) == []
    topics = bench.create()
    assert list(topics.languages()) == ["l0", "l1", "l2", "l3"]
    assert topics.source_language() == "l0"
    assert len(topics.labels()) == 3
    train = topics.examples("l0", "train")
    assert len(train) == 30 and {e.label for e in train} == {0, 1, 2}
    for lang in topics.languages():
        for split in ("validation", "test"):
            examples = topics.examples(lang, split)
            assert len(examples) == 12 and all(0 <= e.label < 3 and e.text for e in examples)
        if lang != "l0":
            assert not topics.examples(lang, "train")
    # parallel evaluation sets: the same documents (hence labels) in every language
    assert len({tuple(e.label for e in topics.examples(lang, "test")) for lang in topics.languages()}) == 1
    assert topics.examples("l0", "test") != topics.examples("l0", "validation")
    with pytest.raises(DataError, match="no language"):
        topics.examples("de", "test")
    with pytest.raises(DataError, match="no split"):
        topics.examples("l0", "dev")


def test_corpus_satisfies_the_contract() -> None:
    resolved = registry().resolve("corpus", "synthetic:languages=3,documents=40")
    assert contract_problems("corpus", resolved.cls) == []
    corpus = resolved.create()
    assert list(corpus.languages()) == ["l0", "l1", "l2"]
    assert corpus.sizes() == {"l0": 40, "l1": 40, "l2": 40}
    for lang in corpus.languages():
        texts = list(corpus.texts(lang))
        assert len(texts) == 40 and all(t.strip() for t in texts)
        assert texts == list(corpus.texts(lang))
    assert list(corpus.texts("l0")) != list(corpus.texts("l1"))
    with pytest.raises(DataError):
        corpus.texts("l9")


# ------------------------------------------------------------------- models
def test_teacher_pretrains_once_then_loads_from_its_cache(monkeypatch: pytest.MonkeyPatch,
                                                          kdreg_home: Path) -> None:
    teacher = SyntheticTeacher(SyntheticTeacher.Params(**TINY_TEACHER))
    assert not teacher.path().exists()
    mlm = teacher.load(Head("mlm"))
    folder = teacher.path()
    assert folder.is_relative_to(kdreg_home) and (folder / COMPLETE).is_file()
    assert folder.parent.name == "synthetic"
    stamp = (folder / COMPLETE).stat().st_mtime_ns

    def no_second_pretraining(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached teacher was pretrained again")

    monkeypatch.setattr(SyntheticTeacher, "_pretrain_into", no_second_pretraining)
    classifier = SyntheticTeacher(SyntheticTeacher.Params(**TINY_TEACHER)).load(Head("classification", 3))
    assert (folder / COMPLETE).stat().st_mtime_ns == stamp
    assert type(mlm.model).__name__ == "BertForMaskedLM"
    assert type(classifier.model).__name__ == "BertForSequenceClassification"
    assert classifier.model.config.num_labels == 3
    # the encoder is the pretrained one, the head is new
    a = mlm.model.bert.embeddings.word_embeddings.weight
    b = classifier.model.bert.embeddings.word_embeddings.weight
    assert a.shape == b.shape and bool((a == b).all())
    # a different world is a different teacher
    assert SyntheticTeacher(SyntheticTeacher.Params(**dict(TINY_TEACHER, world_seed=1))).path() != folder


def test_teacher_tokenizer_round_trips(tmp_path: Path, tiny_teacher: SyntheticTeacher) -> None:
    from transformers import AutoTokenizer

    tokenizer = tiny_teacher.load(Head("mlm")).tokenizer
    assert tokenizer.get_vocab() == tiny_teacher.load_tokenizer().get_vocab()  # built == saved
    world = World(WorldConfig(**SMALL))
    assert len(tokenizer) == 5 + len(world.vocabulary)
    text = world.render(world.labelled_documents("test", 1)[0], "l3")
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", *text.split(), "[SEP]"]
    assert tokenizer.unk_token_id not in ids
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.get_vocab() == tokenizer.get_vocab()
    assert again(text)["input_ids"] == ids
    assert (again.pad_token, again.mask_token, again.cls_token) == ("[PAD]", "[MASK]", "[CLS]")


def test_two_concurrent_loads_pretrain_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = SyntheticTeacher._pretrain_into

    def counting(self: SyntheticTeacher, folder: Path) -> None:
        calls.append(1)
        real(self, folder)

    monkeypatch.setattr(SyntheticTeacher, "_pretrain_into", counting)
    params = SyntheticTeacher.Params(**TINY_TEACHER)
    folders: list[Path] = []
    threads = [threading.Thread(target=lambda: folders.append(SyntheticTeacher(params).ensure_pretrained()))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1] and len(set(folders)) == 1
    assert [p.name for p in folders[0].parent.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_student_is_a_smaller_random_model_with_the_teacher_tokenizer() -> None:
    from kdreg_plugins.synthetic.student import SyntheticStudent

    teacher = SyntheticTeacher(SyntheticTeacher.Params(**TINY_TEACHER))
    student = SyntheticStudent(SyntheticStudent.Params(layers=1, hidden=16, heads=2, intermediate=32))
    built = student.build(teacher, Head("classification", 3))
    assert not teacher.path().exists()  # building a student needs the teacher's vocabulary, not its weights
    assert contract_problems("student", SyntheticStudent) == []
    assert contract_problems("teacher", SyntheticTeacher) == []
    loaded = teacher.load(Head("mlm"))
    assert built.tokenizer.get_vocab() == loaded.tokenizer.get_vocab()
    assert built.model.config.vocab_size == loaded.model.config.vocab_size
    assert built.model.config.hidden_size == 16 and built.model.config.num_labels == 3
    assert type(student.build(teacher, Head("mlm")).model).__name__ == "BertForMaskedLM"
    default = SyntheticStudent().params
    assert (default.layers, default.hidden) == (2, 64)


def test_topic_alignment_scores_every_target_language(tiny_teacher: SyntheticTeacher) -> None:
    import torch

    from kdreg_plugins.synthetic.alignment import topic_alignment

    teacher = tiny_teacher
    bench = SyntheticTopics(SyntheticTopics.Params(**SMALL))
    scores = bench.extra_scores(teacher.load(Head("classification", 3)))
    assert [s.language for s in scores] == ["l1", "l2", "l3"]
    assert all(s.metric == "topic_alignment" and 0.0 <= s.value <= 1.0 for s in scores)
    # embeddings in which every word sits on its concept's vector are perfectly aligned
    world = bench.world
    tokenizer = teacher.load(Head("mlm")).tokenizer
    table = torch.randn(len(tokenizer), 8, generator=torch.Generator().manual_seed(0))
    concept_vectors = torch.randn(len(world.concepts), 8, generator=torch.Generator().manual_seed(1))
    for lang in world.languages:
        table[tokenizer.convert_tokens_to_ids(list(world.lexicon[lang]))] = concept_vectors
    assert topic_alignment(table, tokenizer, world) == {"l1": 1.0, "l2": 1.0, "l3": 1.0}


def test_importing_the_plugins_does_not_import_torch() -> None:
    code = ("import sys, kdreg_plugins.synthetic.teacher, kdreg_plugins.synthetic.student, "
            "kdreg_plugins.synthetic.benchmark, kdreg_plugins.synthetic.corpus; "
            "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
