"""A user's own labelled data: one folder per language, TSV/CSV/JSONL split files.

Layout::

    my-task/
      labels.txt            optional: one label per line, fixing their order
      en/train.tsv  en/dev.tsv  en/test.tsv
      de/dev.tsv    de/test.tsv          (train is only needed in the source language)

The text column(s) and the label column are parameters; the label set comes from
``labels.txt`` or from the source language's train split, and every other language
is checked against it. A folder is named by a language code (``de``, ``deu_Latn``) or a
language name (``german``, ``toba_batak``): results store the folder name as spelled
and its normalised code (:mod:`kdreg.languages`), so ``kdreg query --lang de`` finds
``german``. A folder that is neither (``old_tongue``) is refused by ``check()`` unless
``codes=`` names its code: nothing is stored under a code nobody would query. Files are
read and validated in full by ``check()``, so a broken file fails a grid before anything
trains. Accuracy and macro-F1 are both recorded, since nothing is known about the class
balance of a user's data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from kdreg.errors import DataError
from kdreg.languages import normalize_language, resolve_language
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
    codes: str | None = field(
        default=None,
        metadata={
            "help": "language codes of folders named otherwise, folder:code joined by '+' "
            "(e.g. old_tongue:ang+conlang:l1)"
        },
    )

    def __post_init__(self) -> None:
        # Frozen dataclass: store the canonical text so equivalent spellings hash to one run.
        if self.codes is not None:
            pairs = parse_codes(self.codes)
            object.__setattr__(self, "codes", "+".join(f"{k}:{v}" for k, v in sorted(pairs.items())) or None)


def parse_codes(text: str) -> dict[str, str]:
    """``toba:bbc+conlang:l1`` → {'toba': 'bbc', 'conlang': 'l1'} (ValueError names the problem)."""
    pairs: dict[str, str] = {}
    for item in re.split(r"[+;\s]+", text.strip()):
        if not item:
            continue
        folder, colon, code = item.partition(":")
        if not colon or not folder or not code:
            raise ValueError(
                f"codes must be folder:code pairs joined by '+', e.g. toba_batak:bbc; got {item!r}"
            )
        if len(normalize_language(code)) > 20:
            raise ValueError(f"the code {code!r} for folder {folder!r} is too long; give an ISO 639 code")
        pairs[folder] = code
    return pairs


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
        self._codes = parse_codes(p.codes) if p.codes else {}
        self._data = FolderData(
            p.path,
            Columns(text=p.text_column, label=p.label_column, text_pair=p.text_pair_column, plugin="files"),
            source=p.source,
            languages=parse_language_list(p.languages),
            max_train_examples=p.max_train_examples,
            seed=p.seed,
            normalize=self.normalize_language,
        )

    def check(self) -> None:
        self.check_language_names()
        self._data.check_all()

    def check_language_names(self) -> None:
        """Every selected folder is a language kdreg can name: a code, a language name, or in ``codes=``."""
        root = self._data.root
        stray = [folder for folder in self._codes if folder not in self._data.found]
        if stray:
            raise DataError(
                f"files: codes= names {', '.join(map(repr, stray))}, not a language folder in {root} "
                f"(folders: {' '.join(self._data.found)})."
            )
        unknown = [f for f in self._data.languages if f not in self._codes and resolve_language(f) is None]
        if unknown:
            import importlib.util

            pairs = "+".join(f"{folder}:<code>" for folder in unknown)
            names = "" if importlib.util.find_spec("language_data") else (
                " (language names need the language_data package: pip install 'langcodes[data]')")
            raise DataError(
                f"files: cannot tell which language the folder(s) {', '.join(map(repr, unknown))} in {root} "
                f"hold: neither an ISO 639 code nor a language name{names}; rename each to its code "
                f"(e.g. de, deu or deu_Latn) or give the codes with files:codes={pairs}."
            )

    def normalize_language(self, code: str) -> str:
        """The folder's code from ``codes=``, else the code its name (or code) resolves to."""
        return normalize_language(self._codes.get(code, code))

    def languages(self) -> Sequence[str]:
        return self._data.languages

    def source_language(self) -> str:
        return self._data.source

    def labels(self) -> Sequence[str]:
        return self._data.labels()

    def examples(self, language: str, split: str) -> Sequence[Example]:
        return self._data.examples(language, split)
