"""PAWS-X: adversarial paraphrase identification in 7 languages (Yang et al. 2019).

Hugging Face dataset ``google-research-datasets/paws-x``, one config per language,
columns ``sentence1``, ``sentence2`` and ``label`` (1 = paraphrase). The train split
(49,401 pairs) is English text machine-translated into the other languages; fine-tuning
uses the English one, and the human-translated validation and test pairs (2,000 each)
of every language are evaluated. Rows whose label is missing (stored as -1 by the
dataset, after its note "there might be some missing or wrong labels") are dropped.
"""

from __future__ import annotations

from typing import ClassVar

from ._base import HubBenchmark

PAWSX_LANGUAGES = ("de", "en", "es", "fr", "ja", "ko", "zh")


class PAWSX(HubBenchmark):
    """PAWS-X paraphrase (google-research-datasets/paws-x): 7 languages, fine-tuned on en."""

    metrics: ClassVar[tuple[str, ...]] = ("accuracy",)
    plugin_name: ClassVar[str] = "pawsx"
    dataset: ClassVar[str] = "google-research-datasets/paws-x"
    all_languages: ClassVar[tuple[str, ...]] = PAWSX_LANGUAGES
    source: ClassVar[str] = "en"
    label_names: ClassVar[tuple[str, ...]] = ("not_paraphrase", "paraphrase")
    text_column: ClassVar[str] = "sentence1"
    pair_column: ClassVar[str | None] = "sentence2"
    label_column: ClassVar[str] = "label"
