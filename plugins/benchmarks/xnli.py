"""XNLI: natural language inference in 15 languages (Conneau et al. 2018).

Hugging Face dataset ``facebook/xnli``, one config per language, columns ``premise``,
``hypothesis`` and ``label`` (0 entailment, 1 neutral, 2 contradiction). The usual
zero-shot protocol fine-tunes on the English train split (392,702 pairs, machine
translations of MultiNLI) and evaluates the validation (2,490) and test (5,010) pairs
of every language; ``max_train_examples`` takes a deterministic subset of that train
split for shorter runs. The classes are balanced, so accuracy is the metric.
"""

from __future__ import annotations

from typing import ClassVar

from ._base import HubBenchmark

XNLI_LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")


class XNLI(HubBenchmark):
    """XNLI inference (facebook/xnli): 15 languages, fine-tuned on en."""

    metrics: ClassVar[tuple[str, ...]] = ("accuracy",)
    plugin_name: ClassVar[str] = "xnli"
    dataset: ClassVar[str] = "facebook/xnli"
    all_languages: ClassVar[tuple[str, ...]] = XNLI_LANGUAGES
    source: ClassVar[str] = "en"
    label_names: ClassVar[tuple[str, ...]] = ("entailment", "neutral", "contradiction")
    text_column: ClassVar[str] = "premise"
    pair_column: ClassVar[str | None] = "hypothesis"
    label_column: ClassVar[str] = "label"
