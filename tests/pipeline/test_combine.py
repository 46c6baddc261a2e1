"""Weighted loss combinations: values, declared needs, trainable parts, and parsing via the real registry."""

from __future__ import annotations

import math

import pytest
import torch

from kdreg.errors import IncompatiblePluginsError, ParameterError
from kdreg.pipeline.combine import CombinedLoss, build_loss
from kdreg.pipeline.training import forward, use_eager_attention
from kdreg.plugins.registry import registry
from kdreg.plugins.spec import LossBatch, ModelGeometry, ModelOutputs
from kdreg_plugins.losses.logits import CrossEntropy, SoftTargetKL
from kdreg_plugins.losses.representations import HiddenCosine, HiddenMSE


def geo(hidden: int, layers: int = 1, heads: int = 1, vocab: int = 3) -> ModelGeometry:
    return ModelGeometry(vocab_size=vocab, hidden_size=hidden, num_layers=layers, num_heads=heads)


def outputs(logits: list, hidden: list) -> ModelOutputs:
    return ModelOutputs(
        logits=torch.tensor(logits, dtype=torch.float64, requires_grad=True),
        hidden_states=tuple(torch.tensor(h, dtype=torch.float64, requires_grad=True) for h in hidden),
    )


STUDENT = outputs([[1.0, 2.0, 3.0]], [[[[0.0, 0.0]]], [[[1.0, 2.0]]]])  # hidden: [batch 1, token 1, width 2]
TEACHER = outputs([[3.0, 1.0, 0.0]], [[[[0.0, 0.0]]], [[[2.0, 0.0]]]])
BATCH = LossBatch(torch.tensor([2]), torch.tensor([[1]]), "finetune")


def test_combination_is_the_weighted_sum_of_its_terms() -> None:
    kl, hidden, ce = SoftTargetKL(), HiddenMSE(), CrossEntropy()
    combined = CombinedLoss.from_terms([(1.0, kl), (0.5, hidden), (0.25, ce)])
    parts = [
        kl.compute(STUDENT, TEACHER, BATCH),
        hidden.compute(STUDENT, TEACHER, BATCH),
        ce.compute(STUDENT, None, BATCH),
    ]
    value = combined.compute(STUDENT, TEACHER, BATCH)
    assert value.item() == pytest.approx(
        parts[0].item() + 0.5 * parts[1].item() + 0.25 * parts[2].item(), abs=1e-12
    )
    # the hidden term by hand: ((1-2)² + (2-0)²) / 2
    assert parts[1].item() == pytest.approx(2.5, abs=1e-12)
    assert combined.needs == frozenset({"logits", "hidden_states"})
    assert combined.uses_teacher is True
    assert CombinedLoss.from_terms([(1.0, ce), (2.0, CrossEntropy())]).uses_teacher is False


def test_prepare_collects_trainable_parts_and_runs_every_check() -> None:
    combined = CombinedLoss.from_terms([(1.0, SoftTargetKL()), (0.5, HiddenMSE())])
    assert combined.prepare(geo(2), geo(2), "finetune") is None
    modules = combined.prepare(geo(3), geo(2), "finetune")
    assert isinstance(modules, torch.nn.ModuleList) and len(modules) == 1
    assert isinstance(modules[0], torch.nn.Linear)
    with pytest.raises(IncompatiblePluginsError):
        CombinedLoss.from_terms([(1.0, HiddenMSE()), (1.0, HiddenCosine())]).prepare(
            geo(3), geo(2), "finetune"
        )


def test_build_loss_parses_weights_and_parameters_with_the_real_registry() -> None:
    loss, spec, identities = build_loss("kl:temperature=4,alpha=0.5+0.5*hidden", registry())
    assert spec == "kl:temperature=4+0.5*hidden"  # alpha=0.5 is the default, so not part of the identity
    assert isinstance(loss, CombinedLoss)
    (w1, kl), (w2, hidden) = loss.terms
    assert (w1, w2) == (1.0, 0.5)
    assert isinstance(kl, SoftTargetKL) and kl.params.temperature == 4.0 and kl.params.alpha == 0.5
    assert isinstance(hidden, HiddenMSE) and hidden.params.mapping == "uniform"
    assert [(i["name"], i["weight"]) for i in identities] == [("kl", 1.0), ("hidden", 0.5)]
    assert identities[0]["params"] == {"temperature": 4.0, "alpha": 0.5, "positions": "all"}
    assert identities[0]["distribution"] == identities[1]["distribution"]


def test_build_loss_single_term_needs_no_wrapper() -> None:
    loss, spec, identities = build_loss("ce")
    assert isinstance(loss, CrossEntropy) and spec == "ce" and len(identities) == 1
    weighted, spec, _ = build_loss("2*ce")
    assert isinstance(weighted, CombinedLoss) and spec == "2*ce"
    with pytest.raises(ParameterError, match="temperature"):
        build_loss("kl:temprature=4")


def test_combined_distillation_on_real_tiny_berts() -> None:
    """kl + hidden (projection 32→48, 2→4 layers) + head-averaged attention on real BERT outputs."""
    from transformers import BertConfig, BertForMaskedLM

    def bert(hidden: int, layers: int, heads: int) -> BertForMaskedLM:
        config = BertConfig(
            vocab_size=40,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=2 * hidden,
            max_position_embeddings=16,
        )
        model = BertForMaskedLM(config)
        use_eager_attention(model)  # as the pipeline does for attention losses
        return model

    torch.manual_seed(0)
    teacher, student = bert(48, 4, 4), bert(32, 2, 2)
    loss, _, _ = build_loss("kl+0.5*hidden+0.1*attention:heads=average")
    extra = loss.prepare(geo(48, 4, 4, 40), geo(32, 2, 2, 40), "pretrain")
    assert extra is not None
    ids = torch.randint(5, 40, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    labels = torch.full((2, 6), -100)
    labels[0, 1], labels[1, 2] = 7, 9
    batch = {"input_ids": ids, "attention_mask": mask}
    with torch.no_grad():
        teacher_out = forward(teacher, batch, loss.needs)
    value = loss.compute(
        forward(student, batch, loss.needs), teacher_out, LossBatch(labels, mask, "pretrain")
    )
    assert math.isfinite(value.item()) and value.item() > 0
    value.backward()
    assert student.bert.encoder.layer[0].attention.self.query.weight.grad is not None
    assert all(p.grad is not None for p in extra.parameters())
    assert all(p.grad is None for p in teacher.parameters())
