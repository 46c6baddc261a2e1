"""A toy topic-classification task (sport, food, weather) in English, German and French.

The data is tiny and ships inside the package (``data/<language>/<split>.tsv``), so the
benchmark works offline and in tests: 24 English training sentences, and 6 validation
and 6 test sentences per language (the same sentences, translated). It is meant to show
how a benchmark plugin is written — read files with :mod:`importlib.resources`, validate
them, raise :class:`~kdreg.errors.DataError` naming the file — not to measure anything.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar

from kdreg.errors import DataError, ParameterError
from kdreg.plugins.spec import Benchmark, Example

ALL_LANGUAGES = ("en", "de", "fr")


@dataclass(frozen=True)
class ToyTopicsParams:
    """Parameters: ``example-topics:languages=de``."""

    languages: str | None = field(
        default=None, metadata={"help": "target languages joined by '+', e.g. de+fr (English is always kept)"}
    )


class ToyTopics(Benchmark):
    """A toy 3-topic task in en/de/fr shipped with the package (offline)."""

    Params: ClassVar[type] = ToyTopicsParams
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1")

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        wanted = [code for code in (self.params.languages or "").split("+") if code]
        unknown = [code for code in wanted if code not in ALL_LANGUAGES]
        if unknown:
            raise ParameterError(
                f"example-topics has no language {unknown[0]!r}; choose among {', '.join(ALL_LANGUAGES)}."
            )
        self._languages = tuple(
            code for code in ALL_LANGUAGES if code == "en" or not wanted or code in wanted
        )
        self._cache: dict[tuple[str, str], tuple[Example, ...]] = {}

    def languages(self) -> Sequence[str]:
        return self._languages

    def source_language(self) -> str:
        return "en"

    def labels(self) -> Sequence[str]:
        return tuple(_data_file("labels.txt").read_text(encoding="utf-8").split())

    def check(self) -> None:
        """Read every file once, so a damaged installation fails before a grid starts."""
        self.examples("en", "train")
        for language in self._languages:
            for split in self.eval_splits:
                self.examples(language, split)

    def examples(self, language: str, split: str) -> Sequence[Example]:
        if language not in self._languages:
            raise DataError(
                f"example-topics has no language {language!r}; it has {', '.join(self._languages)}."
            )
        key = (language, split)
        if key not in self._cache:
            self._cache[key] = self._read(language, split)
        return self._cache[key]

    def _read(self, language: str, split: str) -> tuple[Example, ...]:
        if split == "train" and language != "en":
            return ()  # zero-shot: only the source language has training data
        path = _data_file(language, f"{split}.tsv")
        labels = list(self.labels())
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        examples = []
        for number, row in enumerate(rows, start=2):
            if row.get("label") not in labels or not (row.get("text") or "").strip():
                raise DataError(f"{path}: line {number} needs a label among {labels} and a text.")
            examples.append(Example(text=row["text"], label=labels.index(row["label"])))
        return tuple(examples)


def _data_file(*parts: str) -> Any:
    """A file of the package's data folder (works from a wheel, a zip or a source checkout)."""
    path = resources.files("kdreg_example_plugin").joinpath("data", *parts)
    if not path.is_file():
        raise DataError(
            f"example-topics: data file {'/'.join(parts)} is missing; reinstall kdreg-example-plugin."
        )
    return path
