"""The registry against fake distributions: real ``importlib.metadata`` objects, real modules.

The distributions are :class:`importlib.metadata.Distribution` subclasses serving their
METADATA and entry_points.txt from memory; the plugin modules are real files imported
from a temporary folder. Only the *list of installed distributions* is substituted.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest

from kdreg.errors import ContractError, DuplicatePluginError, PluginLoadError, UnknownPluginError
from kdreg.plugins import registry as registry_module
from kdreg.plugins.registry import Registry, contract_problems

ModuleFactory = Callable[[str], str]
Installer = Callable[..., None]

GOOD_MODULE = '''
from dataclasses import dataclass, field
from kdreg.plugins.spec import Loss, Teacher

class SoftKL(Loss):
    """Soft-target KL (Hinton et al. 2015).

    More text that is not the summary.
    """

    @dataclass(frozen=True)
    class Params:
        temperature: float = field(default=1.0, metadata={"help": "softmax temperature"})
        alpha: float = 0.5

    def compute(self, student, teacher, batch):
        return 0.0

class MSE(Loss):
    summary = "Mean squared error between logits."

    def compute(self, student, teacher, batch):
        return 0.0

class Needy(Loss):
    @dataclass(frozen=True)
    class Params:
        path: str

    def compute(self, student, teacher, batch):
        return 0.0

class Plain:
    """A loss that does not subclass Loss but has every member."""
    needs = frozenset({"hidden_states"})
    def compute(self, student, teacher, batch):
        return 1.0

class NoCompute:
    """Forgot compute."""
    needs = frozenset({"logits"})

class Unimplemented(Loss):
    """Subclasses Loss but does not implement compute."""

class BadNeeds(Loss):
    needs = frozenset({"logits", "gradients"})
    def compute(self, student, teacher, batch):
        return 0.0

class NotDataclassParams(Loss):
    class Params:
        temperature = 1.0
    def compute(self, student, teacher, batch):
        return 0.0

def not_a_class():
    return None

class Tiny(Teacher):
    """A teacher."""
    def load(self, head):
        raise NotImplementedError
'''


class FakeDistribution(metadata.Distribution):
    """An installed distribution as importlib.metadata sees one, served from memory."""

    def __init__(self, name: str, version: str, entry_points: dict[str, dict[str, str]]) -> None:
        self._name, self._version = name, version
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{ep} = {value}" for ep, value in eps.items()]
        self._entry_points_txt = "\n".join(lines) + "\n"

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            return f"Metadata-Version: 2.1\nName: {self._name}\nVersion: {self._version}\n"
        if filename == "entry_points.txt":
            return self._entry_points_txt
        return None

    def locate_file(self, path: str | Path) -> Path:  # pragma: no cover - not used by the registry
        return Path(path)


@pytest.fixture
def module_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleFactory]:
    """Write a real module with a unique name into a folder on sys.path; return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(source: str) -> str:
        name = f"fake_kdreg_plugin_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Installer]:
    """Replace the installed distributions that the registry sees with fake ones."""

    def install(*dists: FakeDistribution) -> None:
        def entry_points(**params: str) -> metadata.EntryPoints:
            found = [ep for dist in dists for ep in dist.entry_points]
            return metadata.EntryPoints(found).select(**params)

        monkeypatch.setattr(registry_module.metadata, "entry_points", entry_points)
        registry_module.registry.cache_clear()

    yield install
    registry_module.registry.cache_clear()


def test_names_come_from_metadata_without_importing(
    module_factory: ModuleFactory, installed: Installer
) -> None:
    mod = module_factory(GOOD_MODULE)
    installed(
        FakeDistribution(
            "kdreg-extra",
            "1.2.3",
            {"kdreg.losses": {"soft-kl": f"{mod}:SoftKL"}, "kdreg.teachers": {"tiny": f"{mod}:Tiny"}},
        )
    )
    reg = Registry()
    entries = reg.entries()
    assert [(e.kind, e.name, e.distribution, e.version) for e in entries] == [
        ("teacher", "tiny", "kdreg-extra", "1.2.3"),
        ("loss", "soft-kl", "kdreg-extra", "1.2.3"),
    ]
    assert all(e.status == "not loaded" for e in entries)
    assert mod not in sys.modules  # listing imported nothing
    assert reg.entries("loss")[0].summary() == ""

    cls = reg.entry("loss", "soft-kl").load()
    assert cls.__name__ == "SoftKL"
    assert mod in sys.modules
    entry = reg.entry("loss", "soft-kl")
    assert entry.status == "ok"
    assert entry.summary() == "Soft-target KL (Hinton et al. 2015)."


def test_resolve_validates_parameters_and_creates_the_plugin(
    module_factory: ModuleFactory, installed: Installer
) -> None:
    mod = module_factory(GOOD_MODULE)
    installed(
        FakeDistribution(
            "kdreg-extra",
            "1.2.3",
            {"kdreg.losses": {"soft-kl": f"{mod}:SoftKL", "mse": f"{mod}:MSE", "needy": f"{mod}:Needy"}},
        )
    )
    reg = Registry()
    resolved = reg.resolve("loss", "soft-kl:temperature=4.0,alpha=.5")
    assert resolved.name == "soft-kl"
    assert resolved.spec == "soft-kl:temperature=4"
    assert reg.resolve("loss", "soft-kl:alpha=0.5,temperature=4").spec == resolved.spec
    plugin = resolved.create()
    assert plugin.params.temperature == 4.0 and plugin.params.alpha == 0.5
    assert resolved.identity() == {
        "name": "soft-kl",
        "params": {"temperature": 4.0, "alpha": 0.5},
        "distribution": "kdreg-extra",
        "version": "1.2.3",
    }
    assert reg.entry("loss", "mse").load().summary == "Mean squared error between logits."
    assert reg.resolve("loss", "mse").spec == "mse"
    assert reg.resolve("loss", "needy:path=/x").spec == "needy:path=/x"  # required field: no defaults


def test_import_failure_is_recorded_and_isolated(
    module_factory: ModuleFactory, installed: Installer
) -> None:
    good = module_factory(GOOD_MODULE)
    bad = module_factory("raise RuntimeError('cannot find libfoo.so\\nsecond line')\n")
    exits = module_factory("import sys\nsys.exit('plugin gave up')\n")
    installed(
        FakeDistribution("kdreg-good", "1.0", {"kdreg.losses": {"mse": f"{good}:MSE"}}),
        FakeDistribution("kdreg-bad", "0.3", {"kdreg.losses": {"bad": f"{bad}:Bad", "exits": f"{exits}:X"}}),
    )
    reg = Registry()
    entries = {e.name: e for e in reg.load_all()}  # records, never raises outside strict mode
    assert entries["mse"].status == "ok"
    broken = entries["bad"]
    assert (broken.status, broken.distribution, broken.version) == ("broken", "kdreg-bad", "0.3")
    assert broken.error == "RuntimeError: cannot find libfoo.so"
    assert "Traceback" in (broken.error_traceback or "")
    assert entries["exits"].status == "broken"
    assert entries["exits"].error == "SystemExit: plugin gave up"

    with pytest.raises(PluginLoadError) as info:
        reg.resolve("loss", "bad")
    message = str(info.value)
    assert "\n" not in message
    assert "loss plugin 'bad' from kdreg-bad 0.3 is broken: RuntimeError: cannot find libfoo.so" in message
    assert reg.resolve("loss", "mse").spec == "mse"  # the others keep working


def test_strict_mode_turns_failures_into_errors(
    module_factory: ModuleFactory, installed: Installer, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = module_factory("raise ImportError('no torch here')\n")
    installed(FakeDistribution("kdreg-bad", "0.3", {"kdreg.losses": {"bad": f"{bad}:Bad"}}))
    monkeypatch.setenv("KDREG_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="no torch here"):
        Registry().load_all()


def test_plugin_output_at_import_goes_to_stderr(
    module_factory: ModuleFactory, installed: Installer, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy = module_factory(GOOD_MODULE + "\nprint('hello from a plugin')\n")
    installed(FakeDistribution("kdreg-noisy", "1.0", {"kdreg.losses": {"mse": f"{noisy}:MSE"}}))
    Registry().entry("loss", "mse").load()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "hello from a plugin" in captured.err


def test_duplicate_names_error_naming_both_distributions(
    module_factory: ModuleFactory, installed: Installer, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = module_factory(GOOD_MODULE)
    installed(
        FakeDistribution("kdreg-a", "1.0", {"kdreg.losses": {"kl": f"{mod}:SoftKL", "mse": f"{mod}:MSE"}}),
        FakeDistribution("kdreg-b", "2.0", {"kdreg.losses": {"kl": f"{mod}:MSE"}}),
        # the same distribution found twice on sys.path is not a duplicate
        FakeDistribution("kdreg_a", "1.0", {"kdreg.losses": {"kl": f"{mod}:SoftKL"}}),
        # same name, other kind: no conflict
        FakeDistribution("kdreg-c", "1.0", {"kdreg.teachers": {"kl": f"{mod}:Tiny"}}),
    )
    reg = Registry()
    assert len(reg.duplicates) == 1
    with pytest.raises(DuplicatePluginError) as info:
        reg.resolve("loss", "kl")
    message = str(info.value)
    assert "kdreg-a 1.0" in message and "kdreg-b 2.0" in message
    assert "KDREG_PLUGINS_ALLOW" in message
    with pytest.raises(DuplicatePluginError):
        reg.entry("loss", "kl")
    listed = {e.name: e for e in reg.load_all() if e.kind == "loss"}
    assert listed["kl"].status == "duplicate"
    assert listed["mse"].status == "ok"
    assert reg.entry("teacher", "kl").load().__name__ == "Tiny"

    monkeypatch.setenv("KDREG_STRICT_PLUGINS", "1")
    registry_module.registry.cache_clear()
    with pytest.raises(DuplicatePluginError, match="kdreg-b"):
        registry_module.registry()


def test_allow_list_limits_the_distributions(
    module_factory: ModuleFactory, installed: Installer, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = module_factory(GOOD_MODULE)
    installed(
        FakeDistribution("Kdreg_A", "1.0", {"kdreg.losses": {"kl": f"{mod}:SoftKL"}}),
        FakeDistribution("kdreg-b", "2.0", {"kdreg.losses": {"kl": f"{mod}:MSE", "mse": f"{mod}:MSE"}}),
    )
    monkeypatch.setenv("KDREG_PLUGINS_ALLOW", " kdreg-a , other ")
    reg = Registry()
    assert [(e.name, e.distribution) for e in reg.entries()] == [("kl", "Kdreg_A")]
    assert reg.duplicates == []  # the other distribution is not even read
    with pytest.raises(UnknownPluginError):
        reg.entry("loss", "mse")


def test_unknown_name_suggests_close_matches_and_the_listing_command(
    module_factory: ModuleFactory, installed: Installer
) -> None:
    mod = module_factory(GOOD_MODULE)
    losses = {"soft-kl": f"{mod}:SoftKL", "mse": f"{mod}:MSE"}
    installed(FakeDistribution("kdreg-a", "1.0", {"kdreg.losses": losses}))
    with pytest.raises(UnknownPluginError) as info:
        Registry().resolve("loss", "soft-kll:temperature=2")
    assert str(info.value) == (
        "No loss plugin named 'soft-kll'. Did you mean 'soft-kl'? `kdreg plugins --kind loss` lists them all."
    )
    with pytest.raises(UnknownPluginError) as info:
        Registry().resolve("teacher", "zzz")
    assert str(info.value) == "No teacher plugin named 'zzz'. `kdreg plugins --kind teacher` lists them all."


@pytest.mark.parametrize(
    ("attr", "problem"),
    [
        ("NoCompute", "missing member 'compute'"),
        ("Unimplemented", "member 'compute' is not implemented"),
        ("BadNeeds", "member 'needs' names unknown outputs ['gradients']"),
        ("NotDataclassParams", "member 'Params' must be a dataclass"),
        ("not_a_class", "entry point must name a class, got function"),
    ],
)
def test_contract_violations_say_what_is_missing(
    module_factory: ModuleFactory, installed: Installer, attr: str, problem: str
) -> None:
    mod = module_factory(GOOD_MODULE)
    installed(FakeDistribution("kdreg-c", "0.1", {"kdreg.losses": {"odd": f"{mod}:{attr}"}}))
    reg = Registry()
    with pytest.raises(ContractError) as info:
        reg.resolve("loss", "odd")
    message = str(info.value)
    assert problem in message
    assert "loss plugin 'odd' (kdreg-c 0.1)" in message
    assert "kdreg.plugins.spec.Loss" in message
    assert reg.entry("loss", "odd").status == "broken"
    # later uses fail the same way
    with pytest.raises(PluginLoadError, match="does not satisfy the contract"):
        reg.entry("loss", "odd").load()


def test_a_class_with_every_member_needs_no_base_class(module_factory: ModuleFactory) -> None:
    mod = module_factory(GOOD_MODULE)
    module = __import__(mod)
    assert contract_problems("loss", module.Plain) == []
    assert contract_problems("teacher", module.Plain) == ["missing member 'load'"]


def test_heavy_imports_at_module_level_are_flagged(
    module_factory: ModuleFactory, installed: Installer, monkeypatch: pytest.MonkeyPatch
) -> None:
    heavy = module_factory("WEIGHT = 'imagine torch here'\n")
    eager = module_factory(f"import {heavy}\n" + GOOD_MODULE)
    lazy = module_factory(GOOD_MODULE)
    monkeypatch.setattr(registry_module, "HEAVY_MODULES", (heavy,))
    losses = {"eager": f"{eager}:MSE", "lazy": f"{lazy}:MSE"}
    installed(FakeDistribution("kdreg-h", "1.0", {"kdreg.losses": losses}))
    entries = {e.name: e for e in Registry().load_all()}
    assert entries["eager"].heavy_imports == (heavy,)
    assert entries["eager"].status == "ok"  # flagged, not broken
    assert entries["lazy"].heavy_imports == ()
