"""``synthetic`` student: a randomly initialised, smaller BERT sharing the teacher's tokenizer.

In the seed study the student is a smaller model of the teacher's family. Here it is
the built-in ``small`` student (the teacher's architecture at a random, smaller
geometry, over the teacher's vocabulary) with a geometry suited to the synthetic
teacher: 2 layers × 64 against the teacher's 4 × 128. Being random, everything it
knows about the synthetic languages comes from the stage under test: nothing
(``none``: it should sit at chance on zero-shot languages), soft targets in
fine-tuning, or distillation during pretraining.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from kdreg_plugins.models.students import SmallParams, SmallStudent


@dataclass(frozen=True)
class StudentParams(SmallParams):
    """Geometry of the student (a quarter of the synthetic teacher's width, half its depth)."""

    layers: int = field(default=2, metadata={"help": "transformer layers"})
    hidden: int = field(default=64, metadata={"help": "hidden size (a multiple of heads)"})
    heads: int = field(default=2, metadata={"help": "attention heads"})
    intermediate: int = field(default=256, metadata={"help": "feed-forward size"})


class SyntheticStudent(SmallStudent):
    """A small randomly initialised BERT (2 layers × 64) with the synthetic teacher's tokenizer."""

    summary: ClassVar[str] = "Random 2×64 BERT over the teacher's vocabulary, for the synthetic world."
    Params: ClassVar[type] = StudentParams
