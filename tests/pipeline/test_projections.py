"""Queries, keys and values captured with forward hooks, only when a loss needs them (issue 16 §4).

On tiny real BERT and DistilBERT models: each captured projection equals the layer's own
query/key/value Linear applied to that layer's input (the previous hidden state), split
into heads as the model does; softmax(Q Kᵀ / √d) over the real keys is the model's own
attention map; no hook outlives the forward pass.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from kdreg.errors import IncompatiblePluginsError
from kdreg.pipeline.training import forward, use_eager_attention

QKV = frozenset({"queries", "keys", "values"})
BATCH = {"input_ids": torch.tensor([[2, 5, 7, 9, 3], [2, 6, 3, 0, 0]]),
         "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}


def bert() -> Any:
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(vocab_size=12, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    return BertForMaskedLM(config).eval()


def distilbert() -> Any:
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=12, dim=8, n_layers=2, n_heads=2, hidden_dim=16,
                              max_position_embeddings=16)
    return DistilBertForMaskedLM(config).eval()


def linear_hooks(model: Any) -> list[Any]:
    """Forward hooks left on Linear layers (where ours go; transformers keeps its own on the blocks)."""
    return [h for m in model.modules() if isinstance(m, torch.nn.Linear) for h in m._forward_hooks.values()]


def split(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


@pytest.mark.parametrize(("make", "path", "names"), [
    (bert, "bert.encoder.layer.{}.attention.self", ("query", "key", "value")),
    (distilbert, "distilbert.transformer.layer.{}.attention", ("q_lin", "k_lin", "v_lin")),
], ids=["bert", "distilbert"])
def test_captured_projections_are_the_layers_own(make: Any, path: str, names: tuple[str, ...]) -> None:
    model = make()
    use_eager_attention(model)
    with torch.no_grad():
        out = forward(model, BATCH, QKV | {"hidden_states", "attentions"})
    assert len(out.queries) == len(out.keys) == len(out.values) == 2
    real = BATCH["attention_mask"].bool()
    for layer in range(2):
        block = model.get_submodule(path.format(layer))
        for captured, name in zip((out.queries, out.keys, out.values), names, strict=True):
            expected = split(getattr(block, name)(out.hidden_states[layer]), 2)
            assert captured[layer].shape == (2, 2, 5, 4)
            torch.testing.assert_close(captured[layer], expected)
        scores = out.queries[layer] @ out.keys[layer].transpose(-1, -2) / math.sqrt(4)
        attention = scores.masked_fill(~real[:, None, None, :], -1e9).softmax(-1)
        torch.testing.assert_close(attention, out.attentions[layer])  # what MiniLM v1 distils
    assert not linear_hooks(model)


def test_nothing_is_hooked_unless_needed_and_gradients_flow() -> None:
    model = bert()
    plain = forward(model, BATCH, frozenset({"logits"}))
    assert plain.queries is None and plain.keys is None and plain.values is None
    model.train()
    out = forward(model, BATCH, frozenset({"values"}))
    assert out.queries is None and out.keys is None and len(out.values) == 2
    out.values[0].sum().backward()
    assert model.bert.encoder.layer[0].attention.self.value.weight.grad is not None
    assert not linear_hooks(model)


def test_a_model_without_recognisable_projections_is_one_clear_error() -> None:
    class Opaque(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.in_proj = torch.nn.Linear(4, 12)

        def forward(self, **_: Any) -> Any:  # pragma: no cover - never reached
            raise AssertionError("the error comes before the forward pass")

    with pytest.raises(IncompatiblePluginsError, match="no self-attention projections kdreg recognises"):
        forward(Opaque(), BATCH, QKV)
