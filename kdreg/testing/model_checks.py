"""Teachers and students on a tiny real model (used by :mod:`kdreg.testing.checks`).

A teacher must load, and a student build, with both heads kdreg asks for (masked LM and
classification); the tokenizer must pad (and mask, for pretraining); and the model must
run the forward pass the pipeline runs — ``input_ids``, ``attention_mask`` and
``token_type_ids`` in, logits of the right shape out, hidden states and attention maps
for every layer on request — with a config the pipeline can read its sizes from.
Students are built for a tiny BERT saved once per process and loaded through the
built-in ``hf`` teacher, unless the caller names another teacher.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from typing import Any

from kdreg.plugins.spec import Head, ModelGeometry
from kdreg.testing.checks import CheckContext, CheckFailed, CheckSkipped

LABELS = 3
TEXTS = ["hello world .", "the a of and to in is was hello world der die das und le la et el y !"]


def model_geometry(model: Any) -> ModelGeometry:
    """Sizes the pipeline reads from a transformers config (BERT, XLM-R and DistilBERT names)."""
    cfg = model.config
    return ModelGeometry(
        vocab_size=int(cfg.vocab_size),
        hidden_size=int(getattr(cfg, "hidden_size", None) or cfg.dim),
        num_layers=int(getattr(cfg, "num_hidden_layers", None) or cfg.n_layers),
        num_heads=int(getattr(cfg, "num_attention_heads", None) or cfg.n_heads),
    )


def exercise_model(loaded: Any, head: Head) -> str:
    """Tokenise two texts and run the pipeline's forward pass; check every output's shape."""
    import torch

    model = getattr(loaded, "model", None)
    tokenizer = getattr(loaded, "tokenizer", None)
    if model is None or tokenizer is None:
        raise CheckFailed(f"must return a LoadedModel(model, tokenizer), got {type(loaded).__name__}")
    if tokenizer.pad_token_id is None:
        raise CheckFailed("the tokenizer has no pad token; kdreg pads batches with it")
    if head.kind == "mlm" and tokenizer.mask_token is None:
        raise CheckFailed("the tokenizer has no mask token; masked-LM batches need one")
    geometry = model_geometry(model)
    encoded = tokenizer(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="pt")
    inputs = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded}
    if int(inputs["input_ids"].max()) >= geometry.vocab_size:
        raise CheckFailed(f"the tokenizer produces ids ≥ the model's vocab_size {geometry.vocab_size}")
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")  # fused attention kernels return no attention maps
    model.eval()
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True, output_attentions=True, return_dict=True)
    batch, tokens = inputs["input_ids"].shape
    want = (batch, tokens, geometry.vocab_size) if head.kind == "mlm" else (batch, head.num_labels)
    if tuple(out.logits.shape) != want:
        raise CheckFailed(f"{head.kind} logits have shape {tuple(out.logits.shape)}, expected {want}")
    hidden: tuple[Any, ...] = tuple(out.hidden_states or ())
    if len(hidden) != geometry.num_layers + 1 or tuple(hidden[-1].shape) != (
        batch,
        tokens,
        geometry.hidden_size,
    ):
        raise CheckFailed(
            f"hidden_states must be the embeddings plus {geometry.num_layers} layers of "
            f"[batch, tokens, {geometry.hidden_size}], got {len(hidden)}"
        )
    attentions: tuple[Any, ...] = tuple(out.attentions or ())
    if len(attentions) != geometry.num_layers or tuple(attentions[0].shape) != (
        batch,
        geometry.num_heads,
        tokens,
        tokens,
    ):
        raise CheckFailed(
            f"attentions must be {geometry.num_layers} maps of [batch, {geometry.num_heads}, tokens, "
            f"tokens], got {len(attentions)}"
        )
    return (
        f"{type(model).__name__}: {geometry.num_layers} layers, width {geometry.hidden_size}, "
        f"vocab {geometry.vocab_size}; logits {tuple(out.logits.shape)}"
    )


HEADS_CHECKED = (Head("mlm"), Head("classification", LABELS))


def _head_text(head: Head) -> str:
    return head.kind if head.kind == "mlm" else f"{head.kind}, {head.num_labels} labels"


def check_teacher(ctx: CheckContext) -> None:
    for head in HEADS_CHECKED:
        with ctx.row(f"load({_head_text(head)})") as note:
            note[0] = exercise_model(ctx.instance.load(head), head)


@cache
def tiny_teacher_dir() -> str:
    """A tiny BERT saved once per process in a temporary folder (removed at exit)."""
    from kdreg.testing.tiny import save_tiny_bert

    folder = tempfile.mkdtemp(prefix="kdreg-check-teacher-")
    atexit.register(shutil.rmtree, folder, True)
    return str(save_tiny_bert(folder, layers=2, hidden=32, heads=2, intermediate=64))


def _teacher(ctx: CheckContext) -> tuple[Any, str]:
    from kdreg.errors import KdregError
    from kdreg.plugins.registry import registry

    given = ctx.teacher
    if given is not None and not isinstance(given, str):
        return given, type(given).__name__
    spec = given or f"hf:path={tiny_teacher_dir()}"
    try:
        return registry().resolve("teacher", spec).create(), spec
    except KdregError as exc:
        if given:
            raise
        raise CheckSkipped(
            f"the default tiny teacher needs the built-in 'hf' teacher ({str(exc).rstrip('.')}); "
            "pass a teacher to check students against"
        ) from None


def check_student(ctx: CheckContext) -> None:
    teacher: list[Any] = []
    with ctx.row("student: teacher") as note:
        found, label = _teacher(ctx)
        teacher.append(found)
        note[0] = label
    if not teacher:
        ctx.skip("build", "not run: no teacher to build from")
        return
    for head in HEADS_CHECKED:
        with ctx.row(f"build({_head_text(head)})") as note:
            note[0] = exercise_model(ctx.instance.build(teacher[0], head), head)


