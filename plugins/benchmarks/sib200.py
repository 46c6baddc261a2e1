"""SIB-200: topic classification of Flores-200 sentences in 205 languages (Adelani et al. 2024).

Seven topics; every language has the same 701 train, 99 dev and 204 test sentences
(parallel: same ids and labels in every language), so fine-tuning on ``eng_Latn`` and
testing the others is a leak-free zero-shot transfer benchmark. The classes are
unbalanced (the majority class is 25 % of test), so macro-F1 is recorded besides accuracy.

Two sources, one result:

* the hub dataset ``Davlan/sib200`` (configs like ``deu_Latn``; splits train /
  validation / test; columns ``index_id``, ``category``, ``text``), or a local copy of
  that repository given as ``path=``;
* ``path=`` to the layout of the SIB-200 GitHub repository (``data/annotated``): one
  folder per language with ``train.tsv``, ``dev.tsv``, ``test.tsv`` (header
  ``index_id<TAB>category<TAB>text``, no quoting); its languages are the folders found.

Without ``languages=`` the hub source uses :data:`DEFAULT_LANGUAGES` (the 15 XNLI
languages and 14 more across 12 scripts), since evaluating all 205 is rarely wanted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from kdreg.plugins.spec import Example

from ._base import HubBenchmark, HubParams
from ._folder import FolderData
from ._hub import parse_language_list
from ._tabular import SPLIT_FILES, Columns

SIB200_LABELS = ("science/technology", "travel", "politics", "sports", "health", "entertainment", "geography")
DEFAULT_LANGUAGES = (
    "amh_Ethi",
    "arb_Arab",
    "ben_Beng",
    "bul_Cyrl",
    "deu_Latn",
    "ell_Grek",
    "eng_Latn",
    "fin_Latn",
    "fra_Latn",
    "hau_Latn",
    "heb_Hebr",
    "hin_Deva",
    "ind_Latn",
    "ita_Latn",
    "jpn_Jpan",
    "kor_Hang",
    "pes_Arab",
    "pol_Latn",
    "por_Latn",
    "rus_Cyrl",
    "spa_Latn",
    "swh_Latn",
    "tam_Taml",
    "tha_Thai",
    "tur_Latn",
    "urd_Arab",
    "vie_Latn",
    "yor_Latn",
    "zho_Hans",
)


@dataclass(frozen=True)
class SIB200Params(HubParams):
    """As every hub benchmark, but ``path`` may also be the repository's TSV layout."""

    path: Path | None = field(
        default=None,
        metadata={"help": "folder of <language>/{train,dev,test}.tsv, or a local copy of the hub repository"},
    )


class SIB200(HubBenchmark):
    """SIB-200 topics (Davlan/sib200 or its TSV files): fine-tuned on eng_Latn."""

    Params: ClassVar[type] = SIB200Params
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1")
    plugin_name: ClassVar[str] = "sib200"
    dataset: ClassVar[str] = "Davlan/sib200"
    all_languages: ClassVar[tuple[str, ...]] = DEFAULT_LANGUAGES
    source: ClassVar[str] = "eng_Latn"
    label_names: ClassVar[tuple[str, ...]] = SIB200_LABELS
    text_column: ClassVar[str] = "text"
    label_column: ClassVar[str] = "category"

    def __init__(self, params: Any = None) -> None:
        self._folder: FolderData | None = None
        super().__init__(params)

    def known_languages(self) -> Sequence[str]:
        path = self.params.path
        if path is not None and _is_tsv_layout(Path(path)):
            self._folder = FolderData(
                Path(path),
                Columns(text="text", label="category", plugin="sib200"),
                source=self.source,
                languages=parse_language_list(self.params.languages),
                labels=SIB200_LABELS,
                max_train_examples=self.params.max_train_examples,
                seed=self.params.seed,
            )
            return self._folder.languages
        # The hub has 205 configs: any Flores-200 code may be asked for by name.
        wanted = parse_language_list(self.params.languages)
        return tuple(dict.fromkeys([*DEFAULT_LANGUAGES, *(wanted or ())])) if wanted else DEFAULT_LANGUAGES

    def check(self) -> None:
        if self._folder is not None:
            self._folder.check_layout()
            self._folder.examples(self.source, "train")
        else:
            super().check()

    def load_examples(self, language: str, split: str) -> list[Example]:
        if self._folder is not None:
            examples = list(self._folder.examples(language, split))
            if split != "train" and self.params.max_eval_examples is not None:
                from ._hub import subsample_indices

                chosen = subsample_indices(len(examples), self.params.max_eval_examples, self.params.seed)
                examples = examples if chosen is None else [examples[i] for i in chosen]
            return examples
        return super().load_examples(language, split)


def _is_tsv_layout(root: Path) -> bool:
    """True when ``root`` has language folders with split files rather than a hub repository copy."""
    if not root.is_dir():
        return True  # let FolderData report the missing folder with its advice
    return any(
        (d / f"{stem}.tsv").is_file()
        for d in root.iterdir()
        if d.is_dir()
        for stems in SPLIT_FILES.values()
        for stem in stems
    )
