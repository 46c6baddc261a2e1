"""Per-layer queries, keys and values of an encoder, captured with forward hooks.

Relation-based distillation (MiniLM) compares the self-attention *projections* of teacher
and student, which transformers models do not return: they return attention
probabilities at most. So when a loss names ``queries``, ``keys`` or ``values`` in its
``needs``, :func:`capture_projections` hooks the query/key/value ``Linear`` layers of
every self-attention block for one forward pass, splits their outputs into the model's
heads the way the model itself does ([batch, heads, tokens, head_dim]) and removes the
hooks again. A loss that needs none of them costs nothing: no hook is registered.

The projections are found by name, in the module order of the model (layer 0 first):
``query``/``key``/``value`` (BERT, XLM-R, ELECTRA), ``q_lin``/``k_lin``/``v_lin``
(DistilBERT), ``q_proj``/``k_proj``/``v_proj`` and ``query_proj``/``key_proj``/``value_proj``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kdreg.errors import IncompatiblePluginsError

PROJECTED = ("queries", "keys", "values")
"""The ``needs`` names of the three projections, in query, key, value order."""

PROJECTION_NAMES = (
    ("query", "key", "value"),
    ("q_lin", "k_lin", "v_lin"),
    ("q_proj", "k_proj", "v_proj"),
    ("query_proj", "key_proj", "value_proj"),
)
"""Child-module names of the query, key and value projections in the encoders kdreg knows."""

_HEAD_ATTRIBUTES = ("num_attention_heads", "n_heads", "num_heads")


def _heads(block: Any, model: Any) -> int:
    """Heads of one attention block: its own attribute, else the model config's."""
    for source in (block, getattr(model, "config", None)):
        for name in _HEAD_ATTRIBUTES:
            value = getattr(source, name, None)
            if isinstance(value, int) and value > 0:
                return value
    raise IncompatiblePluginsError(
        f"Cannot tell how many attention heads {type(block).__name__} in {type(model).__name__} has, so its "
        "queries, keys and values cannot be split into heads; use a BERT-, XLM-R- or DistilBERT-style model."
    )


def attention_projections(model: Any) -> list[tuple[tuple[Any, Any, Any], int]]:
    """((query, key, value) Linear modules, heads) of every self-attention block, first layer first."""
    import torch

    found = []
    for _, block in model.named_modules():
        children = dict(block.named_children())
        for names in PROJECTION_NAMES:
            modules = tuple(children.get(name) for name in names)
            if all(isinstance(m, torch.nn.Linear) for m in modules):
                found.append((modules, _heads(block, model)))
                break
    return found


def _split_heads(projected: Any, heads: int) -> Any:
    """[batch, tokens, heads·head_dim] → [batch, heads, tokens, head_dim], as the attention block does."""
    batch, tokens, width = projected.shape
    return projected.view(batch, tokens, heads, width // heads).transpose(1, 2)


@contextmanager
def capture_projections(model: Any, needs: frozenset[str]) -> Iterator[dict[str, list[Any]]]:
    """During the ``with`` block, collect the projections in ``needs``: name → one tensor per layer.

    The lists fill as the model runs its layers; the hooks are removed on leaving the block.
    """
    wanted = [(index, name) for index, name in enumerate(PROJECTED) if name in needs]
    if not wanted:
        yield {}
        return
    blocks = attention_projections(model)
    if not blocks:
        raise IncompatiblePluginsError(
            f"The loss needs {', '.join(name for _, name in wanted)}, but {type(model).__name__} has no "
            "self-attention projections kdreg recognises (Linear layers named query/key/value, q_lin/k_lin/"
            "v_lin or q_proj/k_proj/v_proj); use a BERT-, XLM-R- or DistilBERT-style model."
        )
    captured: dict[str, list[Any]] = {name: [] for _, name in wanted}

    def collector(name: str, heads: int) -> Any:
        def keep(_module: Any, _inputs: Any, output: Any) -> None:
            captured[name].append(_split_heads(output, heads))

        return keep

    handles = []
    try:
        for modules, heads in blocks:
            for index, name in wanted:
                handles.append(modules[index].register_forward_hook(collector(name, heads)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()
