"""Jensen–Shannon knowledge distillation: a symmetric, bounded alternative to Hinton's KL.

With p the teacher's and q the student's softened distributions, m = (p + q) / 2 and
temperature T::

    JSD(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m),      loss = T² · JSD

JSD (Lin 1991, "Divergence measures based on the Shannon entropy") is symmetric and
bounded by ln 2, so a confidently wrong student cannot produce an exploding loss; the
T² factor keeps gradient magnitudes comparable across temperatures, as for the
soft-target loss of Hinton, Vinyals & Dean 2015. In fine-tuning it averages over the
batch; in pretraining over every real (non-padding) token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kdreg.errors import IncompatiblePluginsError
from kdreg.plugins.spec import Loss, LossBatch, ModelGeometry, ModelOutputs


@dataclass(frozen=True)
class JensenShannonParams:
    """Parameters: ``example-jsd:temperature=2``."""

    temperature: float = field(
        default=2.0, metadata={"help": "softmax temperature T (> 0); the loss is scaled by T²"}
    )

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


class JensenShannonKD(Loss):
    """Symmetric Jensen–Shannon KD on logits, T²-scaled (bounded by T² ln 2)."""

    Params: ClassVar[type] = JensenShannonParams
    needs: ClassVar[frozenset[str]] = frozenset({"logits"})

    def prepare(self, teacher: ModelGeometry | None, student: ModelGeometry, stage: str) -> Any:
        """Masked-LM distributions can only be compared over one vocabulary."""
        if stage == "pretrain" and teacher is not None and teacher.vocab_size != student.vocab_size:
            raise IncompatiblePluginsError(
                f"example-jsd in pretraining compares token distributions, but the teacher has "
                f"{teacher.vocab_size} tokens and the student {student.vocab_size}; use a student "
                "derived from the teacher."
            )
        return None

    def compute(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: LossBatch) -> Any:
        if student.logits is None or teacher is None or teacher.logits is None:
            raise IncompatiblePluginsError("example-jsd needs the logits of both teacher and student.")
        per_item = jensen_shannon(student.logits, teacher.logits.detach(), self.params.temperature)
        if batch.stage == "pretrain":  # [batch, tokens]: average over real tokens
            mask = batch.attention_mask.to(per_item.dtype)
            mean = (per_item * mask).sum() / mask.sum().clamp(min=1)
        else:
            mean = per_item.mean()
        return mean * self.params.temperature**2


def jensen_shannon(student_logits: Any, teacher_logits: Any, temperature: float) -> Any:
    """JSD between softmax(student / T) and softmax(teacher / T), per row of the last dimension."""
    import torch

    log_q = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p = torch.log_softmax(teacher_logits.float() / temperature, dim=-1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(-1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(-1)
    return 0.5 * (kl_pm + kl_qm)
