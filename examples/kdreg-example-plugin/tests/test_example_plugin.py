"""The example plugins conform to kdreg's contract, and the loss computes what it says."""

from __future__ import annotations

import math

import pytest
from kdreg_example_plugin.benchmarks import ToyTopics
from kdreg_example_plugin.losses import JensenShannonKD, jensen_shannon

from kdreg.errors import IncompatiblePluginsError, ParameterError
from kdreg.plugins.spec import LossBatch, ModelGeometry, ModelOutputs
from kdreg.testing import assert_plugin_conforms


def test_loss_conforms() -> None:
    assert_plugin_conforms("loss", JensenShannonKD)
    assert_plugin_conforms("loss", JensenShannonKD, "temperature=4")


def test_benchmark_conforms() -> None:
    assert_plugin_conforms("benchmark", ToyTopics)
    assert_plugin_conforms("benchmark", ToyTopics, "languages=fr")


def test_installed_entry_points_conform() -> None:
    """Needs the package installed: kdreg finds both plugins through their entry points."""
    from kdreg.plugins.registry import registry

    assert registry().entry("loss", "example-jsd").load() is JensenShannonKD
    assert registry().entry("benchmark", "example-topics").load() is ToyTopics
    assert_plugin_conforms("loss", "example-jsd")
    assert_plugin_conforms("benchmark", "example-topics:languages=de")


def test_jensen_shannon_is_symmetric_bounded_and_zero_on_agreement() -> None:
    import torch

    a, b = torch.randn(5, 7), 3 * torch.randn(5, 7)
    assert torch.allclose(jensen_shannon(a, b, 1.0), jensen_shannon(b, a, 1.0), atol=1e-6)
    assert torch.allclose(jensen_shannon(a, a, 2.0), torch.zeros(5), atol=1e-6)
    far = jensen_shannon(torch.tensor([[100.0, 0.0]]), torch.tensor([[0.0, 100.0]]), 1.0)
    assert math.isclose(float(far), math.log(2), rel_tol=1e-4)  # disjoint distributions reach ln 2


def test_jensen_shannon_matches_the_definition() -> None:
    import torch

    s, t = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.0, 2.0, 0.5]])
    q, p = s.softmax(-1)[0].tolist(), t.softmax(-1)[0].tolist()
    m = [(x + y) / 2 for x, y in zip(p, q, strict=True)]
    expected = 0.5 * sum(x * math.log(x / z) for x, z in zip(p, m, strict=True)) + 0.5 * sum(
        y * math.log(y / z) for y, z in zip(q, m, strict=True)
    )
    assert math.isclose(float(jensen_shannon(s, t, 1.0)), expected, rel_tol=1e-5)


def test_loss_scales_by_t_squared_and_ignores_padding_in_pretraining() -> None:
    import torch

    loss = JensenShannonKD(JensenShannonKD.Params(temperature=2.0))
    s, t = torch.randn(2, 4, 9), torch.randn(2, 4, 9)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    value = loss.compute(
        ModelOutputs(logits=s), ModelOutputs(logits=t), LossBatch(mask * 0, mask, "pretrain")
    )
    per_token = jensen_shannon(s, t, 2.0)
    assert math.isclose(float(value), 4 * float(per_token[mask.bool()].mean()), rel_tol=1e-5)


def test_loss_rejects_bad_parameters_and_different_vocabularies() -> None:
    with pytest.raises(ValueError):
        JensenShannonKD.Params(temperature=0)
    loss = JensenShannonKD()
    with pytest.raises(IncompatiblePluginsError):
        loss.prepare(ModelGeometry(100, 8, 2, 2), ModelGeometry(50, 8, 1, 2), "pretrain")
    assert loss.prepare(ModelGeometry(100, 8, 2, 2), ModelGeometry(50, 8, 1, 2), "finetune") is None


def test_benchmark_data_and_language_subsets() -> None:
    bench = ToyTopics()
    assert list(bench.languages()) == ["en", "de", "fr"]
    assert len(bench.examples("en", "train")) == 24
    assert [len(bench.examples(lang, "test")) for lang in bench.languages()] == [6, 6, 6]
    assert bench.examples("de", "train") == ()
    # the translations keep the labels: row i is the same sentence in every language
    assert [e.label for e in bench.examples("de", "test")] == [e.label for e in bench.examples("en", "test")]
    assert list(ToyTopics(ToyTopics.Params(languages="fr")).languages()) == ["en", "fr"]
    with pytest.raises(ParameterError):
        ToyTopics(ToyTopics.Params(languages="xx"))
