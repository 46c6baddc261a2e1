"""``name:key=value`` specifications: parsing, validation against Params, canonical form."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from kdreg.errors import ParameterError
from kdreg.plugins.params import (
    PluginSpec,
    WeightedSpec,
    build_params,
    canonical_spec,
    params_to_dict,
    parse_loss_combination,
    parse_spec,
)


@dataclass(frozen=True)
class KLParams:
    temperature: float = 1.0
    alpha: float = 0.5


@dataclass(frozen=True)
class Everything:
    layers: int = 2
    scale: float = 1.0
    normalize: bool = False
    label: str = "x"
    path: Path | None = None
    mode: Literal["mean", "sum"] = "mean"
    limit: Optional[int] = None  # noqa: UP045 - the typing spelling must work too
    choice: Literal[1, 2, 4] = 1


@dataclass(frozen=True)
class NeedsPath:
    path: Path
    seed: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)


def kl(text: str) -> KLParams:
    spec = parse_spec(text)
    return build_params(spec.name, KLParams, spec.raw)


# ------------------------------------------------------------------ parsing
def test_parse_name_and_pairs_keeps_order_and_strips_spaces() -> None:
    spec = parse_spec(" kl: temperature = 4 , alpha=0.5 ")
    assert spec == PluginSpec("kl", (("temperature", "4"), ("alpha", "0.5")))
    assert str(spec) == "kl:temperature=4,alpha=0.5"
    assert parse_spec("bert-large") == PluginSpec("bert-large", ())
    assert parse_spec("hf:path=/models/a=b") == PluginSpec("hf", (("path", "/models/a=b"),))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("kl:", "Nothing after ':'"),
        ("kl:temperature", "Malformed parameter 'temperature'"),
        ("kl:=3", "Malformed parameter '=3'"),
        ("kl:temperature=4,", "Malformed parameter ''"),
        ("bad name!", "Malformed plugin name 'bad name!'"),
        (":temperature=4", "Malformed plugin name ''"),
        ("", "Empty plugin name"),
        ("kl:temperature=4,temperature=5", "Parameter 'temperature' given twice"),
        ("kl:1x=3", "Malformed parameter '1x=3'"),
    ],
)
def test_malformed_specs_are_one_line_parameter_errors(text: str, needle: str) -> None:
    with pytest.raises(ParameterError) as info:
        parse_spec(text)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


# ------------------------------------------------------------------ types
def test_every_supported_type_is_parsed() -> None:
    raw = (
        ("layers", "3"),
        ("scale", "2.5e-1"),
        ("normalize", "yes"),
        ("label", "hello world"),
        ("path", "~/data"),
        ("mode", "sum"),
        ("limit", "7"),
        ("choice", "4"),
    )
    params = build_params("p", Everything, raw)
    assert params == Everything(
        layers=3,
        scale=0.25,
        normalize=True,
        label="hello world",
        path=Path("~/data").expanduser(),
        mode="sum",
        limit=7,
        choice=4,
    )
    assert isinstance(params.choice, int)
    assert build_params("p", Everything, (("limit", "none"), ("path", "null"))).limit is None
    for text, expected in [("true", True), ("0", False), ("OFF", False), ("On", True)]:
        assert build_params("p", Everything, (("normalize", text),)).normalize is expected


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("layers", "2.5", "must be int, got '2.5'"),
        ("scale", "fast", "must be float, got 'fast'"),
        ("scale", "nan", "must be float, got 'nan'"),
        ("scale", "inf", "must be float, got 'inf'"),
        ("scale", "1e999", "must be float, got '1e999'"),
        ("normalize", "maybe", "must be bool, got 'maybe'"),
        ("mode", "max", "must be 'mean' | 'sum', got 'max'"),
        ("limit", "many", "must be int | None, got 'many'"),
        ("choice", "3", "must be 1 | 2 | 4, got '3'"),
    ],
)
def test_wrong_type_names_the_plugin_key_and_type(key: str, value: str, expected: str) -> None:
    with pytest.raises(ParameterError) as info:
        build_params("demo", Everything, ((key, value),))
    assert str(info.value) == f"Parameter demo:{key} {expected}."


def test_unknown_key_lists_the_known_keys() -> None:
    with pytest.raises(ParameterError) as info:
        kl("kl:temprature=4")
    message = str(info.value)
    assert "no parameter 'temprature'" in message
    assert "(its parameters: alpha, temperature)" in message
    assert "kdreg plugins show kl" in message


def test_required_fields_must_be_given() -> None:
    with pytest.raises(ParameterError) as info:
        build_params("files", NeedsPath, (("seed", "1"),))
    assert str(info.value) == "Plugin 'files' needs path; write files:path=<value>."
    params = build_params("files", NeedsPath, (("path", "/tmp/x"),))
    assert params == NeedsPath(path=Path("/tmp/x"), seed=0, tags=())


def test_post_init_checks_of_the_plugin_become_parameter_errors() -> None:
    @dataclass(frozen=True)
    class Positive:
        temperature: float = 1.0

        def __post_init__(self) -> None:
            if self.temperature <= 0:
                raise ValueError("temperature must be > 0")

    with pytest.raises(ParameterError, match="Invalid parameters for 'kl': temperature must be > 0"):
        build_params("kl", Positive, (("temperature", "-1"),))


def test_unresolvable_annotation_is_a_parameter_error() -> None:
    @dataclass(frozen=True)
    class Broken:
        size: NotImportedAnywhere = 1  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(ParameterError, match="Cannot read the parameter types of"):
        build_params("broken", Broken, ())


# ------------------------------------------------------------------ canonical form
def test_canonical_spec_sorts_and_drops_defaults() -> None:
    defaults = KLParams()
    a = canonical_spec("kl", kl("kl:temperature=4.0,alpha=.5"), defaults)
    b = canonical_spec("kl", kl("kl:alpha=0.5,temperature=4"), defaults)
    assert a == b == "kl:temperature=4"
    assert canonical_spec("kl", kl("kl:alpha=0.25,temperature=4"), defaults) == "kl:alpha=0.25,temperature=4"
    assert canonical_spec("kl", kl("kl"), defaults) == "kl"
    assert canonical_spec("kl", kl("kl:temperature=1"), defaults) == "kl"
    # without an explicit defaults object, each field's own default is used
    assert canonical_spec("kl", kl("kl:alpha=0.5"), None) == "kl"
    assert canonical_spec("kl", kl("kl:alpha=0.25"), None) == "kl:alpha=0.25"


def test_canonical_spec_keeps_required_and_drops_defaulted_fields() -> None:
    @dataclass(frozen=True)
    class WithRequired:
        path: str
        revision: str | None = None
        trust: bool = False

    params = build_params("hf", WithRequired, (("path", "/m/x"),))
    assert canonical_spec("hf", params) == "hf:path=/m/x"
    params = build_params("hf", WithRequired, (("path", "/m/x"), ("trust", "true")))
    assert canonical_spec("hf", params) == "hf:path=/m/x,trust=True"


def test_canonical_spec_parses_back_to_the_same_params() -> None:
    params = build_params(
        "p",
        Everything,
        (("scale", "1e-5"), ("normalize", "1"), ("path", "/data/x"), ("mode", "sum"), ("limit", "3")),
    )
    text = canonical_spec("p", params, Everything())
    assert text == "p:limit=3,mode=sum,normalize=True,path=/data/x,scale=1e-05"
    again = parse_spec(text)
    assert build_params("p", Everything, again.raw) == params
    assert params_to_dict(params)["path"] == "/data/x"


# ------------------------------------------------------------------ loss combinations
def test_loss_combination_with_weights_and_parameters() -> None:
    terms = parse_loss_combination("kl+0.5*hidden:layers=2")
    assert terms == [
        WeightedSpec(1.0, PluginSpec("kl", ())),
        WeightedSpec(0.5, PluginSpec("hidden", (("layers", "2"),))),
    ]
    assert [t.weight for t in parse_loss_combination(" 2 * kl:temperature=4 + .25*mse")] == [2.0, 0.25]
    assert parse_loss_combination("mse+cosine")[0].spec.name == "mse"


def test_plus_inside_an_exponent_does_not_split_terms() -> None:
    terms = parse_loss_combination("kl:temperature=1e+1+1e+0*mse")
    assert terms == [
        WeightedSpec(1.0, PluginSpec("kl", (("temperature", "1e+1"),))),
        WeightedSpec(1.0, PluginSpec("mse", ())),
    ]


@pytest.mark.parametrize(("text", "needle"), [("kl+", "Empty term"), ("+kl", "Empty term"),
                                              ("0.5*", "Empty plugin name"),
                                              ("kl+hidden:", "Nothing after ':'"),
                                              ("-1*kl", "Loss weight '-1' in '-1\\*kl' must be a positive"),
                                              ("kl+nan*mse", "Loss weight 'nan'"),
                                              ("0*kl", "Loss weight '0'"),
                                              ("1e999*kl", "Loss weight '1e999'")])
def test_malformed_loss_combinations(text: str, needle: str) -> None:
    with pytest.raises(ParameterError, match=needle):
        parse_loss_combination(text)
