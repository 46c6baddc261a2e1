"""Representation losses: hidden-state MSE (TinyBERT), attention KL (MiniLM), cosine (DistilBERT).

They compare teacher and student token by token, so both must read the same token ids
(a student derived from the teacher); padding tokens never count (``attention_mask``).
Layers are numbered from 1; layer 0 is the embedding output (``hidden_states[0]``).
Each loss is a mean over the real tokens of the batch (and over mapped layer pairs),
so its scale does not depend on batch size, padding or the student's depth.
torch is imported inside the methods: listing plugins must not load it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from kdreg.errors import IncompatiblePluginsError
from kdreg.plugins.spec import Loss, LossBatch, ModelGeometry, ModelOutputs
from kdreg_plugins.losses._common import (
    format_mapping,
    layer_pairs,
    output,
    parse_mapping,
    token_mask,
    working_precision,
    zero_from,
)

if TYPE_CHECKING:
    import torch


def _normalise_mapping(params: Any) -> None:
    # Frozen dataclass: store the canonical text so equivalent spellings hash to one run.
    object.__setattr__(params, "mapping", format_mapping(parse_mapping(params.mapping)))


@dataclass(frozen=True)
class HiddenParams:
    """Which student layer learns from which teacher layer."""

    mapping: str = field(
        default="uniform",
        metadata={
            "help": "'uniform' (TinyBERT), 'last', or student:teacher pairs joined by ';' (0 = embeddings)"
        },
    )

    def __post_init__(self) -> None:
        _normalise_mapping(self)


class HiddenMSE(Loss):
    """Hidden-state MSE with a layer mapping (Jiao et al. 2020, "TinyBERT", Eq. 8).

    L = (1/|P|) Σ_{(m, n) ∈ P} (1/(K·d)) Σ_k ‖ H^S_m[k] · W + b − H^T_n[k] ‖²

    over layer pairs P (``mapping``: 'uniform' is TinyBERT's n = m·N/M, 'last' the two
    last layers, or explicit pairs like ``1:2;2:4``; 0 is the embedding output), the K
    real tokens of the batch and the teacher's width d. W, b is a learned projection
    from the student's width to the teacher's (one for all layers, as TinyBERT's W_h),
    created in ``prepare()`` only when the widths differ and trained with the student.
    Unlike TinyBERT's sum over layers this is a mean, so the scale does not grow with
    depth (multiply the term's weight by |P| to recover the paper's sum).
    """

    summary: ClassVar[str] = "TinyBERT hidden-state MSE over mapped layers, learned projection across widths"
    Params: ClassVar[type] = HiddenParams
    needs: ClassVar[frozenset[str]] = frozenset({"hidden_states"})
    uses_teacher: ClassVar[bool] = True

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self.projection: Any = None

    def prepare(self, teacher: ModelGeometry | None, student: ModelGeometry, stage: str) -> Any:
        """Check the mapping fits both depths; return a new projection when the widths differ."""
        import torch

        self.projection = None
        if teacher is None:
            return None
        layer_pairs("hidden", parse_mapping(self.params.mapping), student.num_layers, teacher.num_layers)
        if teacher.hidden_size != student.hidden_size:
            self.projection = torch.nn.Linear(student.hidden_size, teacher.hidden_size)
        return self.projection

    def compute(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: LossBatch) -> torch.Tensor:
        student_states = output("hidden", student, "hidden_states", "student")
        teacher_states = output("hidden", teacher, "hidden_states", "teacher")
        pairs = layer_pairs(
            "hidden", parse_mapping(self.params.mapping), len(student_states) - 1, len(teacher_states) - 1
        )
        mask = token_mask("hidden", student_states[-1], teacher_states[-1], batch.attention_mask)
        if not bool(mask.any()):
            return zero_from(student_states[-1])
        total = None
        for m, n in pairs:
            ours = student_states[m]
            theirs = working_precision(teacher_states[n].detach())
            if ours.shape[-1] != theirs.shape[-1]:
                if self.projection is None:
                    raise IncompatiblePluginsError(
                        f"Loss 'hidden' got student width {ours.shape[-1]} and teacher width "
                        f"{theirs.shape[-1]} but has no projection; call prepare() first."
                    )
                ours = self.projection(ours)
            ours = working_precision(ours)
            term = (ours[mask] - theirs[mask]).pow(2).mean()
            total = term if total is None else total + term
        assert total is not None
        return total / len(pairs)


@dataclass(frozen=True)
class AttentionParams:
    """Which layers' attention maps to compare, and how to pair heads."""

    mapping: str = field(
        default="last",
        metadata={
            "help": "'last' (MiniLM), 'uniform' (TinyBERT), or student:teacher layer pairs joined by ';'"
        },
    )
    heads: Literal["each", "average"] = field(
        default="each",
        metadata={"help": "'each': head h with head h (equal head counts); 'average': head-averaged maps"},
    )

    def __post_init__(self) -> None:
        _normalise_mapping(self)


class AttentionLoss(Loss):
    """Attention-distribution KL (Wang et al. 2020, "MiniLM"; layer mapping as in TinyBERT, Jiao et al. 2020).

    L = (1/|P|) Σ_{(m, n) ∈ P} (1/(H·K)) Σ_h Σ_k KL(A^T_{n,h}[k] ‖ A^S_{m,h}[k])

    where A[k] is the attention distribution of query token k over the keys (a row of
    the softmax-normalised attention map), KL(p‖q) = Σ_j p_j (log p_j − log q_j), K the
    real (non-padding) query tokens of the batch and P the layer pairs (default: the
    last layers, as MiniLM). ``heads=each`` compares head h with head h and needs equal
    head counts (MiniLM's setting); ``heads=average`` averages each model's maps over
    its heads first (an average of distributions is a distribution), H = 1, so any head
    counts work. Needs attention maps, so the pipeline switches models to eager attention.
    """

    summary: ClassVar[str] = (
        "MiniLM attention-distribution KL (last or mapped layers), heads paired or averaged"
    )
    Params: ClassVar[type] = AttentionParams
    needs: ClassVar[frozenset[str]] = frozenset({"attentions"})
    uses_teacher: ClassVar[bool] = True

    def prepare(self, teacher: ModelGeometry | None, student: ModelGeometry, stage: str) -> None:
        if teacher is None:
            return None
        layer_pairs(
            "attention", parse_mapping(self.params.mapping), student.num_layers, teacher.num_layers, first=1
        )
        if self.params.heads == "each" and teacher.num_heads != student.num_heads:
            raise IncompatiblePluginsError(
                f"Loss 'attention' compares heads one to one, but the teacher has {teacher.num_heads} "
                f"heads and the student {student.num_heads}; use attention:heads=average."
            )
        return None

    def compute(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: LossBatch) -> torch.Tensor:
        import torch

        student_maps = output("attention", student, "attentions", "student")
        teacher_maps = output("attention", teacher, "attentions", "teacher")
        pairs = layer_pairs(
            "attention", parse_mapping(self.params.mapping), len(student_maps), len(teacher_maps), first=1
        )
        total = None
        for m, n in pairs:
            ours = working_precision(student_maps[m - 1])
            theirs = working_precision(teacher_maps[n - 1].detach())
            if ours.shape[-1] != theirs.shape[-1] or ours.shape[0] != theirs.shape[0]:
                raise IncompatiblePluginsError(
                    f"Loss 'attention' compares attention maps over the same tokens, but the student's are "
                    f"{tuple(ours.shape)} and the teacher's {tuple(theirs.shape)}; both must read the same "
                    "token ids (a student derived from the teacher, sharing its tokenizer)."
                )
            if self.params.heads == "average":
                ours, theirs = ours.mean(dim=1, keepdim=True), theirs.mean(dim=1, keepdim=True)
            elif ours.shape[1] != theirs.shape[1]:
                raise IncompatiblePluginsError(
                    f"Loss 'attention' compares heads one to one, but the student has {ours.shape[1]} "
                    f"heads and the teacher {theirs.shape[1]}; use attention:heads=average."
                )
            mask = token_mask("attention", ours[:, 0], theirs[:, 0], batch.attention_mask)
            if not bool(mask.any()):
                return zero_from(ours)
            # xlogy gives 0·log 0 = 0 for keys the teacher ignores (padding); the clamp keeps log finite
            # where the student gives a key exactly zero weight.
            rows = (torch.xlogy(theirs, theirs) - theirs * ours.clamp_min(1e-12).log()).sum(dim=-1)
            term = rows.transpose(0, 1)[:, mask].mean()  # [heads, real queries] → mean
            total = term if total is None else total + term
        assert total is not None
        return total / len(pairs)


class HiddenCosine(Loss):
    """Cosine embedding loss on the last hidden states (Sanh et al. 2019, "DistilBERT").

    L = (1/K) Σ_k (1 − cos(h^S[k], h^T[k]))

    over the K real tokens of the batch, with h the last layer's hidden state; it aligns
    the directions of the two models' representations. Needs equal widths (DistilBERT
    keeps the teacher's); for different widths use ``hidden``, which learns a projection.
    """

    summary: ClassVar[str] = "DistilBERT cosine loss between last hidden states (equal widths)"
    needs: ClassVar[frozenset[str]] = frozenset({"hidden_states"})
    uses_teacher: ClassVar[bool] = True

    def prepare(self, teacher: ModelGeometry | None, student: ModelGeometry, stage: str) -> None:
        if teacher is not None and teacher.hidden_size != student.hidden_size:
            raise IncompatiblePluginsError(_width_message(student.hidden_size, teacher.hidden_size))
        return None

    def compute(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: LossBatch) -> torch.Tensor:
        import torch.nn.functional as F

        ours = working_precision(output("cosine", student, "hidden_states", "student")[-1])
        theirs = working_precision(output("cosine", teacher, "hidden_states", "teacher")[-1].detach())
        if ours.shape[-1] != theirs.shape[-1]:
            raise IncompatiblePluginsError(_width_message(ours.shape[-1], theirs.shape[-1]))
        mask = token_mask("cosine", ours, theirs, batch.attention_mask)
        if not bool(mask.any()):
            return zero_from(ours)
        return (1.0 - F.cosine_similarity(ours[mask], theirs[mask], dim=-1)).mean()


def _width_message(student: int, teacher: int) -> str:
    return (
        f"Loss 'cosine' compares hidden states of equal width, but the student's are {student} wide and the "
        f"teacher's {teacher}; use the loss 'hidden', which learns a projection between widths."
    )
