"""A benchmark kept in a folder of per-language split files (see :mod:`._tabular` for the files).

Shared by ``files`` (a user's own data) and ``sib200`` given ``path=`` (the layout the
SIB-200 repository ships). The label set comes from a ``labels.txt`` (in the root or
the source language's folder), or is given, or is inferred from the source train
split files (train, dev, test together); every other language must use labels from that set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from kdreg.errors import DataError
from kdreg.languages import normalize_language
from kdreg.plugins.spec import Example

from ._hub import choose_languages, subsample_indices
from ._tabular import (
    SPLIT_FILES,
    Columns,
    find_languages,
    infer_labels,
    label_index,
    read_label_file,
    read_rows,
    split_file,
)


class FolderData:
    """Languages, labels and cached examples of one benchmark folder."""

    def __init__(
        self,
        root: Path,
        columns: Columns,
        *,
        source: str | None = None,
        languages: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        max_train_examples: int | None = None,
        seed: int = 0,
        normalize: Callable[[str], str] = normalize_language,
    ) -> None:
        self.root = Path(root).expanduser()
        self.columns = columns
        self.plugin = columns.plugin
        self.found = find_languages(self.root, self.plugin)
        """Every language folder, before any ``languages=`` selection."""
        if source is None:
            source = _english(self.found, self.plugin, self.root, normalize)
        self.source = source
        self.languages = choose_languages(self.plugin, self.found, languages, self.source)
        self._labels = tuple(labels) if labels is not None else None
        self.max_train_examples = max_train_examples
        self.seed = seed
        self._examples: dict[tuple[str, str], tuple[Example, ...]] = {}

    def labels(self) -> tuple[str, ...]:
        """The label names: given, from labels.txt, or inferred from the source language's split files."""
        if self._labels is None:
            for candidate in (self.root / "labels.txt", self.root / self.source / "labels.txt"):
                if candidate.is_file():
                    self._labels = read_label_file(candidate)
                    break
            else:
                rows = [
                    row
                    for split in SPLIT_FILES
                    if split == "train" or _has_split(self.root, self.source, split)
                    for row in read_rows(split_file(self.root, self.source, split, self.plugin), self.columns)
                ]
                self._labels = infer_labels(rows)
        return self._labels

    def examples(self, language: str, split: str) -> tuple[Example, ...]:
        """One language's split, read once and cached."""
        key = (language, split)
        if key not in self._examples:
            if language not in self.languages:
                raise DataError(
                    f"{self.plugin}: no language {language!r} in {self.root} "
                    f"(languages: {' '.join(self.languages)})."
                )
            if split not in SPLIT_FILES:
                raise DataError(
                    f"{self.plugin}: unknown split {split!r}; use one of {', '.join(SPLIT_FILES)}."
                )
            path = split_file(self.root, language, split, self.plugin)
            rows = read_rows(path, self.columns)
            indices = label_index(rows, self.labels(), path, self.source)
            examples = [Example(r.text, i, r.text_pair) for r, i in zip(rows, indices, strict=True)]
            if split == "train":
                chosen = subsample_indices(len(examples), self.max_train_examples, self.seed)
                if chosen is not None:
                    examples = [examples[i] for i in chosen]
            self._examples[key] = tuple(examples)
        return self._examples[key]

    def check_layout(self) -> None:
        """Every split file the pipeline reads exists: the source's train, every language's dev and test."""
        split_file(self.root, self.source, "train", self.plugin)
        for language in self.languages:
            for split in ("validation", "test"):
                split_file(self.root, language, split, self.plugin)

    def check_all(self) -> None:
        """Read and validate every file now (labels included), so errors come before any training."""
        self.check_layout()
        self.examples(self.source, "train")
        for language in self.languages:
            for split in ("validation", "test"):
                self.examples(language, split)


def _has_split(root: Path, language: str, split: str) -> bool:
    try:
        split_file(root, language, split, "")
    except DataError:
        return False
    return True


def _english(found: Sequence[str], plugin: str, root: Path, normalize: Callable[[str], str]) -> str:
    english = [code for code in found if normalize(code) == "en"]
    if len(english) == 1:
        return english[0]
    raise DataError(
        f"{plugin}: cannot tell the source language among {' '.join(found)} in {root}; "
        f"name it with {plugin}:source=<folder name>."
    )
