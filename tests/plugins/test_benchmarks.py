"""The real benchmarks: XNLI, PAWS-X, SIB-200 and local files.

Hub datasets are tested offline with tiny on-disk copies of the hub repositories:
the README's ``configs:`` / ``dataset_info`` metadata and parquet files with the hub's
features (ClassLabel names included), loaded through the very ``load_dataset`` call
the hub data goes through. SIB-200 and ``files`` also run on the real copy in
``../shared/data/sib200`` when it is there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kdreg.errors import DataError, KdregError

XNLI_LABELS = ["entailment", "neutral", "contradiction"]
SIB_LABELS = ["science/technology", "travel", "politics", "sports", "health", "entertainment", "geography"]


@pytest.fixture(autouse=True)
def hf_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private datasets cache: tests neither read nor fill the user's ~/.cache/huggingface."""
    import datasets.config
    import huggingface_hub.constants

    cache = tmp_path_factory.mktemp("hf-cache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache / "hub"))
    return cache


def write_hub_repo(root: Path, features: Any, configs: dict[str, dict[str, dict[str, list[Any]]]]) -> Path:
    """A local copy of a hub dataset repository: README.md metadata + ``<config>/<split>-*.parquet``."""
    import yaml
    from datasets import Dataset

    card: dict[str, Any] = {"configs": [], "dataset_info": []}
    for config, splits in configs.items():
        files, infos = [], []
        for split, columns in splits.items():
            (root / config).mkdir(parents=True, exist_ok=True)
            Dataset.from_dict(columns, features=features).to_parquet(
                root / config / f"{split}-00000-of-00001.parquet"
            )
            files.append({"split": split, "path": f"{config}/{split}-*"})
            infos.append({"name": split, "num_examples": len(next(iter(columns.values())))})
        card["configs"].append({"config_name": config, "data_files": files})
        card["dataset_info"].append(
            {"config_name": config, "features": features._to_yaml_list(), "splits": infos}
        )
    (root / "README.md").write_text(
        "---\n" + yaml.safe_dump(card, sort_keys=False) + "---\n", encoding="utf-8"
    )
    return root


def nli_rows(language: str, n: int, labels: list[int]) -> dict[str, list[Any]]:
    return {
        "premise": [f"{language} premise {i}" for i in range(n)],
        "hypothesis": [f"{language} hypothesis {i}" for i in range(n)],
        "label": [labels[i % len(labels)] for i in range(n)],
    }


@pytest.fixture
def xnli_copy(tmp_path: Path) -> Path:
    from datasets import ClassLabel, Features, Value

    features = Features(
        {"premise": Value("string"), "hypothesis": Value("string"), "label": ClassLabel(names=XNLI_LABELS)}
    )
    configs = {
        lang: {
            "train": nli_rows(lang, 20, [0, 1, 2]),
            "test": nli_rows(lang, 6, [2, 1, 0]),
            "validation": nli_rows(lang, 3, [1]),
        }
        for lang in ("en", "de", "fr")
    }
    return write_hub_repo(tmp_path / "xnli", features, configs)


# ------------------------------------------------------------------------ XNLI
def test_xnli_loads_a_hub_layout_copy_through_load_dataset(xnli_copy: Path) -> None:
    from kdreg_plugins.benchmarks.xnli import XNLI

    bench = XNLI(XNLI.Params(path=xnli_copy, languages="de+fr"))
    assert bench.languages() == ("en", "de", "fr")  # the source is always kept, first
    assert bench.source_language() == "en" and list(bench.labels()) == XNLI_LABELS
    assert bench.metrics == ("accuracy",)
    test = bench.examples("de", "test")
    assert len(test) == 6
    assert (test[0].text, test[0].text_pair, test[0].label) == ("de premise 0", "de hypothesis 0", 2)
    assert len(bench.examples("fr", "validation")) == 3
    assert bench.examples("de", "test") is test  # cached in the instance
    assert bench.normalize_language("de") == "de"


def test_xnli_train_subsample_is_deterministic(xnli_copy: Path) -> None:
    from kdreg_plugins.benchmarks.xnli import XNLI

    def texts(seed: int) -> list[str]:
        bench = XNLI(XNLI.Params(path=xnli_copy, languages="en", max_train_examples=7, seed=seed))
        return [e.text for e in bench.examples("en", "train")]

    first = texts(0)
    assert len(first) == 7 and first == texts(0)
    assert first != texts(1)
    assert first == sorted(first, key=lambda t: int(t.split()[-1]))  # the dataset's order is kept


def test_xnli_eval_subsample_keeps_parallel_rows(xnli_copy: Path) -> None:
    from kdreg_plugins.benchmarks.xnli import XNLI

    bench = XNLI(XNLI.Params(path=xnli_copy, max_eval_examples=4, languages="de+fr"))
    de = [e.text.split()[-1] for e in bench.examples("de", "test")]
    fr = [e.text.split()[-1] for e in bench.examples("fr", "test")]
    assert len(de) == 4 and de == fr


def test_xnli_resolves_through_the_registry(xnli_copy: Path) -> None:
    from kdreg.plugins.registry import registry

    resolved = registry().resolve("benchmark", f"xnli:path={xnli_copy},max_train_examples=5,languages=de")
    bench = resolved.create()
    assert type(bench).__name__ == "XNLI"
    assert len(bench.examples("en", "train")) == 5


def test_wrong_label_schema_is_a_data_error(tmp_path: Path) -> None:
    from datasets import ClassLabel, Features, Value

    from kdreg_plugins.benchmarks.xnli import XNLI

    features = Features(
        {"premise": Value("string"), "hypothesis": Value("string"), "label": ClassLabel(names=["yes", "no"])}
    )
    copy = write_hub_repo(tmp_path / "x", features, {"en": {"train": nli_rows("en", 4, [0, 1])}})
    with pytest.raises(DataError, match="2 classes"):
        XNLI(XNLI.Params(path=copy, languages="en")).examples("en", "train")


def test_unknown_language_config_names_the_available_ones(xnli_copy: Path) -> None:
    from kdreg_plugins.benchmarks.xnli import XNLI

    bench = XNLI(XNLI.Params(path=xnli_copy, languages="sw"))
    with pytest.raises(DataError, match=r"no config 'sw' \(available: \['en', 'de', 'fr'\]\)"):
        bench.examples("sw", "test")


def test_offline_without_a_copy_is_one_actionable_line() -> None:
    from kdreg_plugins.benchmarks.pawsx import PAWSX
    from kdreg_plugins.benchmarks.xnli import XNLI

    for bench, name in ((XNLI(), "xnli"), (PAWSX(), "pawsx")):
        with pytest.raises(DataError) as caught:
            bench.check()
        message = str(caught.value)
        assert "\n" not in message
        assert "not cached" in message and "unreachable" in message and f"{name}:path=" in message


def test_plugin_modules_import_neither_datasets_nor_torch() -> None:
    code = (
        "import sys\n"
        "import kdreg.sampling\n"
        "from kdreg_plugins.benchmarks import files, pawsx, sib200, xnli\n"
        "from kdreg_plugins.corpora import hub, text\n"
        "print(sorted(m for m in ('datasets', 'torch', 'transformers', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------- PAWS-X
def test_pawsx_drops_rows_without_a_label(tmp_path: Path) -> None:
    from datasets import ClassLabel, Features, Value

    from kdreg_plugins.benchmarks.pawsx import PAWSX

    features = Features(
        {
            "id": Value("int32"),
            "sentence1": Value("string"),
            "sentence2": Value("string"),
            "label": ClassLabel(names=["0", "1"]),
        }
    )

    def rows(lang: str, labels: list[int]) -> dict[str, list[Any]]:
        n = len(labels)
        return {
            "id": list(range(1, n + 1)),
            "sentence1": [f"{lang} a{i}" for i in range(n)],
            "sentence2": [f"{lang} b{i}" for i in range(n)],
            "label": labels,
        }

    copy = write_hub_repo(
        tmp_path / "paws-x",
        features,
        {
            lang: {
                "train": rows(lang, [0, 1, -1, 1]),
                "validation": rows(lang, [1, 0]),
                "test": rows(lang, [-1, 0, 1]),
            }
            for lang in ("en", "ja")
        },
    )
    bench = PAWSX(PAWSX.Params(path=copy, languages="ja"))
    train = bench.examples("en", "train")
    assert [(e.text, e.text_pair, e.label) for e in train] == [
        ("en a0", "en b0", 0),
        ("en a1", "en b1", 1),
        ("en a3", "en b3", 1),
    ]
    assert [e.label for e in bench.examples("ja", "test")] == [0, 1]
    assert bench.labels() == ("not_paraphrase", "paraphrase")


# --------------------------------------------------------------------- SIB-200
def sib_split_sizes(bench: Any, language: str) -> tuple[int, int, int]:
    return tuple(len(bench.examples(language, s)) for s in ("train", "validation", "test"))  # type: ignore[return-value]


def test_sib200_reads_the_shared_copy(shared_data: Path) -> None:
    from kdreg_plugins.benchmarks.sib200 import SIB200

    bench = SIB200(SIB200.Params(path=shared_data / "sib200"))
    bench.check()
    languages = bench.languages()
    assert len(languages) == 29 and languages[0] == "eng_Latn" == bench.source_language()
    assert list(bench.labels()) == SIB_LABELS
    assert bench.metrics == ("accuracy", "macro_f1")
    reference = {s: [e.label for e in bench.examples("eng_Latn", s)] for s in ("train", "validation", "test")}
    for language in languages:
        assert sib_split_sizes(bench, language) == (701, 99, 204), language
        for split, labels in reference.items():  # parallel rows: the same labels in every language
            assert [e.label for e in bench.examples(language, split)] == labels, (language, split)
    normal = {
        code: bench.normalize_language(code) for code in ("eng_Latn", "zho_Hans", "arb_Arab", "swh_Latn")
    }
    assert normal == {"eng_Latn": "en", "zho_Hans": "zh", "arb_Arab": "ar", "swh_Latn": "sw"}


def test_sib200_subsets_are_deterministic_and_stay_parallel(shared_data: Path) -> None:
    from kdreg_plugins.benchmarks.sib200 import SIB200

    params = SIB200.Params(path=shared_data / "sib200", languages="yor_Latn", max_train_examples=50,
                           max_eval_examples=20, seed=3)  # fmt: skip
    bench, again = SIB200(params), SIB200(params)
    assert sib_split_sizes(bench, "eng_Latn") == sib_split_sizes(bench, "yor_Latn") == (50, 20, 20)
    assert bench.examples("eng_Latn", "train") == again.examples("eng_Latn", "train")
    for split in ("validation", "test"):
        assert [e.label for e in bench.examples("eng_Latn", split)] == [
            e.label for e in bench.examples("yor_Latn", split)
        ]


def test_files_reads_the_shared_sib200_copy_like_sib200(shared_data: Path) -> None:
    from kdreg.plugins.registry import registry

    files = (
        registry().resolve("benchmark", f"files:path={shared_data / 'sib200'},label_column=category").create()
    )
    sib = registry().resolve("benchmark", f"sib200:path={shared_data / 'sib200'}").create()
    files.check()
    assert files.source_language() == "eng_Latn"  # found as the English folder
    assert sorted(files.languages()) == sorted(sib.languages()) and len(files.languages()) == 29
    assert list(files.labels()) == SIB_LABELS  # from the source folder's labels.txt
    for language in ("eng_Latn", "jpn_Jpan", "yor_Latn"):
        for split in ("train", "validation", "test"):
            assert files.examples(language, split) == sib.examples(language, split)


def test_sib200_from_a_hub_layout_copy(tmp_path: Path) -> None:
    from datasets import Features, Value

    from kdreg_plugins.benchmarks.sib200 import SIB200

    features = Features({"index_id": Value("int64"), "category": Value("string"), "text": Value("string")})

    def rows(lang: str, categories: list[str]) -> dict[str, list[Any]]:
        return {
            "index_id": list(range(len(categories))),
            "category": categories,
            "text": [f"{lang} {i}" for i in range(len(categories))],
        }

    copy = write_hub_repo(
        tmp_path / "sib200",
        features,
        {
            lang: {
                "train": rows(lang, ["travel", "health", "sports"]),
                "validation": rows(lang, ["geography"]),
                "test": rows(lang, ["politics", "travel"]),
            }
            for lang in ("eng_Latn", "deu_Latn")
        },
    )
    bench = SIB200(SIB200.Params(path=copy, languages="deu_Latn"))
    assert bench.languages() == ("eng_Latn", "deu_Latn")
    assert [e.label for e in bench.examples("deu_Latn", "test")] == [2, 1]
    assert [e.label for e in bench.examples("eng_Latn", "validation")] == [6]


# ------------------------------------------------------------- malformed input
HEADER = "index_id\tcategory\ttext\n"


def make_folder(root: Path) -> Path:
    """A small valid SIB-200-style folder: en (source) and de, three splits each."""
    for lang in ("eng_Latn", "deu_Latn"):
        (root / lang).mkdir(parents=True)
        for split, cats in (
            ("train", ["travel", "health", "travel"]),
            ("dev", ["sports"]),
            ("test", ["health"]),
        ):
            body = "".join(f'{i}\t{c}\t{lang} "quoted" text {i}\n' for i, c in enumerate(cats))
            (root / lang / f"{split}.tsv").write_text(HEADER + body, encoding="utf-8")
    return root


def everything(bench: Any) -> None:
    bench.check()
    for language in bench.languages():
        for split in ("validation", "test"):
            bench.examples(language, split)


def build(kind: str, root: Path, **extra: str) -> Any:
    from kdreg.plugins.registry import registry

    spec = f"{kind}:path={root}" + ("" if kind == "sib200" else ",label_column=category")
    spec += "".join(f",{k}={v}" for k, v in extra.items())
    return registry().resolve("benchmark", spec).create()


@pytest.mark.parametrize("kind", ["files", "sib200"])
def test_a_valid_folder_loads(kind: str, tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data")
    with (root / "deu_Latn" / "test.tsv").open("a", encoding="utf-8", newline="") as handle:
        handle.write("1\tsports\tzwei\u2028Zeilen, CRLF\r\n")  # a line separator inside a text
    bench = build(kind, root)
    everything(bench)
    train, test = bench.examples("deu_Latn", "train"), bench.examples("deu_Latn", "test")
    assert train[0].text == 'deu_Latn "quoted" text 0'  # quotes kept: TSV is read without quoting
    assert [e.text for e in test] == ['deu_Latn "quoted" text 0', "zwei\u2028Zeilen, CRLF"]


CASES = {
    "missing split": (
        lambda r: (r / "deu_Latn" / "test.tsv").unlink(),
        "deu_Latn",
        "missing test split file",
    ),
    "unknown label": (
        lambda r: (r / "deu_Latn" / "dev.tsv").write_text(HEADER + "0\tcooking\tKochen\n", encoding="utf-8"),
        "deu_Latn/dev.tsv, line 2",
        "unknown label 'cooking'",
    ),
    "empty file": (lambda r: (r / "deu_Latn" / "test.tsv").write_bytes(b""), "deu_Latn/test.tsv", "empty"),
    "bad encoding": (
        lambda r: (r / "deu_Latn" / "dev.tsv").write_bytes(HEADER.encode() + b"0\tsports\tStra\xdfe\n"),
        "deu_Latn/dev.tsv",
        "line 2 is not valid UTF-8 (byte 0xdf",
    ),
    "missing column": (
        lambda r: (r / "deu_Latn" / "test.tsv").write_text(
            "index_id\ttopic\ttext\n0\thealth\tx\n", encoding="utf-8"
        ),
        "deu_Latn/test.tsv",
        "no column 'category'",
    ),
    "ragged row": (
        lambda r: (r / "deu_Latn" / "test.tsv").write_text(HEADER + "0\thealth\ta\tb\n", encoding="utf-8"),
        "deu_Latn/test.tsv, line 2",
        "4 fields where the header has 3",
    ),
}


@pytest.mark.parametrize("kind", ["files", "sib200"])
@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input_is_one_line_naming_file_and_problem(kind: str, case: str, tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data")
    damage, where, problem = CASES[case]
    damage(root)
    with pytest.raises(DataError) as caught:
        everything(build(kind, root))
    message = str(caught.value)
    assert "\n" not in message
    assert str(root / where.split(",")[0]) in message and where.split("/")[-1] in message
    assert problem in message


def test_files_formats_pairs_and_inferred_labels(tmp_path: Path) -> None:
    import json

    from kdreg.plugins.spec import Example
    from kdreg_plugins.benchmarks.files import LocalFiles

    root = tmp_path / "pairs"
    (root / "en").mkdir(parents=True)
    (root / "fr").mkdir()
    rows = [
        {"a": "one", "b": "uno", "y": 1},
        {"a": "two", "b": "dos", "y": 0},
        {"a": "three", "b": "tres", "y": 1},
    ]
    for split in ("train", "dev", "test"):
        (root / "en" / f"{split}.jsonl").write_text(
            "\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8"
        )
    (root / "fr" / "validation.csv").write_text('a,b,y\n"un, deux",deux,1\n', encoding="utf-8")
    (root / "fr" / "test.csv").write_text("a,b,y\ntrois,quatre,0\n", encoding="utf-8")
    bench = LocalFiles(LocalFiles.Params(path=root, text_column="a", text_pair_column="b", label_column="y"))
    everything(bench)
    assert bench.source_language() == "en" and tuple(bench.labels()) == ("0", "1")
    assert bench.examples("en", "train")[0] == Example("one", 1, "uno")
    assert bench.examples("fr", "validation")[0].text == "un, deux"  # CSV quoting honoured
    assert bench.metrics == ("accuracy", "macro_f1")


def test_files_needs_a_source_it_can_find(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data")
    shutil.move(root / "eng_Latn", root / "xx")
    with pytest.raises(DataError, match="name it with files:source="):
        build("files", root)
    assert build("files", root, source="xx").source_language() == "xx"


def test_files_folders_named_by_language_names(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data")
    shutil.move(root / "eng_Latn", root / "english")
    shutil.move(root / "deu_Latn", root / "toba_batak")
    bench = build("files", root)
    everything(bench)  # check() accepts both names
    assert bench.source_language() == "english"  # found as the English folder by its name
    assert [bench.normalize_language(x) for x in bench.languages()] == ["en", "bbc"]


def test_files_refuses_a_folder_it_cannot_name_until_codes_gives_one(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "data")
    shutil.move(root / "deu_Latn", root / "old_tongue")
    with pytest.raises(DataError) as caught:
        build("files", root).check()
    message = str(caught.value)
    assert "\n" not in message and "'old_tongue'" in message and "files:codes=old_tongue:<code>" in message
    bench = build("files", root, codes="old_tongue:ang")
    everything(bench)
    assert bench.normalize_language("old_tongue") == "ang" and bench.params.codes == "old_tongue:ang"
    with pytest.raises(DataError, match="codes= names 'old_tonge', not a language folder"):
        build("files", root, codes="old_tonge:ang").check()
    with pytest.raises(KdregError, match="folder:code pairs"):
        build("files", root, codes="old_tongue")
    # equivalent spellings of the mapping are one canonical parameter (one run identity)
    assert build("files", root, codes="b:de+old_tongue:ang").params.codes == build(
        "files", root, codes="old_tongue:ang;b:de").params.codes


def test_files_without_path_is_a_parameter_error() -> None:
    from kdreg.plugins.registry import registry

    with pytest.raises(KdregError, match="files:path="):
        registry().resolve("benchmark", "files").create()


# ------------------------------------------------------------------ end to end
def _skip_until_models_exist() -> None:
    """The `hf` teacher and `layers` student are being written alongside; skip until they exist."""
    import importlib.util

    for module in ("kdreg_plugins.models.teachers", "kdreg_plugins.models.students"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} does not exist yet")


@pytest.mark.slow
def test_kdreg_run_stores_per_language_sib200_results(
    shared_data: Path, tmp_path: Path, kdreg_cli: Any
) -> None:
    _skip_until_models_exist()
    from sqlalchemy import select

    from kdreg.store.schema import Result, Run
    from kdreg.store.store import open_store
    from kdreg.testing.tiny import save_tiny_bert

    teacher = save_tiny_bert(tmp_path / "teacher", vocab_file=shared_data / "mbert-vocab" / "vocab.txt")
    grid = tmp_path / "grid.toml"
    short = "max_steps = 2\nbatch_size = 16\nmax_length = 32\n"
    grid.write_text(f"[teacher_finetune]\n{short}[finetune]\n{short}", encoding="utf-8")
    sib = f"sib200:path={shared_data / 'sib200'},max_train_examples=48,max_eval_examples=24"
    result = kdreg_cli(
        "run", "--teacher", f"hf:path={teacher}", "--student", "layers:k=1", "--stage", "none",
        "--benchmark", sib, "--lang", "deu_Latn", "--lang", "jpn_Jpan",
        "--config", str(grid), "--device", "cpu",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]

    store = open_store(None, create=False)
    with store.session() as s:
        runs = s.scalars(select(Run).where(Run.stage == "none")).all()
        assert len(runs) == 1 and runs[0].benchmark == "sib200"
        rows = s.scalars(select(Result).where(Result.run_id == runs[0].id)).all()
        found = {(r.language, r.lang, r.split, r.metric, r.is_source) for r in rows}
    store.close()
    expected = {
        (language, lang, split, metric, language == "eng_Latn")
        for language, lang in (("eng_Latn", "en"), ("deu_Latn", "de"), ("jpn_Jpan", "ja"))
        for split in ("validation", "test")
        for metric in ("accuracy", "macro_f1")
    }
    assert expected <= found
    assert all(0.0 <= r.value <= 1.0 for r in rows if r.split != "model")  # 'model': its parameter count
