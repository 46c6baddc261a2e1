"""``synthetic`` corpus: unlabeled, partly code-switched text of the synthetic world."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from kdreg.errors import DataError
from kdreg.plugins.spec import Corpus
from kdreg_plugins.synthetic.world import World, WorldConfig, world_config


@dataclass(frozen=True)
class CorpusParams(WorldConfig):
    """The world plus the size and mixing of its unlabeled text."""

    documents: int = field(default=10000, metadata={"help": "documents (lines) per language"})
    switch_documents: float = field(
        default=0.5, metadata={"help": "share of documents that are code-switched"}
    )
    switch_words: float = field(
        default=0.2, metadata={"help": "share of a code-switched document's words put in a second language"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.documents < 1:
            raise ValueError("documents must be at least 1")
        if not (0.0 <= self.switch_documents <= 1.0 and 0.0 <= self.switch_words <= 1.0):
            raise ValueError("switch_documents and switch_words must be within [0, 1]")


class SyntheticCorpus(Corpus):
    """Synthetic multilingual text (offline): one topical document per line, some code-switched."""

    Params = CorpusParams
    params: CorpusParams

    @cached_property
    def world(self) -> World:
        return World(world_config(self.params))

    def languages(self) -> Sequence[str]:
        return self.world.languages

    def texts(self, language: str) -> Iterator[str]:
        """The documents of ``language``; the same sequence on every call and every machine."""
        if language not in self.world.languages:
            raise DataError(
                f"The synthetic corpus has no language {language!r}; "
                f"it has {', '.join(self.world.languages)} "
                "(set the number with synthetic:languages=N)."
            )
        p = self.params
        return self.world.corpus_documents(language, p.documents, p.switch_documents, p.switch_words)

    def sizes(self) -> Mapping[str, int]:
        return {language: self.params.documents for language in self.world.languages}
