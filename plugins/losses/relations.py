"""Relation-based KD: MiniLM's self-attention distribution and value/query/key relations.

MiniLM distils the *last* transformer layer's self-attention behaviour instead of its
outputs: which tokens each token attends to, and how the tokens' values (and, in v2,
queries and keys) relate to each other. Relations are token × token distributions, so
the student needs the teacher's tokens (its tokenizer) but not its width; v2's relation
heads also free it from the teacher's head count. Both are task-agnostic: the papers
distil during pretraining (``--stage pretrain``); in fine-tuning the loss trains the
encoder only, so pair it with a task loss there (``--loss kl+minilm``).

The projections come from ``ModelOutputs.queries/keys/values`` ([batch, heads, tokens,
head_dim] per layer), which the pipeline captures with forward hooks because the loss
names them in ``needs``. torch is imported inside the methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from kdreg.errors import IncompatiblePluginsError, PluginError
from kdreg.plugins.spec import Loss, LossBatch, ModelGeometry, ModelOutputs
from kdreg_plugins.losses._common import output, working_precision, zero_from

if TYPE_CHECKING:
    import torch

MASKED = -1e9
"""Score of a padding key: its probability underflows to exactly 0, its log stays finite."""


@dataclass(frozen=True)
class MiniLMParams:
    """Which MiniLM, how many relation heads, which teacher layer."""

    version: Literal["v1", "v2"] = field(
        default="v1",
        metadata={"help": "v1: attention distributions + value relation; v2: query/key/value relations"},
    )
    relation_heads: int = field(
        default=0,
        metadata={"help": "v2: relation heads (0: the student's attention heads); must divide both widths"},
    )
    teacher_layer: int = field(
        default=0,
        metadata={"help": "teacher layer distilled into the student's last (0: the teacher's last)"},
    )

    def __post_init__(self) -> None:
        if self.relation_heads < 0 or self.teacher_layer < 0:
            raise ValueError("relation_heads and teacher_layer must be ≥ 0 (0 picks the default)")
        if self.version == "v1" and self.relation_heads:
            raise ValueError("relation_heads applies to version=v2 (v1 compares the models' own heads)")


def log_relation(x: torch.Tensor, y: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """log softmax(x yᵀ / √d) over the real keys: [batch, heads, tokens, d] → [..., tokens, tokens]."""
    scores = x @ y.transpose(-1, -2) / math.sqrt(x.shape[-1])
    return scores.masked_fill(~keys[:, None, None, :], MASKED).log_softmax(dim=-1)


def relation_kl(student: tuple[torch.Tensor, torch.Tensor], teacher: tuple[torch.Tensor, torch.Tensor],
                attention_mask: torch.Tensor) -> torch.Tensor:
    """(1/(A·K)) Σ_a Σ_t KL(R^T_{a,t} ‖ R^S_{a,t}) over the A heads and the K real query tokens."""
    real = attention_mask.bool()
    log_ours = log_relation(*student, real)
    log_theirs = log_relation(*teacher, real)
    rows = (log_theirs.exp() * (log_theirs - log_ours)).sum(dim=-1)  # [batch, heads, tokens]
    return rows.transpose(1, 2)[real].mean()  # [real tokens, heads] → mean


def relation_heads(projected: torch.Tensor, heads: int) -> torch.Tensor:
    """A layer's projection split into ``heads`` relation heads: [b, h, t, d] → [b, heads, t, h·d/heads]."""
    batch, own_heads, tokens, head_dim = projected.shape
    whole = projected.transpose(1, 2).reshape(batch, tokens, own_heads * head_dim)
    return whole.view(batch, tokens, heads, -1).transpose(1, 2)


class MiniLM(Loss):
    """MiniLM relation KD (Wang et al. 2020 "MiniLM"; v2: Wang et al. 2021 "MiniLMv2").

    v1 (default), on the teacher's layer L (``teacher_layer``, default the last) and the
    student's last layer M:

        L = L_AT + L_VR
        L_AT = (1/(A_h·K)) Σ_a Σ_t KL(A^T_{L,a,t} ‖ A^S_{M,a,t}),  A = softmax(Q Kᵀ / √d_k)
        L_VR = (1/(A_h·K)) Σ_a Σ_t KL(VR^T_{L,a,t} ‖ VR^S_{M,a,t}), VR = softmax(V Vᵀ / √d_k)

    per attention head a (A_h heads, the same number in both models) and real token t
    (K in the batch), with Q, K, V that head's queries, keys and values and d_k its size;
    KL(p‖q) = Σ_j p_j (log p_j − log q_j) over the real keys j. The attention
    distributions are computed from Q and K (the model's pre-dropout attention).

    v2 (``version=v2``) uses self-attention relations of queries, keys and values with
    A_r relation heads (``relation_heads``, default the student's head count; the paper
    uses 48 for base-size and 64 for large-size models): each model's Q (likewise K, V)
    is concatenated over its heads and split into A_r relation heads of size d_r,

        L = Σ_{R ∈ {QQ, KK, VV}} (1/(A_r·K)) Σ_a Σ_t KL(R^T_{L,a,t} ‖ R^S_{M,a,t}),
        R^{QQ} = softmax(Q_r Q_rᵀ / √d_r), ...

    so teacher and student may differ in width and head count (A_r must divide both
    widths). For large teachers v2 distils an upper-middle layer (e.g. 21 of 24 for
    BERT-large) rather than the last: ``teacher_layer=21``.
    """

    summary: ClassVar[str] = "MiniLM relation KD: attention + value relations (v1), Q/K/V relation heads (v2)"
    Params: ClassVar[type] = MiniLMParams
    needs: ClassVar[frozenset[str]] = frozenset({"queries", "keys", "values"})
    uses_teacher: ClassVar[bool] = True

    def prepare(self, teacher: ModelGeometry | None, student: ModelGeometry, stage: str) -> None:
        """Check the teacher layer exists and the heads fit (v1: equal counts; v2: A_r divides widths)."""
        if teacher is None:
            return None
        p = self.params
        if p.teacher_layer > teacher.num_layers:
            raise IncompatiblePluginsError(
                f"Loss 'minilm' distils teacher layer {p.teacher_layer}, but the teacher has "
                f"{teacher.num_layers} layers; use minilm:teacher_layer=1..{teacher.num_layers} "
                "(0: the last)."
            )
        if p.version == "v1" and teacher.num_heads != student.num_heads:
            raise IncompatiblePluginsError(
                f"Loss 'minilm' (v1) compares attention heads one to one, but the teacher has "
                f"{teacher.num_heads} heads and the student {student.num_heads}; use minilm:version=v2, "
                "whose relation heads work across head counts."
            )
        if p.version == "v2":
            heads = p.relation_heads or student.num_heads
            if teacher.hidden_size % heads or student.hidden_size % heads:
                fits = math.gcd(teacher.hidden_size, student.hidden_size)
                raise IncompatiblePluginsError(
                    f"Loss 'minilm' (v2) splits both models' queries, keys and values into {heads} relation "
                    f"heads, which must divide both widths ({teacher.hidden_size} and "
                    f"{student.hidden_size}); set minilm:relation_heads to a divisor of {fits}."
                )
        return None

    def compute(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: LossBatch) -> torch.Tensor:
        ours = {name: working_precision(output("minilm", student, name, "student")[-1])
                for name in ("queries", "keys", "values")}
        layer = self.params.teacher_layer
        theirs = {}
        for name in ("queries", "keys", "values"):
            layers = output("minilm", teacher, name, "teacher")
            if layer > len(layers):
                raise IncompatiblePluginsError(
                    f"Loss 'minilm' distils teacher layer {layer}, but the teacher has {len(layers)} layers."
                )
            theirs[name] = working_precision(layers[layer - 1 if layer else -1].detach())
        self._check_alignment(ours["values"], theirs["values"], batch.attention_mask)
        if not bool(batch.attention_mask.bool().any()):
            return zero_from(ours["values"])
        if self.params.version == "v1":
            return self._v1(ours, theirs, batch.attention_mask)
        return self._v2(ours, theirs, batch.attention_mask)

    @staticmethod
    def _v1(ours: dict[str, Any], theirs: dict[str, Any], mask: torch.Tensor) -> torch.Tensor:
        if ours["queries"].shape[1] != theirs["queries"].shape[1]:
            raise IncompatiblePluginsError(
                f"Loss 'minilm' (v1) compares attention heads one to one, but the student has "
                f"{ours['queries'].shape[1]} heads and the teacher {theirs['queries'].shape[1]}; use "
                "minilm:version=v2."
            )
        attention = relation_kl((ours["queries"], ours["keys"]), (theirs["queries"], theirs["keys"]), mask)
        value = relation_kl((ours["values"], ours["values"]), (theirs["values"], theirs["values"]), mask)
        return attention + value

    def _v2(self, ours: dict[str, Any], theirs: dict[str, Any], mask: torch.Tensor) -> torch.Tensor:
        heads = self.params.relation_heads or ours["queries"].shape[1]
        total = None
        for name in ("queries", "keys", "values"):
            widths = [side[name].shape[1] * side[name].shape[3] for side in (ours, theirs)]
            if widths[0] % heads or widths[1] % heads:
                raise IncompatiblePluginsError(
                    f"Loss 'minilm' (v2): {heads} relation heads do not divide the widths {widths[0]} "
                    f"(student) and {widths[1]} (teacher); set minilm:relation_heads to a divisor of both."
                )
            s, t = relation_heads(ours[name], heads), relation_heads(theirs[name], heads)
            term = relation_kl((s, s), (t, t), mask)
            total = term if total is None else total + term
        assert total is not None
        return total

    @staticmethod
    def _check_alignment(ours: torch.Tensor, theirs: torch.Tensor, mask: torch.Tensor) -> None:
        """Same batch and tokens on both sides (one tokenizer), and a [batch, tokens] mask."""
        if ours.shape[0] != theirs.shape[0] or ours.shape[2] != theirs.shape[2]:
            raise IncompatiblePluginsError(
                f"Loss 'minilm' relates tokens to tokens, but the student saw {ours.shape[0]} × "
                f"{ours.shape[2]} (batch × tokens) and the teacher {theirs.shape[0]} × {theirs.shape[2]}; "
                "both must read the same token ids (a student derived from the teacher, sharing its "
                "tokenizer)."
            )
        if tuple(mask.shape) != (ours.shape[0], ours.shape[2]):
            raise PluginError(
                f"Loss 'minilm' got an attention mask of shape {tuple(mask.shape)} for {ours.shape[0]} × "
                f"{ours.shape[2]} tokens; the mask must be [batch, tokens]."
            )
