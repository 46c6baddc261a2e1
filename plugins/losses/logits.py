"""Logit-level losses: hard-label cross-entropy, Hinton's soft-target KL, logit MSE.

Which positions count:

* fine-tuning: logits are class scores [batch, classes], labels class ids [batch];
  every example counts, N = batch size;
* pretraining: logits are masked-LM scores [batch, tokens, vocab], labels the
  masked-LM targets [batch, tokens] with -100 where nothing is predicted. The
  hard-label term counts the masked positions only (``_common.counted_rows``); the
  distillation term of ``kl`` and ``mse`` counts every real (non-padding) token by
  default, masked or not, as DistilBERT does by default, or only the masked positions
  with ``positions=masked`` (DistilBERT's ``--restrict_ce_to_mask``).

Every term below is a mean over its N positions ("batchmean" per position, not per
sequence), so its scale does not depend on batch size, sequence length or masking rate.
A batch with N = 0 gives 0 (still attached to the graph, so the step is harmless).
torch is imported inside the methods: listing plugins must not load it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from kdreg.plugins.spec import Loss, LossBatch, ModelGeometry, ModelOutputs
from kdreg_plugins.losses._common import (
    check_logit_vocabulary,
    check_positions,
    counted_rows,
    hard_label_cross_entropy,
    logit_rows,
    output,
    positions_field,
    validate_mix,
    zero_from,
)

if TYPE_CHECKING:
    import torch


class CrossEntropy(Loss):
    """Hard-label cross-entropy: class labels in fine-tuning, plain masked-LM training in pretraining.

    L = (1/N) Σ_i −log softmax(s_i)[y_i] over the N positions that count (labels ≠ -100).
    No teacher is involved; this is the baseline every distillation loss is compared with.
    """

    summary: ClassVar[str] = "Hard-label cross-entropy (plain masked-LM training in pretraining); no teacher"
    needs: ClassVar[frozenset[str]] = frozenset({"logits"})
    uses_teacher: ClassVar[bool] = False

    def compute(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: LossBatch) -> torch.Tensor:
        rows, labels, _ = counted_rows("ce", output("ce", student, "logits", "student"), batch.labels)
        return hard_label_cross_entropy(rows, labels)


@dataclass(frozen=True)
class SoftTargetParams:
    """Temperature of the softened distributions and the weight of the distillation term."""

    temperature: float = field(default=2.0, metadata={"help": "softmax temperature T (> 0)"})
    alpha: float = field(
        default=0.5, metadata={"help": "weight of the KD term; 1 - alpha weighs hard-label CE"}
    )
    positions: str = positions_field()

    def __post_init__(self) -> None:
        validate_mix(self.alpha, self.temperature)
        check_positions(self.positions)


class SoftTargetKL(Loss):
    """Soft-target distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

    L = α · T² · (1/N) Σ_i KL(softmax(t_i/T) ‖ softmax(s_i/T)) + (1 − α) · CE(s, y)

    with s_i, t_i the student's and teacher's logits at position i, KL(p‖q) = Σ_c p_c
    (log p_c − log q_c) summed over classes (the vocabulary in pretraining), averaged
    over the N positions distilled (in pretraining every real token by default, as
    DistilBERT; only the masked ones with ``positions=masked``), and CE the hard-label
    cross-entropy at T = 1 over the positions that have a label (the masked ones in
    pretraining). The T² factor keeps the soft-target gradients' size independent of T,
    as the paper prescribes. α = 1 is pure distillation; the CE term is not computed then.

    The defaults, T = 2 and α = 0.5, are a common soft-target setting (DistilBERT distils at
    T = 2; Hinton et al. soften with T well above 1 and weigh the soft targets at least as
    much as the hard ones). Much above T = 1 matters when the teacher is confident: a
    fine-tuned teacher's softmax at T = 1 is nearly one-hot on its own training data, so
    KD at T = 1 is hard-label training again. The offline default study uses T = 4, α = 0.9.
    """

    summary: ClassVar[str] = "Hinton et al. 2015 soft targets: α·T²·KL(teacher‖student) + (1−α)·CE"
    Params: ClassVar[type] = SoftTargetParams
    needs: ClassVar[frozenset[str]] = frozenset({"logits"})
    uses_teacher: ClassVar[bool] = True

    def prepare(self, teacher: ModelGeometry | None, student: ModelGeometry, stage: str) -> None:
        check_logit_vocabulary("kl", teacher, student, stage)
        return None

    def compute(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: LossBatch) -> torch.Tensor:
        import torch.nn.functional as F

        rows = logit_rows("kl", self.params.positions, output("kl", student, "logits", "student"),
                          output("kl", teacher, "logits", "teacher"), batch.labels, batch.attention_mask)
        if rows.student.shape[0] == 0:
            return zero_from(rows.student)
        t = self.params.temperature
        alpha = self.params.alpha
        student_log_p = F.log_softmax(rows.student / t, dim=-1)
        teacher_log_p = F.log_softmax(rows.teacher / t, dim=-1)
        kl = F.kl_div(student_log_p, teacher_log_p, log_target=True, reduction="sum") / rows.student.shape[0]
        value = alpha * (t * t) * kl
        if alpha < 1.0:
            value = value + (1.0 - alpha) * hard_label_cross_entropy(rows.labelled, rows.labels)
        return value


@dataclass(frozen=True)
class LogitMSEParams:
    """Weight of the logit-matching term against hard-label cross-entropy."""

    alpha: float = field(
        default=1.0, metadata={"help": "weight of the MSE term; 1 - alpha weighs hard-label CE"}
    )
    positions: str = positions_field()

    def __post_init__(self) -> None:
        validate_mix(self.alpha)
        check_positions(self.positions)


class LogitMSE(Loss):
    """Logit regression (Ba & Caruana 2014, "Do Deep Nets Really Need to be Deep?"; Kim et al. 2021).

    L = α · (1/(N·C)) Σ_i Σ_c (s_ic − t_ic)² + (1 − α) · CE(s, y)

    the mean squared difference between raw student and teacher logits over the N
    positions distilled (as for ``kl``: in pretraining every real token, or the masked
    ones with ``positions=masked``) and the C classes (vocabulary entries in pretraining),
    i.e. ``F.mse_loss``'s mean over those elements; CE is the hard-label cross-entropy over
    the positions that have a label. The default α = 1 is pure logit matching.
    """

    summary: ClassVar[str] = (
        "Mean squared error between student and teacher logits (+ optional hard-label CE)"
    )
    Params: ClassVar[type] = LogitMSEParams
    needs: ClassVar[frozenset[str]] = frozenset({"logits"})
    uses_teacher: ClassVar[bool] = True

    def prepare(self, teacher: ModelGeometry | None, student: ModelGeometry, stage: str) -> None:
        check_logit_vocabulary("mse", teacher, student, stage)
        return None

    def compute(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: LossBatch) -> torch.Tensor:
        rows = logit_rows("mse", self.params.positions, output("mse", student, "logits", "student"),
                          output("mse", teacher, "logits", "teacher"), batch.labels, batch.attention_mask)
        if rows.student.shape[0] == 0:
            return zero_from(rows.student)
        alpha = self.params.alpha
        value = alpha * (rows.student - rows.teacher).pow(2).mean()
        if alpha < 1.0:
            value = value + (1.0 - alpha) * hard_label_cross_entropy(rows.labelled, rows.labels)
        return value
