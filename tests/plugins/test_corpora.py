"""The corpora: local text files, and Wikipedia / CC-100 streamed through ``datasets``.

The hub corpora are tested offline on small local copies of the hub repositories
(README ``configs:`` metadata + parquet files with the hub's columns), read with the
same ``load_dataset(..., streaming=True)`` call as the hub.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from kdreg.errors import DataError, KdregError
from kdreg.plugins.registry import registry


@pytest.fixture(autouse=True)
def hf_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private datasets cache: tests neither read nor fill the user's ~/.cache/huggingface."""
    import datasets.config
    import huggingface_hub.constants

    cache = tmp_path_factory.mktemp("hf-cache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache / "hub"))
    return cache


def write_text_corpus(root: Path, lines: dict[str, list[str]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for language, content in lines.items():
        (root / f"{language}.txt").write_text("\n".join(content) + "\n", encoding="utf-8")
    return root


def write_streaming_repo(root: Path, configs: dict[str, list[dict[str, Any]]]) -> Path:
    """A local copy of a corpus repository: one config per language, a train split, row counts in the card."""
    import yaml
    from datasets import Dataset

    card: dict[str, Any] = {"configs": [], "dataset_info": []}
    for config, rows in configs.items():
        (root / config).mkdir(parents=True, exist_ok=True)
        Dataset.from_list(rows).to_parquet(root / config / "train-00000-of-00001.parquet")
        card["configs"].append(
            {"config_name": config, "data_files": [{"split": "train", "path": f"{config}/train-*"}]}
        )
        card["dataset_info"].append(
            {
                "config_name": config,
                "features": [{"name": k, "dtype": "string"} for k in rows[0]],
                "splits": [{"name": "train", "num_examples": len(rows)}],
            }
        )
    (root / "README.md").write_text(
        "---\n" + yaml.safe_dump(card, sort_keys=False) + "---\n", encoding="utf-8"
    )
    return root


# ------------------------------------------------------------------------ text
def test_text_corpus_reads_lines_and_counts_them(tmp_path: Path) -> None:
    from kdreg_plugins.corpora.text import TextFiles

    root = write_text_corpus(
        tmp_path / "corpus",
        {
            "de": ["\ufeffEins.", "", "Zwei.", "   ", "Drei."],
            "fr": ["Un.", "Deux."],
        },
    )
    corpus = TextFiles(TextFiles.Params(path=root))
    corpus.check()
    assert list(corpus.languages()) == ["de", "fr"]
    assert list(corpus.texts("de")) == ["Eins.", "Zwei.", "Drei."]  # BOM and blank lines dropped
    assert corpus.sizes() == {"de": 3, "fr": 2}
    assert list(corpus.texts("de")) == list(corpus.texts("de"))  # deterministic, restartable


def test_text_corpus_explicit_mapping_and_subset(tmp_path: Path) -> None:
    from kdreg.plugins.registry import registry

    root = write_text_corpus(tmp_path / "c", {"a": ["x"], "b": ["y", "z"], "c": ["w"]})
    corpus = (
        registry()
        .resolve("corpus", f"text:files=de={root / 'a.txt'};sw={root / 'b.txt'},languages=sw")
        .create()
    )
    assert list(corpus.languages()) == ["sw"]
    assert list(corpus.texts("sw")) == ["y", "z"]


def test_text_corpus_errors_name_the_file(tmp_path: Path) -> None:
    from kdreg_plugins.corpora.text import TextFiles

    root = tmp_path / "bad"
    root.mkdir()
    (root / "de.txt").write_bytes(b"gut\n" + b"schlecht \xe4\n")
    corpus = TextFiles(TextFiles.Params(path=root))
    with pytest.raises(DataError) as caught:
        corpus.sizes()
    assert str(root / "de.txt") in str(caught.value) and "line 2 is not valid UTF-8" in str(caught.value)

    (root / "de.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="only blank lines"):
        TextFiles(TextFiles.Params(path=root)).check()
    with pytest.raises(DataError, match="is not a folder"):
        TextFiles(TextFiles.Params(path=tmp_path / "missing"))
    with pytest.raises(KdregError, match="exactly one of path="):
        TextFiles()


# ------------------------------------------------------------------ hub corpora
def test_wikipedia_streams_paragraphs_from_a_hub_layout_copy(tmp_path: Path) -> None:
    from kdreg_plugins.corpora.hub import Wikipedia

    article = (
        "Berlin\n\nBerlin ist die Hauptstadt Deutschlands.\nGeschichte\n"
        "Die Stadt wurde im 13. Jahrhundert erwähnt."
    )
    copy = write_streaming_repo(
        tmp_path / "wikipedia",
        {
            "20231101.de": [
                {"id": "1", "url": "u", "title": "Berlin", "text": article},
                {
                    "id": "2",
                    "url": "u",
                    "title": "Bonn",
                    "text": "Bonn liegt am Rhein in Nordrhein-Westfalen.",
                },
            ],
            "20231101.sw": [
                {"id": "1", "url": "u", "title": "Nairobi", "text": "Nairobi ni mji mkuu wa Kenya."}
            ],
        },
    )
    corpus = Wikipedia(Wikipedia.Params(path=copy, languages="de+sw"))
    assert list(corpus.texts("de")) == [
        "Berlin ist die Hauptstadt Deutschlands.",  # the title line and the heading are under min_chars
        "Die Stadt wurde im 13. Jahrhundert erwähnt.",
        "Bonn liegt am Rhein in Nordrhein-Westfalen.",
    ]
    assert corpus.sizes() == {"de": 2, "sw": 1}  # articles, from the card's metadata


def test_cc100_style_corpus_with_a_config_template(tmp_path: Path) -> None:
    from kdreg.plugins.registry import registry

    copy = write_streaming_repo(
        tmp_path / "cc",
        {
            "fr_Latn": [{"text": "Bonjour.\nÇa va ?"}, {"text": "Merci."}],
            "en_Latn": [{"text": "Hello."}],
        },
    )
    corpus = (
        registry().resolve("corpus", f"cc100:path={copy},languages=fr+en,config={{language}}_Latn").create()
    )
    assert list(islice(corpus.texts("fr"), 10)) == ["Bonjour.", "Ça va ?", "Merci."]
    assert corpus.sizes() == {"fr": 2, "en": 1}


def test_hub_corpora_offline_is_one_actionable_line() -> None:
    from kdreg_plugins.corpora.hub import CC100, Wikipedia

    for corpus, name in (
        (Wikipedia(Wikipedia.Params(languages="de")), "wikipedia"),
        (CC100(CC100.Params(languages="de")), "cc100"),
    ):
        for call in (lambda c=corpus: next(iter(c.texts("de"))), corpus.check):  # check: before a grid starts
            with pytest.raises(DataError) as caught:
                call()
            message = str(caught.value)
            assert "\n" not in message and "unreachable" in message and f"{name}:path=" in message


def test_missing_config_in_a_local_copy(tmp_path: Path) -> None:
    from kdreg_plugins.corpora.hub import Wikipedia

    copy = write_streaming_repo(tmp_path / "w", {"20231101.de": [{"text": "Ein ausreichend langer Satz."}]})
    with pytest.raises(DataError, match=r"no config '20231101.fr'"):
        list(Wikipedia(Wikipedia.Params(path=copy, languages="fr")).texts("fr"))
    with pytest.raises(DataError, match=r"20231101.fr"):
        Wikipedia(Wikipedia.Params(path=copy, languages="de+fr")).check()
    Wikipedia(Wikipedia.Params(path=copy, languages="de")).check()


def test_text_corpus_paths_are_recorded_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "de.txt").write_text("ein satz\n")
    monkeypatch.chdir(tmp_path)
    by_folder = registry().resolve("corpus", "text:path=.")
    assert by_folder.params.path == tmp_path
    by_files = registry().resolve("corpus", "text:files=de=de.txt")
    assert by_files.params.files == f"de={tmp_path / 'de.txt'}"
    assert by_files.create().sizes() == {"de": 1}
