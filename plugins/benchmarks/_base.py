"""What the hub benchmarks (XNLI, PAWS-X, SIB-200) share: parameters, caching, subsampling.

A hub benchmark is one dataset with one config per language and the three usual
splits; a subclass only names the dataset, its languages, its columns and labels.
Loaded splits are kept in the instance, because the pipeline asks for each language
and split more than once (teacher fine-tuning, student fine-tuning, evaluation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from kdreg.errors import DataError
from kdreg.plugins.spec import Benchmark, Example

from ._hub import choose_languages, load_hub, parse_language_list, subsample_indices

SPLITS: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class HubParams:
    """Parameters every hub benchmark takes."""

    path: Path | None = field(
        default=None,
        metadata={
            "help": "local copy of the dataset's hub repository (README.md + data files) to read instead"
        },
    )
    languages: str | None = field(
        default=None,
        metadata={"help": "subset of languages, joined by '+', e.g. de+fr (the source is always kept)"},
    )
    max_train_examples: int | None = field(
        default=None,
        metadata={"help": "deterministic random subset of the source train split (all when unset)"},
    )
    max_eval_examples: int | None = field(
        default=None,
        metadata={"help": "deterministic subset of validation/test (the same rows in every language)"},
    )
    seed: int = field(default=0, metadata={"help": "seed of the subsets (independent of the run's seed)"})


class HubBenchmark(Benchmark):
    """A benchmark read with ``datasets.load_dataset(dataset, <language config>)``."""

    Params: ClassVar[type] = HubParams
    plugin_name: ClassVar[str] = ""
    dataset: ClassVar[str] = ""
    all_languages: ClassVar[tuple[str, ...]] = ()
    source: ClassVar[str] = "en"
    label_names: ClassVar[tuple[str, ...]] = ()
    text_column: ClassVar[str] = "text"
    pair_column: ClassVar[str | None] = None
    label_column: ClassVar[str] = "label"

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        wanted = parse_language_list(self.params.languages)
        self._languages = choose_languages(self.plugin_name, self.known_languages(), wanted, self.source)
        self._loaded: dict[str, Any] = {}
        self._examples: dict[tuple[str, str], tuple[Example, ...]] = {}

    # -------------------------------------------------------------- contract
    def known_languages(self) -> Sequence[str]:
        """Languages one may ask for (``languages`` picks among them)."""
        return self.all_languages

    def languages(self) -> Sequence[str]:
        return self._languages

    def source_language(self) -> str:
        return self.source

    def labels(self) -> Sequence[str]:
        return self.label_names

    def chance_level(self, metric: str) -> float | None:
        """Accuracy of guessing: 1 / number of labels (the label names are fixed, no data is read)."""
        return 1 / len(self.label_names) if metric == "accuracy" and self.label_names else None

    def check(self) -> None:
        """Load the source language now: a missing dataset fails before a grid writes anything."""
        self.examples(self.source, "train")

    def examples(self, language: str, split: str) -> Sequence[Example]:
        key = (language, split)
        if key not in self._examples:
            if language not in self._languages:
                raise DataError(
                    f"{self.plugin_name}: no language {language!r} (languages: {' '.join(self._languages)})."
                )
            if split not in SPLITS:
                raise DataError(
                    f"{self.plugin_name}: unknown split {split!r}; use one of {', '.join(SPLITS)}."
                )
            self._examples[key] = tuple(self.load_examples(language, split))
        return self._examples[key]

    # -------------------------------------------------------------- loading
    def load_examples(self, language: str, split: str) -> list[Example]:
        """Examples of one language and split (uncached; ``examples`` caches)."""
        loaded = self._dataset(language)
        hub_split = self.hub_split(split)
        if hub_split not in loaded:
            raise DataError(
                f"{self.plugin_name}: {self._where()} config {language} has no split {hub_split!r} "
                f"(it has {', '.join(loaded)})."
            )
        return self.to_examples(loaded[hub_split], language, split)

    def hub_split(self, split: str) -> str:
        """The dataset's own name of one of kdreg's splits."""
        return split

    def _dataset(self, language: str) -> Any:
        if language not in self._loaded:
            self._loaded[language] = load_hub(
                self.dataset, self.config_name(language), plugin=self.plugin_name, path=self.params.path
            )
        return self._loaded[language]

    def config_name(self, language: str) -> str:
        """The dataset config of a language (the code itself for every benchmark here)."""
        return language

    def _where(self) -> str:
        return f"{self.params.path} (local copy of {self.dataset})" if self.params.path else self.dataset

    def to_examples(self, dataset: Any, language: str, split: str) -> list[Example]:
        """Rows → Examples: drop rows without a label or text, then take the deterministic subset."""
        where = f"{self.plugin_name}: {self._where()} config {language} split {split}"
        missing = [
            c
            for c in (self.text_column, self.pair_column, self.label_column)
            if c and c not in dataset.column_names
        ]
        if missing:
            raise DataError(
                f"{where} has no column {missing[0]!r} (columns: {', '.join(dataset.column_names)})."
            )
        labels = label_indices(dataset, self.label_column, self.label_names, where)
        keep = [i for i, label in enumerate(labels) if label is not None]
        limit = self.params.max_train_examples if split == "train" else self.params.max_eval_examples
        chosen = subsample_indices(len(keep), limit, self.params.seed)
        if chosen is not None:
            keep = [keep[i] for i in chosen]
        columns = [self.text_column] + ([self.pair_column] if self.pair_column else [])
        rows = dataset.select_columns(columns).select(keep).to_dict()
        texts = rows[self.text_column]
        pairs = rows[self.pair_column] if self.pair_column else [None] * len(keep)
        return [
            Example(text=text, label=labels[i], text_pair=pair)  # type: ignore[arg-type]
            for i, text, pair in zip(keep, texts, pairs, strict=True)
            if text is not None and (self.pair_column is None or pair is not None)
        ]


def label_indices(dataset: Any, column: str, names: Sequence[str], where: str) -> list[int | None]:
    """Label index per row (None where the label is missing, e.g. PAWS-X's -1).

    A ``ClassLabel`` column must have as many classes as ``names``; a string column is
    mapped by name and an unknown name is an error (it would silently shift every index).
    """
    from datasets import ClassLabel

    feature = dataset.features[column]
    values = dataset.select_columns([column]).to_dict()[column]
    if isinstance(feature, ClassLabel) and feature.num_classes != len(names):
        raise DataError(
            f"{where}: column {column!r} has {feature.num_classes} classes {feature.names}, "
            f"expected {len(names)} ({', '.join(names)})."
        )
    index = {name: i for i, name in enumerate(names)}
    out: list[int | None] = []
    for row, value in enumerate(values):
        if value is None or value == "" or (isinstance(value, int) and value < 0):
            out.append(None)
        elif isinstance(value, str):
            if value not in index:
                raise DataError(
                    f"{where}, row {row}: unknown label {value[:60]!r} (labels: {', '.join(names)})."
                )
            out.append(index[value])
        elif isinstance(value, int) and value < len(names):
            out.append(value)
        else:
            raise DataError(f"{where}, row {row}: label {value!r} is out of range for {len(names)} labels.")
    return out
