"""The built-in `minilm` loss against values computed by hand with plain ``math`` (as test_losses.py).

Projections are small fixed tensors [batch, heads, tokens, head_dim] in float64; each
expected value is written out from the formulas in ``MiniLM``'s docstring: relation rows
softmax(x·y / √d) over the real tokens, KL(teacher row ‖ student row), averaged over
heads and real tokens.
"""

from __future__ import annotations

import math

import pytest
import torch

from kdreg.errors import IncompatiblePluginsError, KdregError
from kdreg.plugins.registry import registry
from kdreg.plugins.spec import LossBatch, ModelGeometry, ModelOutputs
from kdreg_plugins.losses.relations import MiniLM


def softmax(row: list[float]) -> list[float]:
    exps = [math.exp(x) for x in row]
    return [e / sum(exps) for e in exps]


def kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def relation(x: list[list[float]], y: list[list[float]]) -> list[list[float]]:
    """softmax(x_t · y_j / √d) for every token t (rows), d the vectors' size."""
    scale = math.sqrt(len(x[0]))
    return [softmax([dot(xt, yj) / scale for yj in y]) for xt in x]


def mean_kl(teacher: list[list[float]], student: list[list[float]]) -> float:
    return sum(kl(p, q) for p, q in zip(teacher, student, strict=True)) / len(teacher)


def heads(tokens_by_head: list[list[list[float]]], grad: bool = True) -> torch.Tensor:
    """[heads][tokens][d] → a [1, heads, tokens, d] float64 tensor."""
    return torch.tensor([tokens_by_head], dtype=torch.float64, requires_grad=grad)


def outputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> ModelOutputs:
    return ModelOutputs(queries=(q,), keys=(k,), values=(v,))


def batch(mask: list[int]) -> LossBatch:
    return LossBatch(torch.zeros(1, dtype=torch.long), torch.tensor([mask]), "finetune")


def geo(hidden: int = 4, heads: int = 2, layers: int = 2) -> ModelGeometry:
    return ModelGeometry(vocab_size=10, hidden_size=hidden, num_layers=layers, num_heads=heads)


# One head each; the student's head is 1 wide, the teacher's 2 (v1 needs equal head counts only).
S = {"q": [[1.0], [0.0]], "k": [[0.0], [2.0]], "v": [[1.0], [-1.0]]}
T = {"q": [[1.0, 0.0], [0.0, 1.0]], "k": [[1.0, 1.0], [0.0, 2.0]], "v": [[1.0, 0.0], [0.0, 1.0]]}


def test_v1_attention_and_value_relation_by_hand() -> None:
    student = outputs(heads([S["q"]]), heads([S["k"]]), heads([S["v"]]))
    teacher = outputs(heads([T["q"]], False), heads([T["k"]], False), heads([T["v"]], False))
    value = MiniLM().compute(student, teacher, batch([1, 1]))
    attention = mean_kl(relation(T["q"], T["k"]), relation(S["q"], S["k"]))
    values = mean_kl(relation(T["v"], T["v"]), relation(S["v"], S["v"]))
    assert value.item() == pytest.approx(attention + values, abs=1e-12)
    value.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (*student.queries, *student.values))
    same = MiniLM().compute(student, student, batch([1, 1]))
    assert same.item() == pytest.approx(0.0, abs=1e-12)


def test_padding_tokens_are_neither_queries_nor_keys() -> None:
    def padded(rows: list[list[float]], junk: float) -> torch.Tensor:
        return heads([[*rows, [junk] * len(rows[0])]])

    student = outputs(padded(S["q"], 5.0), padded(S["k"], -3.0), padded(S["v"], 7.0))
    teacher = outputs(padded(T["q"], 1.0), padded(T["k"], 9.0), padded(T["v"], -4.0))
    value = MiniLM().compute(student, teacher, batch([1, 1, 0]))
    expected = mean_kl(relation(T["q"], T["k"]), relation(S["q"], S["k"])) + mean_kl(
        relation(T["v"], T["v"]), relation(S["v"], S["v"]))
    assert value.item() == pytest.approx(expected, abs=1e-12)


# v2: the teacher has 2 heads of size 1, the student 1 head of size 2: concatenated, both are 2 wide.
S2 = {"q": [[1.0, 0.0], [0.0, 1.0]], "k": [[1.0, 2.0], [0.0, 1.0]], "v": [[0.0, 1.0], [1.0, 1.0]]}
T2 = {"q": [[2.0, 0.0], [1.0, 1.0]], "k": [[0.0, 1.0], [1.0, 0.0]], "v": [[1.0, 1.0], [1.0, -1.0]]}


def column(rows: list[list[float]], index: int) -> list[list[float]]:
    return [[row[index]] for row in rows]


def v2_outputs() -> tuple[ModelOutputs, ModelOutputs]:
    student = outputs(*(heads([S2[x]]) for x in "qkv"))  # 1 head × 2
    teacher = outputs(*(heads([column(T2[x], 0), column(T2[x], 1)], False) for x in "qkv"))  # 2 heads × 1
    return student, teacher


def test_v2_relations_across_head_counts_by_hand() -> None:
    student, teacher = v2_outputs()
    one = MiniLM(MiniLM.Params(version="v2")).compute(student, teacher, batch([1, 1]))  # A_r = student's 1
    expected = sum(mean_kl(relation(T2[x], T2[x]), relation(S2[x], S2[x])) for x in "qkv")
    assert one.item() == pytest.approx(expected, abs=1e-12)
    two = MiniLM(MiniLM.Params(version="v2", relation_heads=2)).compute(student, teacher, batch([1, 1]))
    def head(rows: list[list[float]], a: int) -> list[list[float]]:
        return relation(column(rows, a), column(rows, a))  # relation head a: column a, √1

    expected = sum(mean_kl(head(T2[x], a), head(S2[x], a)) / 2 for x in "qkv" for a in (0, 1))
    assert two.item() == pytest.approx(expected, abs=1e-12)
    two.backward()
    assert student.keys[0].grad is not None and teacher.keys[0].grad is None


def test_teacher_layer_picks_the_layer_distilled() -> None:
    student, teacher = v2_outputs()
    other = outputs(*(heads([[[0.5], [-0.5]], [[2.0], [1.0]]], False) for _ in "qkv"))
    two_layers = ModelOutputs(queries=(*teacher.queries, *other.queries), keys=(*teacher.keys, *other.keys),
                              values=(*teacher.values, *other.values))
    loss = MiniLM(MiniLM.Params(version="v2", teacher_layer=1))
    assert loss.compute(student, two_layers, batch([1, 1])).item() == pytest.approx(
        MiniLM(MiniLM.Params(version="v2")).compute(student, teacher, batch([1, 1])).item(), abs=1e-12)
    last = MiniLM(MiniLM.Params(version="v2")).compute(student, two_layers, batch([1, 1]))
    assert last.item() == pytest.approx(
        MiniLM(MiniLM.Params(version="v2")).compute(student, other, batch([1, 1])).item(), abs=1e-12)


def test_prepare_says_what_fits() -> None:
    with pytest.raises(IncompatiblePluginsError, match="minilm:version=v2"):
        MiniLM().prepare(geo(heads=4), geo(heads=2), "pretrain")
    assert MiniLM(MiniLM.Params(version="v2")).prepare(geo(hidden=8, heads=4), geo(hidden=4, heads=2),
                                                         "pretrain") is None
    with pytest.raises(IncompatiblePluginsError, match="divisor of 2"):  # of gcd(6, 4)
        MiniLM(MiniLM.Params(version="v2", relation_heads=4)).prepare(geo(hidden=6), geo(hidden=4), "stage")
    with pytest.raises(IncompatiblePluginsError, match=r"teacher_layer=1\.\.2"):
        MiniLM(MiniLM.Params(teacher_layer=3)).prepare(geo(), geo(), "finetune")
    with pytest.raises(KdregError, match="relation_heads applies to version=v2"):
        registry().resolve("loss", "minilm:relation_heads=4").create()
    with pytest.raises(IncompatiblePluginsError, match="same token ids"):
        MiniLM().compute(outputs(heads([S["q"]]), heads([S["k"]]), heads([S["v"]])),
                         outputs(*(heads([[[1.0]] * 3], False) for _ in "qkv")), batch([1, 1]))
