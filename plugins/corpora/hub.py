"""Unlabeled text streamed from Hugging Face Hub datasets: Wikipedia and CC-100.

Both are read with ``datasets.load_dataset(..., streaming=True)``: rows arrive as the
pretraining loop consumes them, so only what is used is downloaded (a full Wikipedia
dump is tens of gigabytes). Each row's text is cut into lines (paragraphs), blank
lines and lines shorter than ``min_chars`` are skipped. ``sizes()`` reads the row
counts from the dataset's metadata (no data is downloaded for it), so the
α-smoothed language sampling of :mod:`kdreg.sampling` works on streamed corpora too.

``path=`` reads a local copy of the dataset repository instead (its README.md with
the ``configs:`` metadata and the data files), through the same ``load_dataset`` call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from kdreg.errors import DataError
from kdreg.plugins.spec import Corpus
from kdreg_plugins.benchmarks._hub import (
    choose_languages,
    hub_error,
    load_hub,
    parse_language_list,
    split_info_sizes,
)

XNLI_LANGUAGES = "ar+bg+de+el+en+es+fr+hi+ru+sw+th+tr+ur+vi+zh"


class HubCorpus(Corpus):
    """Per-language configs of one hub dataset, streamed; subclasses name the dataset and configs."""

    plugin_name: ClassVar[str] = ""
    text_column: ClassVar[str] = "text"

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        wanted = parse_language_list(self.params.languages)
        if not wanted:
            from kdreg.errors import ParameterError

            raise ParameterError(
                f"Corpus {self.plugin_name!r} needs languages, e.g. {self.plugin_name}:languages=de+fr."
            )
        self._languages = choose_languages(self.plugin_name, wanted, wanted)
        self._sizes: dict[str, int] | None = None
        self._sizes_read = False

    # subclass hooks
    def dataset_id(self) -> str:
        raise NotImplementedError

    def config_name(self, language: str) -> str:
        raise NotImplementedError

    def revision(self) -> str | None:
        return None

    # contract
    def languages(self) -> Sequence[str]:
        return self._languages

    def texts(self, language: str) -> Iterator[str]:
        if language not in self._languages:
            raise DataError(
                f"{self.plugin_name}: no language {language!r} (languages: {' '.join(self._languages)})."
            )
        return self._stream(language)

    def _stream(self, language: str) -> Iterator[str]:
        dataset, config, path = self.dataset_id(), self.config_name(language), self.params.path
        rows = load_hub(
            dataset,
            config,
            plugin=self.plugin_name,
            path=path,
            split="train",
            streaming=True,
            revision=self.revision(),
        )
        min_chars = self.params.min_chars
        try:
            for row in rows:
                for line in str(row.get(self.text_column) or "").splitlines():
                    line = line.strip()
                    if line and len(line) >= min_chars:
                        yield line
        except Exception as exc:  # the stream can fail mid-way too (network, corrupt file)
            raise hub_error(
                exc, dataset=dataset, config=config, plugin=self.plugin_name, local=path, streaming=True
            ) from exc

    def check(self) -> None:
        """Read every language's metadata now: an unreachable or misnamed dataset fails before a grid starts.

        Metadata only (what ``sizes()`` needs anyway); no text is downloaded.
        """
        self.sizes()

    def sizes(self) -> Mapping[str, int] | None:
        """Rows (articles, documents) per language from the dataset metadata; None when it has none."""
        if not self._sizes_read:
            by_config = split_info_sizes(
                self.dataset_id(),
                [self.config_name(code) for code in self._languages],
                plugin=self.plugin_name,
                path=self.params.path,
            )
            counts = {code: by_config[self.config_name(code)] for code in self._languages}
            known = all(n is not None for n in counts.values())
            self._sizes = {code: int(n) for code, n in counts.items() if n is not None} if known else None
            self._sizes_read = True
        return self._sizes


@dataclass(frozen=True)
class WikipediaParams:
    """Which dump and languages of wikimedia/wikipedia."""

    languages: str = field(
        default=XNLI_LANGUAGES, metadata={"help": "Wikipedia language codes joined by '+'"}
    )
    date: str = field(default="20231101", metadata={"help": "dump date: configs are <date>.<language>"})
    min_chars: int = field(default=20, metadata={"help": "skip shorter lines (section headings, list stubs)"})
    path: Path | None = field(default=None, metadata={"help": "local copy of the dataset repository"})


class Wikipedia(HubCorpus):
    """Wikipedia (wikimedia/wikipedia, <date>.<language>), streamed by paragraph."""

    Params: ClassVar[type] = WikipediaParams
    plugin_name: ClassVar[str] = "wikipedia"

    def dataset_id(self) -> str:
        return "wikimedia/wikipedia"

    def config_name(self, language: str) -> str:
        return f"{self.params.date}.{language}"


@dataclass(frozen=True)
class CC100Params:
    """Which CC-100-style dataset, configs and languages."""

    languages: str = field(default=XNLI_LANGUAGES, metadata={"help": "language codes joined by '+'"})
    dataset: str = field(
        default="statmt/cc100", metadata={"help": "hub dataset id with one config per language"}
    )
    config: str = field(
        default="{language}", metadata={"help": "config name template, e.g. {language} or {language}_Latn"}
    )
    revision: str | None = field(
        default="refs/convert/parquet",
        metadata={
            "help": "hub revision; statmt/cc100 is script-based, its parquet export is what datasets>=4 reads"
        },
    )
    min_chars: int = field(default=0, metadata={"help": "skip shorter lines"})
    path: Path | None = field(default=None, metadata={"help": "local copy of the dataset repository"})


class CC100(HubCorpus):
    """CC-100 web text (statmt/cc100 or a similar hub corpus), streamed by line."""

    Params: ClassVar[type] = CC100Params
    plugin_name: ClassVar[str] = "cc100"

    def dataset_id(self) -> str:
        return self.params.dataset

    def config_name(self, language: str) -> str:
        return self.params.config.replace("{language}", language)

    def revision(self) -> str | None:
        return self.params.revision or None
