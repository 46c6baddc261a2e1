"""What the built-in losses share: which positions count, layer mappings, clear errors.

Kept free of a top-level torch import: the registry imports a loss module to show its
summary in ``kdreg plugins``, which must stay light. Every function that touches
tensors imports torch itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from kdreg.errors import IncompatiblePluginsError, PluginError

if TYPE_CHECKING:
    import torch

    from kdreg.plugins.spec import ModelGeometry, ModelOutputs

IGNORE_INDEX = -100
"""Label of a position nothing is predicted at (the masked-LM convention of transformers)."""

Mapping = str | tuple[tuple[int, int], ...]
"""'uniform', 'last', or explicit (student layer, teacher layer) pairs."""


# ------------------------------------------------------------------ outputs
def output(loss: str, outputs: ModelOutputs | None, field: str, side: str) -> Any:
    """``outputs.<field>``, or an error naming the loss when the pipeline did not provide it."""
    value = getattr(outputs, field, None) if outputs is not None else None
    if value is None:
        raise PluginError(
            f"Loss {loss!r} needs the {side}'s {field} but got none; the caller must compute the outputs "
            f"listed in the loss's `needs` (and pass teacher outputs when `uses_teacher` is true)."
        )
    return value


def working_precision(tensor: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors (bf16 autocast) in float32, so softmax and sums stay accurate."""
    import torch

    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def zero_from(tensor: torch.Tensor) -> torch.Tensor:
    """A zero loss still attached to the graph (a batch with no position to learn from)."""
    return tensor.sum() * 0.0


# ------------------------------------------------------------------ logits
def counted_rows(
    loss: str, logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The logit rows that count, their labels and the teacher's matching rows.

    Works for both stages with one rule: flatten to one row per labelled position and
    drop rows labelled -100. Fine-tuning logits [batch, classes] with labels [batch]
    keep every row; pretraining logits [batch, tokens, vocab] with masked-LM labels
    [batch, tokens] keep the masked positions only (the positions that have a label).
    """
    width = logits.shape[-1]
    rows = logits.reshape(-1, width)
    flat = labels.reshape(-1)
    if flat.shape[0] != rows.shape[0]:
        raise PluginError(
            f"Loss {loss!r} got logits of shape {tuple(logits.shape)} but labels of shape "
            f"{tuple(labels.shape)}; labels need one entry per logit row (-100 where nothing is predicted)."
        )
    keep = flat != IGNORE_INDEX
    teacher_rows = None
    if teacher_logits is not None:
        check_same_logits(loss, logits, teacher_logits)
        teacher_rows = working_precision(teacher_logits.detach().reshape(-1, width)[keep])
    return working_precision(rows[keep]), flat[keep], teacher_rows


def check_same_logits(loss: str, logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    """Teacher and student logits must have one shape (the same tokenizer, or the same labels)."""
    if teacher_logits.shape != logits.shape:
        raise IncompatiblePluginsError(
            f"Loss {loss!r} compares logits of equal shape, but the student's are {tuple(logits.shape)} "
            f"and the teacher's {tuple(teacher_logits.shape)}; teacher and student need the same "
            "tokenizer (pretraining) or the same label set (fine-tuning)."
        )


POSITIONS = ("all", "masked")
"""Where a logit loss distils in pretraining: every real token (DistilBERT's default), or the masked ones."""


def positions_field() -> Any:
    """The ``positions`` parameter of a logit loss's Params (one declaration for ``kl`` and ``mse``)."""
    from dataclasses import field

    return field(
        default="all", metadata={"help": "pretraining: distil at every real token (all) or the masked ones"}
    )


def check_positions(positions: str) -> None:
    """Raise ValueError (kdreg words it as a ParameterError) for an unknown ``positions``."""
    if positions not in POSITIONS:
        raise ValueError(f"positions must be 'all' (every real token) or 'masked', got {positions!r}")


class LogitRows(NamedTuple):
    """The rows a logit loss compares (student and teacher) and the rows its hard-label term scores."""

    student: torch.Tensor
    teacher: torch.Tensor
    labelled: torch.Tensor
    labels: torch.Tensor


def logit_rows(loss: str, positions: str, logits: torch.Tensor, teacher_logits: torch.Tensor,
               labels: torch.Tensor, attention_mask: torch.Tensor) -> LogitRows:
    """Rows of the distillation term and of the hard-label term of a logit loss.

    The hard-label term scores the rows that have a label (:func:`counted_rows`). So does
    the distillation term in fine-tuning (one row per example) and with
    ``positions='masked'``. With ``positions='all'`` in pretraining it takes every
    non-padding token, masked or not, as DistilBERT does by default (its
    ``restrict_ce_to_mask`` off): the teacher's softened distribution over the vocabulary
    at a visible word still says which other words are like it, a signal the masked
    positions alone give far less of per step. It costs memory in proportion: the
    softmaxes run over every token's vocabulary-sized row.
    """
    if positions == "masked" or logits.dim() != 3:
        rows, kept, teacher_rows = counted_rows(loss, logits, labels, teacher_logits)
        assert teacher_rows is not None
        return LogitRows(rows, teacher_rows, rows, kept)
    check_same_logits(loss, logits, teacher_logits)
    labelled, kept, _ = counted_rows(loss, logits, labels)
    real = token_mask(loss, logits, teacher_logits, attention_mask).reshape(-1)
    width = logits.shape[-1]
    return LogitRows(
        working_precision(logits.reshape(-1, width)[real]),
        working_precision(teacher_logits.detach().reshape(-1, width)[real]),
        labelled,
        kept,
    )


def hard_label_cross_entropy(rows: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the given rows (0, still attached to the graph, when there are none)."""
    import torch.nn.functional as F

    if rows.shape[0] == 0:
        return zero_from(rows)
    return F.cross_entropy(rows, labels, reduction="mean")


def check_logit_vocabulary(
    loss: str, teacher: ModelGeometry | None, student: ModelGeometry, stage: str
) -> None:
    """In pretraining, logits are over the vocabulary: teacher and student must share it."""
    if stage == "pretrain" and teacher is not None and teacher.vocab_size != student.vocab_size:
        raise IncompatiblePluginsError(
            f"Loss {loss!r} compares masked-LM logits over the vocabulary, but the teacher has "
            f"{teacher.vocab_size} tokens and the student {student.vocab_size}; in pretraining use a student "
            "derived from the teacher (same tokenizer, e.g. the layers or small students), or distil with "
            f"{loss!r} in fine-tuning only (--stage finetune), where logits are class scores."
        )


def validate_mix(alpha: float, temperature: float | None = None) -> None:
    """Raise ValueError (kdreg words it as a ParameterError) for an alpha outside [0, 1] or T ≤ 0."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1 (1 = distillation only), got {alpha}")
    if temperature is not None and not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


# ------------------------------------------------------------ layer mapping
def parse_mapping(text: str) -> Mapping:
    """'uniform', 'last' or 'S:T;S:T' (student layer:teacher layer; 0 is the embedding output).

    ';' (or a space) separates pairs because ',' already separates a plugin's parameters.
    Raises ValueError, which kdreg reports as a ParameterError naming the plugin.
    """
    cleaned = text.strip().lower()
    if cleaned in ("uniform", "last"):
        return cleaned
    pairs: dict[int, int] = {}
    for item in cleaned.replace(";", " ").split():
        student, colon, teacher = item.partition(":")
        if not colon or not student.isdigit() or not teacher.isdigit():
            raise ValueError(
                f"mapping must be 'uniform', 'last' or student:teacher layer pairs joined by ';' "
                f"(e.g. 1:2;2:4, quoted in a shell), got {text!r}"
            )
        if int(student) in pairs:
            raise ValueError(f"mapping names student layer {student} twice in {text!r}")
        pairs[int(student)] = int(teacher)
    if not pairs:
        raise ValueError("mapping is empty; write 'uniform', 'last' or pairs like 1:2;2:4")
    return tuple(sorted(pairs.items()))


def format_mapping(mapping: Mapping) -> str:
    """The canonical text of a parsed mapping (so '2:4; 1:2' and '1:2;2:4' are one run)."""
    if isinstance(mapping, str):
        return mapping
    return ";".join(f"{s}:{t}" for s, t in mapping)


def layer_pairs(
    loss: str, mapping: Mapping, student_layers: int, teacher_layers: int, *, first: int = 0
) -> list[tuple[int, int]]:
    """(student layer, teacher layer) pairs, layers numbered from 1 (0 = embedding output).

    'uniform' is TinyBERT's g(m) = m·N/M for student layers m = 1..M (rounded down, at
    least 1), so the last student layer meets the last teacher layer; 'last' pairs the
    two last layers (MiniLM). ``first`` is the lowest layer number allowed (1 for
    attention maps, which the embedding output has none of).
    """
    if mapping == "uniform":
        return [(m, max(1, m * teacher_layers // student_layers)) for m in range(1, student_layers + 1)]
    if mapping == "last":
        return [(student_layers, teacher_layers)]
    assert not isinstance(mapping, str)
    for student, teacher in mapping:
        if not (first <= student <= student_layers and first <= teacher <= teacher_layers):
            raise IncompatiblePluginsError(
                f"Loss {loss!r} maps student layer {student} to teacher layer {teacher}, but the student has "
                f"layers {first}..{student_layers} and the teacher {first}..{teacher_layers}; fix "
                f"{loss}:mapping=... or use mapping=uniform."
            )
    return list(mapping)


# ------------------------------------------------------------------ tokens
def token_mask(
    loss: str, student: torch.Tensor, teacher: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Boolean [batch, tokens] of real (non-padding) tokens, once both sides are checked to align."""
    if student.shape[:2] != teacher.shape[:2]:
        raise IncompatiblePluginsError(
            f"Loss {loss!r} compares teacher and student token by token, but the student saw "
            f"{tuple(student.shape[:2])} (batch, tokens) and the teacher {tuple(teacher.shape[:2])}; "
            "both must read the same token ids (a student derived from the teacher, sharing its tokenizer)."
        )
    if attention_mask.shape != student.shape[:2]:
        raise PluginError(
            f"Loss {loss!r} got an attention mask of shape {tuple(attention_mask.shape)} for outputs "
            f"of shape {tuple(student.shape)}; the mask must be [batch, tokens]."
        )
    return attention_mask.bool()
