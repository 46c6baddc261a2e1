"""A user's own labelled data: one folder per language, TSV/CSV/JSONL split files.

Layout::

    my-task/
      labels.txt            optional: one label per line, fixing their order
      en/train.tsv  en/dev.tsv  en/test.tsv
      de/dev.tsv    de/test.tsv          (train is only needed in the source language)

The text column(s) and the label column are parameters; the label set comes from
``labels.txt`` or from the source language's train split, and every other language
is checked against it. Files are read and validated in full by ``check()``, so a
broken file fails a grid before anything trains. Accuracy and macro-F1 are both
recorded, since nothing is known about the class balance of a user's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from kdreg.plugins.spec import Benchmark, Example

from ._folder import FolderData
from ._hub import parse_language_list
from ._tabular import Columns


@dataclass(frozen=True)
class FilesParams:
    """Where the files are and which columns to read."""

    path: Path | None = field(
        default=None, metadata={"help": "folder with one sub-folder per language (required)"}
    )
    source: str | None = field(
        default=None,
        metadata={"help": "source language folder (default: the one that is English, e.g. en or eng_Latn)"},
    )
    text_column: str = field(default="text", metadata={"help": "column with the text"})
    text_pair_column: str | None = field(
        default=None, metadata={"help": "column with a second text (pair tasks)"}
    )
    label_column: str = field(default="label", metadata={"help": "column with the label"})
    languages: str | None = field(
        default=None, metadata={"help": "subset of language folders, joined by '+'"}
    )
    max_train_examples: int | None = field(
        default=None, metadata={"help": "deterministic subset of the train split"}
    )
    seed: int = field(default=0, metadata={"help": "seed of that subset"})


class LocalFiles(Benchmark):
    """Your own labelled files: <path>/<language>/{train,dev,test}.{tsv,csv,jsonl}."""

    Params: ClassVar[type] = FilesParams
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1")

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        from kdreg.errors import ParameterError

        p = self.params
        if p.path is None:
            raise ParameterError(
                "Benchmark 'files' needs a folder: write files:path=<folder with a sub-folder per language>."
            )
        self._data = FolderData(
            p.path,
            Columns(text=p.text_column, label=p.label_column, text_pair=p.text_pair_column, plugin="files"),
            source=p.source,
            languages=parse_language_list(p.languages),
            max_train_examples=p.max_train_examples,
            seed=p.seed,
        )

    def check(self) -> None:
        self._data.check_all()

    def languages(self) -> Sequence[str]:
        return self._data.languages

    def source_language(self) -> str:
        return self._data.source

    def labels(self) -> Sequence[str]:
        return self._data.labels()

    def examples(self, language: str, split: str) -> Sequence[Example]:
        return self._data.examples(language, split)
