"""``synthetic`` benchmark: topic classification in the synthetic world, zero-shot across languages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from kdreg.errors import DataError
from kdreg.plugins.spec import Benchmark, Example, LoadedModel, Score
from kdreg_plugins.synthetic.world import SOURCE, Document, World, WorldConfig, world_config

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class BenchmarkParams(WorldConfig):
    """The world plus the size of the labelled splits."""

    train_examples: int = field(default=600, metadata={"help": "labelled training examples (in l0 only)"})
    eval_examples: int = field(
        default=300, metadata={"help": "validation and test examples per language (parallel translations)"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_examples < 1 or self.eval_examples < 1:
            raise ValueError("train_examples and eval_examples must be at least 1")


class SyntheticTopics(Benchmark):
    """Topic classification in a synthetic multilingual world (offline); train in l0, test in every language.

    Validation and test sets are parallel: the same latent documents rendered in every
    language, so a gap between languages is a transfer gap and nothing else. Training
    data exists in the source language only; other languages' train splits are empty.
    """

    Params = BenchmarkParams
    params: BenchmarkParams
    metrics = ("accuracy",)
    eval_splits = ("validation", "test")

    @cached_property
    def world(self) -> World:
        return World(world_config(self.params))

    @cached_property
    def _documents(self) -> dict[str, list[Document]]:
        p = self.params
        sizes = {"train": p.train_examples, "validation": p.eval_examples, "test": p.eval_examples}
        return {split: self.world.labelled_documents(split, n) for split, n in sizes.items()}

    def languages(self) -> Sequence[str]:
        return self.world.languages

    def source_language(self) -> str:
        return SOURCE

    def labels(self) -> Sequence[str]:
        return self.world.topic_names

    def examples(self, language: str, split: str) -> Sequence[Example]:
        if language not in self.world.languages:
            raise DataError(
                f"The synthetic benchmark has no language {language!r}; it has "
                f"{', '.join(self.world.languages)} (set the number with synthetic:languages=N)."
            )
        if split not in SPLITS:
            raise DataError(f"The synthetic benchmark has no split {split!r}; it has {', '.join(SPLITS)}.")
        if split == "train" and language != SOURCE:
            return ()  # zero-shot by construction: labelled training data exists in the source only
        return tuple(Example(self.world.render(doc, language), doc[0]) for doc in self._documents[split])

    def chance_level(self, metric: str) -> float | None:
        """1 / topics for accuracy and for topic alignment (docs/synthetic.md): what guessing scores."""
        return 1 / self.params.topics if metric in ("accuracy", "topic_alignment") else None

    def normalize_language(self, code: str) -> str:
        return code  # invented languages: no ISO code to map to

    def extra_scores(self, model: LoadedModel) -> Sequence[Score]:
        """Topic alignment of the model's input embeddings, per target language (see alignment.py)."""
        from kdreg_plugins.synthetic.alignment import topic_alignment

        embeddings = model.model.get_input_embeddings().weight
        scores = topic_alignment(embeddings, model.tokenizer, self.world)
        return [Score(language, "topic_alignment", value, split="test") for language, value in scores.items()]
