"""The built-in losses against values computed by hand with plain ``math``.

Inputs are small fixed tensors (float64, so hand and torch agree to ~1e-12); each
expected value is written out from the formula in the loss's docstring, never by
calling the torch function the implementation uses.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from kdreg.errors import IncompatiblePluginsError, ParameterError, PluginError
from kdreg.plugins.registry import registry
from kdreg.plugins.spec import LossBatch, ModelGeometry, ModelOutputs
from kdreg_plugins.losses.logits import CrossEntropy, LogitMSE, SoftTargetKL
from kdreg_plugins.losses.representations import AttentionLoss, HiddenCosine, HiddenMSE

S_LOGITS = [[1.0, 2.0, 3.0], [0.5, 0.0, -0.5]]
T_LOGITS = [[3.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
LABELS = [2, 0]


# ------------------------------------------------------------ plain-math helpers
def softmax(row: list[float], temperature: float = 1.0) -> list[float]:
    exps = [math.exp(x / temperature) for x in row]
    total = sum(exps)
    return [e / total for e in exps]


def kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True) if pi > 0)


def cross_entropy(row: list[float], label: int) -> float:
    return -math.log(softmax(row)[label])


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def tensor(values: object, grad: bool = True) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64, requires_grad=grad)


def geo(vocab: int = 10, hidden: int = 4, layers: int = 2, heads: int = 2) -> ModelGeometry:
    return ModelGeometry(vocab_size=vocab, hidden_size=hidden, num_layers=layers, num_heads=heads)


def finetune_batch(labels: list[int] = LABELS) -> LossBatch:
    return LossBatch(torch.tensor(labels), torch.ones(len(labels), 3, dtype=torch.long), "finetune")


# ------------------------------------------------------------------ logits
def test_cross_entropy_by_hand_and_needs_no_teacher() -> None:
    s = tensor(S_LOGITS)
    value = CrossEntropy().compute(ModelOutputs(logits=s), None, finetune_batch())
    expected = mean([cross_entropy(S_LOGITS[0], 2), cross_entropy(S_LOGITS[1], 0)])
    assert value.item() == pytest.approx(expected, abs=1e-12)
    assert CrossEntropy.uses_teacher is False and CrossEntropy.needs == frozenset({"logits"})


def test_cross_entropy_in_pretraining_is_masked_lm_over_labelled_positions() -> None:
    rows = [[0.2, -1.0, 0.7, 0.0], [1.5, 0.3, -0.2, 0.9], [0.0, 2.0, 0.0, -2.0]]
    labels = torch.tensor([[-100, 3, 1]])
    batch = LossBatch(labels, torch.ones(1, 3, dtype=torch.long), "pretrain")
    value = CrossEntropy().compute(ModelOutputs(logits=tensor([rows])), None, batch)
    assert value.item() == pytest.approx(
        mean([cross_entropy(rows[1], 3), cross_entropy(rows[2], 1)]), abs=1e-12
    )
    nothing = LossBatch(torch.full((1, 3), -100), torch.ones(1, 3, dtype=torch.long), "pretrain")
    assert CrossEntropy().compute(ModelOutputs(logits=tensor([rows])), None, nothing).item() == 0.0


def test_soft_target_kl_by_hand_with_t_squared_factor() -> None:
    loss = SoftTargetKL(SoftTargetKL.Params(temperature=2.0, alpha=1.0))
    value = loss.compute(
        ModelOutputs(logits=tensor(S_LOGITS)), ModelOutputs(logits=tensor(T_LOGITS)), finetune_batch()
    )
    per_example = [kl(softmax(t, 2.0), softmax(s, 2.0)) for s, t in zip(S_LOGITS, T_LOGITS, strict=True)]
    assert value.item() == pytest.approx(4.0 * mean(per_example), abs=1e-12)


def test_t_squared_keeps_the_high_temperature_limit_finite() -> None:
    """Hinton et al.: for large T, T²·KL → (1/2C)·Σ_c δ_c², δ = centred teacher − centred student logits."""
    loss = SoftTargetKL(SoftTargetKL.Params(temperature=1000.0, alpha=1.0))
    value = loss.compute(
        ModelOutputs(logits=tensor(S_LOGITS)), ModelOutputs(logits=tensor(T_LOGITS)), finetune_batch()
    )
    limits = []
    for s, t in zip(S_LOGITS, T_LOGITS, strict=True):
        delta = [(ti - mean(t)) - (si - mean(s)) for si, ti in zip(s, t, strict=True)]
        limits.append(sum(d * d for d in delta) / (2 * len(delta)))
    assert value.item() == pytest.approx(mean(limits), rel=1e-2)


def test_soft_target_alpha_mixes_kd_and_hard_label_ce() -> None:
    s, t = tensor(S_LOGITS), tensor(T_LOGITS)
    kd = 9.0 * mean(
        [kl(softmax(ti, 3.0), softmax(si, 3.0)) for si, ti in zip(S_LOGITS, T_LOGITS, strict=True)]
    )
    ce = mean([cross_entropy(S_LOGITS[0], 2), cross_entropy(S_LOGITS[1], 0)])
    mixed = SoftTargetKL(SoftTargetKL.Params(temperature=3.0, alpha=0.3))
    value = mixed.compute(ModelOutputs(logits=s), ModelOutputs(logits=t), finetune_batch())
    assert value.item() == pytest.approx(0.3 * kd + 0.7 * ce, abs=1e-12)
    only_ce = SoftTargetKL(SoftTargetKL.Params(temperature=3.0, alpha=0.0))
    assert only_ce.compute(ModelOutputs(logits=s), ModelOutputs(logits=t), finetune_batch()).item() == (
        pytest.approx(ce, abs=1e-12)
    )


# One sequence of 5 positions over a vocabulary of 4: positions 1 and 3 are masked (labelled), 4 is padding.
PRE_STUDENT = [[[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 0.0], [2.0, 0.0, 0.0, 0.0], [0.3, 0.3, 0.9, -0.4],
                [7.0, -7.0, 0.0, 3.0]]]
PRE_TEACHER = [[[0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 2.0, -1.0], [0.0, 1.0, 1.0, 3.0], [1.2, -0.3, 0.0, 0.4],
                [-6.0, 6.0, 1.0, 0.0]]]
PRE_BATCH = LossBatch(torch.tensor([[-100, 2, -100, 0, -100]]), torch.tensor([[1, 1, 1, 1, 0]]), "pretrain")


def pretrain_value(loss: SoftTargetKL | LogitMSE, student: object = PRE_STUDENT,
                   teacher: object = PRE_TEACHER) -> float:
    outputs = ModelOutputs(logits=tensor(student)), ModelOutputs(logits=tensor(teacher))
    return loss.compute(*outputs, PRE_BATCH).item()


def test_soft_target_in_pretraining_distils_every_real_token_by_default() -> None:
    """DistilBERT's default: the KD term over tokens 0-3 (not the padding); CE over the masked 1 and 3."""
    s, t = PRE_STUDENT[0], PRE_TEACHER[0]
    kd = 4.0 * mean([kl(softmax(t[i], 2.0), softmax(s[i], 2.0)) for i in range(4)])
    ce = mean([cross_entropy(s[1], 2), cross_entropy(s[3], 0)])
    assert SoftTargetKL.Params().positions == "all"
    assert pretrain_value(SoftTargetKL(SoftTargetKL.Params(temperature=2.0, alpha=1.0))) == (
        pytest.approx(kd, abs=1e-12))
    mixed = SoftTargetKL(SoftTargetKL.Params(temperature=2.0, alpha=0.75))
    assert pretrain_value(mixed) == pytest.approx(0.75 * kd + 0.25 * ce, abs=1e-12)
    padded = [row[:] for row in PRE_STUDENT[0]]
    padded[4] = [-3.0, 9.0, 2.0, 2.0]
    assert pretrain_value(mixed, student=[padded]) == pytest.approx(0.75 * kd + 0.25 * ce, abs=1e-12)


def test_soft_target_in_pretraining_with_positions_masked_counts_masked_positions_only() -> None:
    s, t = PRE_STUDENT[0], PRE_TEACHER[0]
    loss = SoftTargetKL(SoftTargetKL.Params(temperature=2.0, alpha=1.0, positions="masked"))
    expected = 4.0 * mean([kl(softmax(t[i], 2.0), softmax(s[i], 2.0)) for i in (1, 3)])
    assert pretrain_value(loss) == pytest.approx(expected, abs=1e-12)
    changed_s, changed_t = [row[:] for row in s], [row[:] for row in t]
    changed_s[0] = [9.0, -9.0, 4.0, 0.0]
    changed_t[2] = [-5.0, 5.0, 0.0, 1.0]
    assert pretrain_value(loss, [changed_s], [changed_t]) == pytest.approx(expected, abs=1e-15)


def test_logit_mse_in_pretraining_follows_positions() -> None:
    s, t = PRE_STUDENT[0], PRE_TEACHER[0]

    def squares(rows: tuple[int, ...]) -> float:
        return mean([(a - b) ** 2 for i in rows for a, b in zip(s[i], t[i], strict=True)])

    assert pretrain_value(LogitMSE()) == pytest.approx(squares((0, 1, 2, 3)), abs=1e-12)
    masked = LogitMSE(LogitMSE.Params(positions="masked"))
    assert pretrain_value(masked) == pytest.approx(squares((1, 3)), abs=1e-12)


def test_with_no_masked_token_every_real_token_is_still_distilled() -> None:
    """No label in the batch: the KD term over the real tokens remains, the hard-label term is 0."""
    s, t = PRE_STUDENT[0], PRE_TEACHER[0]
    unlabelled = LossBatch(torch.full((1, 5), -100), PRE_BATCH.attention_mask, "pretrain")
    loss = SoftTargetKL(SoftTargetKL.Params(temperature=2.0, alpha=0.5))
    value = loss.compute(ModelOutputs(logits=tensor(PRE_STUDENT)), ModelOutputs(logits=tensor(PRE_TEACHER)),
                         unlabelled)
    kd = 4.0 * mean([kl(softmax(t[i], 2.0), softmax(s[i], 2.0)) for i in range(4)])
    assert value.item() == pytest.approx(0.5 * kd, abs=1e-12)
    masked = SoftTargetKL(SoftTargetKL.Params(temperature=2.0, alpha=0.5, positions="masked"))
    assert masked.compute(ModelOutputs(logits=tensor(PRE_STUDENT)), ModelOutputs(logits=tensor(PRE_TEACHER)),
                          unlabelled).item() == 0.0


def test_pretraining_gradients_reach_the_student_only_and_never_padding() -> None:
    for loss in (SoftTargetKL(SoftTargetKL.Params(alpha=0.5)), LogitMSE(LogitMSE.Params(alpha=0.5)),
                 SoftTargetKL(SoftTargetKL.Params(positions="masked"))):
        s, t = tensor(PRE_STUDENT), tensor(PRE_TEACHER)
        loss.compute(ModelOutputs(logits=s), ModelOutputs(logits=t), PRE_BATCH).backward()
        assert s.grad is not None and t.grad is None
        touched = [bool(s.grad[0, i].abs().sum() > 0) for i in range(5)]
        if loss.params.positions == "masked":
            assert touched == [False, True, False, True, False]
        else:
            assert touched == [True, True, True, True, False]


def test_pretraining_shape_mismatches_are_clear_errors() -> None:
    wider = [[[*row, 0.0] for row in PRE_TEACHER[0]]]
    for positions in ("all", "masked"):
        with pytest.raises(IncompatiblePluginsError, match="same tokenizer"):
            SoftTargetKL(SoftTargetKL.Params(positions=positions)).compute(
                ModelOutputs(logits=tensor(PRE_STUDENT)), ModelOutputs(logits=tensor(wider)), PRE_BATCH)
    short_mask = LossBatch(PRE_BATCH.labels, torch.ones(1, 4, dtype=torch.long), "pretrain")
    with pytest.raises(PluginError, match=r"attention mask of shape \(1, 4\)"):
        outputs = ModelOutputs(logits=tensor(PRE_STUDENT)), ModelOutputs(logits=tensor(PRE_TEACHER))
        SoftTargetKL().compute(*outputs, short_mask)


def test_positions_do_not_change_fine_tuning() -> None:
    s, t = tensor(S_LOGITS), tensor(T_LOGITS)
    for cls in (SoftTargetKL, LogitMSE):
        values = {cls(cls.Params(positions=p)).compute(ModelOutputs(logits=s), ModelOutputs(logits=t),
                                                       finetune_batch()).item() for p in ("all", "masked")}
        assert len(values) == 1


def test_logit_losses_send_gradients_to_the_student_only() -> None:
    for loss in (SoftTargetKL(), LogitMSE(LogitMSE.Params(alpha=0.5))):
        s, t = tensor(S_LOGITS), tensor(T_LOGITS)
        loss.compute(ModelOutputs(logits=s), ModelOutputs(logits=t), finetune_batch()).backward()
        assert s.grad is not None and s.grad.abs().sum() > 0
        assert t.grad is None


def test_logit_mse_by_hand_and_alpha_mix() -> None:
    s, t = tensor(S_LOGITS), tensor(T_LOGITS)
    squares = [
        (si - ti) ** 2
        for sr, tr in zip(S_LOGITS, T_LOGITS, strict=True)
        for si, ti in zip(sr, tr, strict=True)
    ]
    mse = sum(squares) / 6
    value = LogitMSE().compute(ModelOutputs(logits=s), ModelOutputs(logits=t), finetune_batch())
    assert value.item() == pytest.approx(mse, abs=1e-12)
    ce = mean([cross_entropy(S_LOGITS[0], 2), cross_entropy(S_LOGITS[1], 0)])
    mixed = LogitMSE(LogitMSE.Params(alpha=0.25)).compute(
        ModelOutputs(logits=s), ModelOutputs(logits=t), finetune_batch()
    )
    assert mixed.item() == pytest.approx(0.25 * mse + 0.75 * ce, abs=1e-12)


def test_logit_losses_need_one_vocabulary_in_pretraining_only() -> None:
    for loss in (SoftTargetKL(), LogitMSE()):
        with pytest.raises(IncompatiblePluginsError, match=r"vocabulary.*derived from the teacher"):
            loss.prepare(geo(vocab=100), geo(vocab=50), "pretrain")
        assert loss.prepare(geo(vocab=100), geo(vocab=50), "finetune") is None  # class logits always match
        assert loss.prepare(geo(vocab=100), geo(vocab=100), "pretrain") is None


def test_logit_shape_mismatch_and_missing_teacher_are_clear_errors() -> None:
    with pytest.raises(IncompatiblePluginsError, match="same tokenizer"):
        SoftTargetKL().compute(
            ModelOutputs(logits=tensor(S_LOGITS)),
            ModelOutputs(logits=tensor([[1.0, 2.0], [3.0, 4.0]])),
            finetune_batch(),
        )
    with pytest.raises(PluginError, match="teacher's logits"):
        SoftTargetKL().compute(ModelOutputs(logits=tensor(S_LOGITS)), None, finetune_batch())


def test_parameters_are_validated_through_the_registry() -> None:
    reg = registry()
    assert reg.resolve("loss", "kl:alpha=1,temperature=4.0").spec == "kl:alpha=1,temperature=4"
    with pytest.raises(ParameterError, match="alpha"):
        reg.resolve("loss", "kl:alpha=1.5")
    with pytest.raises(ParameterError, match="temperature"):
        reg.resolve("loss", "kl:temperature=0")
    assert reg.resolve("loss", "kl:positions=masked").params.positions == "masked"
    for name in ("kl", "mse"):
        with pytest.raises(ParameterError, match="positions must be 'all'"):
            reg.resolve("loss", f"{name}:positions=unmasked")
    assert reg.resolve("loss", "hidden:mapping=2:4; 1:2").spec == "hidden:mapping=1:2;2:4"
    with pytest.raises(ParameterError, match="mapping"):
        reg.resolve("loss", "hidden:mapping=1-2")
    with pytest.raises(ParameterError, match="heads"):
        reg.resolve("loss", "attention:heads=some")


# ------------------------------------------------------------ hidden states
# Student: 2 layers, width 2; teacher: 4 layers, width 2. Batch of one sequence, 2 tokens, the 2nd is padding.
S_HIDDEN = [[[[0.0, 0.0], [5.0, 5.0]]], [[[1.0, 2.0], [7.0, 7.0]]], [[[0.5, -1.0], [3.0, 3.0]]]]
T_HIDDEN = [
    [[[0.0, 0.0], [0.0, 0.0]]],
    [[[9.0, 9.0], [9.0, 9.0]]],
    [[[2.0, 0.0], [1.0, 1.0]]],
    [[[8.0, 8.0], [8.0, 8.0]]],
    [[[1.5, 1.0], [-4.0, 4.0]]],
]
MASK = torch.tensor([[1, 0]])


def states(values: list, grad: bool = True) -> tuple[torch.Tensor, ...]:
    return tuple(tensor(layer, grad=grad) for layer in values)


def test_hidden_mse_uniform_mapping_by_hand_ignoring_padding() -> None:
    loss = HiddenMSE()
    assert loss.prepare(geo(layers=4, hidden=2), geo(layers=2, hidden=2), "pretrain") is None  # same width
    batch = LossBatch(torch.tensor([[-100, -100]]), MASK, "pretrain")
    s, t = states(S_HIDDEN), states(T_HIDDEN)
    value = loss.compute(ModelOutputs(hidden_states=s), ModelOutputs(hidden_states=t), batch)
    # uniform: student layer 1 ↔ teacher 2, 2 ↔ 4; only token 0 counts; mean over width 2, then pairs
    layer1 = ((1.0 - 2.0) ** 2 + (2.0 - 0.0) ** 2) / 2
    layer2 = ((0.5 - 1.5) ** 2 + (-1.0 - 1.0) ** 2) / 2
    assert value.item() == pytest.approx((layer1 + layer2) / 2, abs=1e-12)
    value.backward()
    assert s[1].grad is not None and s[1].grad[0, 1].abs().sum() == 0  # padding gets no gradient
    assert all(layer.grad is None for layer in t)


def test_hidden_mse_explicit_mapping_with_embeddings() -> None:
    loss = HiddenMSE(HiddenMSE.Params(mapping="0:0;2:3"))
    batch = LossBatch(torch.tensor([[0, 0]]), torch.tensor([[1, 1]]), "finetune")
    value = loss.compute(
        ModelOutputs(hidden_states=states(S_HIDDEN)), ModelOutputs(hidden_states=states(T_HIDDEN)), batch
    )
    embeddings = (0 + 0 + 25 + 25) / 4
    layer2 = ((0.5 - 8) ** 2 + (-1 - 8) ** 2 + (3 - 8) ** 2 + (3 - 8) ** 2) / 4
    assert value.item() == pytest.approx((embeddings + layer2) / 2, abs=1e-12)
    with pytest.raises(IncompatiblePluginsError, match="teacher layer 3"):
        loss.prepare(geo(layers=2), geo(layers=2), "finetune")


def test_hidden_mse_learns_a_projection_across_widths() -> None:
    loss = HiddenMSE(HiddenMSE.Params(mapping="last"))
    projection = loss.prepare(geo(hidden=3, layers=1), geo(hidden=2, layers=1), "pretrain")
    assert isinstance(projection, torch.nn.Linear) and (projection.in_features, projection.out_features) == (
        2,
        3,
    )
    projection.double()
    with torch.no_grad():
        projection.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        projection.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
    s = states([[[[0.0, 0.0]]], [[[1.0, 2.0]]]])
    t = states([[[[0.0, 0.0, 0.0]]], [[[0.0, 2.0, 2.0]]]])
    batch = LossBatch(torch.tensor([[-100]]), torch.tensor([[1]]), "pretrain")
    value = loss.compute(ModelOutputs(hidden_states=s), ModelOutputs(hidden_states=t), batch)
    # projected student: [1, 2, 1 + 2 + 1] = [1, 2, 4]; against [0, 2, 2]
    assert value.item() == pytest.approx((1 + 0 + 4) / 3, abs=1e-12)
    value.backward()
    assert projection.weight.grad is not None and projection.weight.grad.abs().sum() > 0
    assert s[1].grad is not None and t[1].grad is None


# ------------------------------------------------------------ attention maps
def test_attention_kl_by_hand_over_real_queries() -> None:
    teacher = [[[[0.5, 0.5], [0.25, 0.75]]]]  # [batch 1, head 1, query 2, key 2]
    student = [[[[0.8, 0.2], [0.5, 0.5]]]]
    loss = AttentionLoss()
    s, t = (tensor(student),), (tensor(teacher),)
    both = loss.compute(
        ModelOutputs(attentions=s),
        ModelOutputs(attentions=t),
        LossBatch(torch.tensor([[0, 0]]), torch.tensor([[1, 1]]), "finetune"),
    )
    rows = [kl([0.5, 0.5], [0.8, 0.2]), kl([0.25, 0.75], [0.5, 0.5])]
    assert both.item() == pytest.approx(mean(rows), abs=1e-12)
    first = loss.compute(
        ModelOutputs(attentions=s),
        ModelOutputs(attentions=t),
        LossBatch(torch.tensor([[0, 0]]), torch.tensor([[1, 0]]), "finetune"),
    )
    assert first.item() == pytest.approx(rows[0], abs=1e-12)
    first.backward()
    assert s[0].grad is not None and t[0].grad is None


def test_attention_heads_each_or_average() -> None:
    with pytest.raises(IncompatiblePluginsError, match="heads=average"):
        AttentionLoss().prepare(geo(heads=4), geo(heads=2), "pretrain")
    loss = AttentionLoss(AttentionLoss.Params(heads="average"))
    assert loss.prepare(geo(heads=4), geo(heads=2), "pretrain") is None
    teacher = [[[[1.0, 0.0]], [[0.5, 0.5]]]]  # 2 heads, 1 query → head average [0.75, 0.25]
    student = [[[[0.6, 0.4]]]]  # 1 head
    value = loss.compute(
        ModelOutputs(attentions=(tensor(student),)),
        ModelOutputs(attentions=(tensor(teacher),)),
        LossBatch(torch.tensor([[0]]), torch.tensor([[1]]), "finetune"),
    )
    assert value.item() == pytest.approx(kl([0.75, 0.25], [0.6, 0.4]), abs=1e-12)


def test_attention_rejects_maps_over_different_tokens() -> None:
    with pytest.raises(IncompatiblePluginsError, match="same token ids"):
        AttentionLoss().compute(
            ModelOutputs(attentions=(tensor([[[[0.5, 0.5], [0.5, 0.5]]]]),)),
            ModelOutputs(attentions=(tensor([[[[1 / 3] * 3] * 3]]),)),
            LossBatch(torch.tensor([[0, 0]]), torch.tensor([[1, 1]]), "finetune"),
        )
    with pytest.raises(IncompatiblePluginsError, match=r"layers 1\.\.2"):
        AttentionLoss(AttentionLoss.Params(mapping="0:0")).prepare(geo(), geo(), "pretrain")


# ------------------------------------------------------------------ cosine
def test_cosine_by_hand_and_width_check() -> None:
    s = states([[[[0.0, 0.0], [0.0, 0.0]]], [[[1.0, 0.0], [0.0, 3.0]]]])
    t = states([[[[0.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [-2.0, 0.0]]]])
    value = HiddenCosine().compute(
        ModelOutputs(hidden_states=s),
        ModelOutputs(hidden_states=t),
        LossBatch(torch.tensor([0]), torch.tensor([[1, 1]]), "finetune"),
    )
    assert value.item() == pytest.approx(((1 - 1 / math.sqrt(2)) + (1 - 0.0)) / 2, abs=1e-12)
    masked = HiddenCosine().compute(
        ModelOutputs(hidden_states=s),
        ModelOutputs(hidden_states=t),
        LossBatch(torch.tensor([0]), torch.tensor([[1, 0]]), "finetune"),
    )
    assert masked.item() == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-12)
    masked.backward()
    assert s[1].grad is not None and t[1].grad is None
    with pytest.raises(IncompatiblePluginsError, match="'hidden'"):
        HiddenCosine().prepare(geo(hidden=8), geo(hidden=4), "finetune")


# ------------------------------------------------------------------ contract
def test_each_loss_declares_what_it_reads() -> None:
    declared = {
        "ce": ({"logits"}, False),
        "kl": ({"logits"}, True),
        "mse": ({"logits"}, True),
        "hidden": ({"hidden_states"}, True),
        "attention": ({"attentions"}, True),
        "cosine": ({"hidden_states"}, True),
        "minilm": ({"queries", "keys", "values"}, True),
    }
    for name, (needs, uses_teacher) in declared.items():
        cls = registry().entry("loss", name).load()
        assert set(cls.needs) == needs and cls.uses_teacher is uses_teacher, name
        assert cls.__doc__ and ("20" in cls.__doc__ or name == "ce"), (
            f"{name} docstring should cite its paper"
        )


def test_loss_modules_do_not_import_torch() -> None:
    code = (
        "import sys, kdreg_plugins.losses.logits, kdreg_plugins.losses.representations;"
        "import kdreg_plugins.losses.relations;"
        "import kdreg.pipeline.combine;"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
