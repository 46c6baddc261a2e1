"""Resolving a grid's plugin specifications through the registry (the public door), once per process.

A loss may be a weighted combination (``kl+0.5*hidden``); it resolves to one
:class:`ResolvedLoss` whose identity lists every term, so the canonical config of a
run records each component's parameters and version.

:class:`PluginSet` is what a grid (and a worker executing its tasks) sees of the
plugins: specifications resolved through the registry and instances created and
``check()``-ed once. A grid names the same teacher, student, benchmark and corpus in
many combinations; one instance each means a benchmark reads and validates its files
once per process, not once per run. Losses are the exception: they are created fresh
for every training phase, because ``prepare()`` gives them per-phase state (a learned
projection).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from kdreg.plugins.params import _format, parse_loss_combination
from kdreg.plugins.registry import Registry, ResolvedPlugin, registry


@dataclass(frozen=True)
class ResolvedLoss:
    """One loss or a weighted sum of losses, validated, not yet instantiated."""

    terms: tuple[tuple[float, ResolvedPlugin], ...]

    @cached_property
    def name(self) -> str:
        """The filterable name: ``kl``, or ``kl+hidden`` for a combination."""
        return "+".join(plugin.name for _, plugin in self.terms)

    @cached_property
    def spec(self) -> str:
        """Canonical text: parameters that differ from defaults, weights other than 1."""
        return "+".join(
            (f"{_format(w)}*" if w != 1 else "") + plugin.spec for w, plugin in self.terms
        )

    def identity(self) -> dict[str, Any]:
        if len(self.terms) == 1 and self.terms[0][0] == 1:
            return self.terms[0][1].identity()
        return {"combination": [{"weight": w, **plugin.identity()} for w, plugin in self.terms]}

    def create(self) -> Any:
        """Instantiate the loss (a CombinedLoss for several terms)."""
        if len(self.terms) == 1 and self.terms[0][0] == 1:
            return self.terms[0][1].create()
        from kdreg.pipeline.combine import CombinedLoss

        return CombinedLoss.from_terms([(w, plugin.create()) for w, plugin in self.terms])


def resolve_loss(registry: Registry, text: str) -> ResolvedLoss:
    """Parse and validate ``kl:temperature=4+0.5*hidden`` against the installed loss plugins."""
    terms = parse_loss_combination(text)
    return ResolvedLoss(tuple((term.weight, registry.resolve("loss", term.spec)) for term in terms))


HARD_LABEL_LOSS = "ce"
"""The loss of hard-label fine-tuning (stages none and pretrain, and the teacher): a plugin like any other."""


class PluginSet:
    """The plugins of one process: resolved through the registry, instantiated and checked once each."""

    def __init__(self, plugin_registry: Registry | None = None) -> None:
        self.registry = plugin_registry if plugin_registry is not None else registry()
        self._resolved: dict[tuple[str, str], ResolvedPlugin] = {}
        self._losses: dict[str, ResolvedLoss] = {}
        self._made: dict[tuple[str, str], Any] = {}
        self._checked: set[tuple[str, str]] = set()

    def resolve(self, kind: str, text: str) -> ResolvedPlugin:
        """``name:key=value`` of ``kind``, validated against the plugin's parameters."""
        key = (kind, text)
        if key not in self._resolved:
            self._resolved[key] = self.registry.resolve(kind, text)
        return self._resolved[key]

    def resolve_loss(self, text: str) -> ResolvedLoss:
        """A loss or a weighted combination of losses."""
        if text not in self._losses:
            self._losses[text] = resolve_loss(self.registry, text)
        return self._losses[text]

    def hard_label_loss(self) -> ResolvedLoss:
        """The hard-label loss of the fine-tuning phases that use no teacher (resolved like every plugin)."""
        return self.resolve_loss(HARD_LABEL_LOSS)

    def instance(self, plugin: ResolvedPlugin) -> Any:
        """The plugin's instance in this process (created once)."""
        key = (plugin.entry.kind, plugin.spec)
        if key not in self._made:
            self._made[key] = plugin.create()
        return self._made[key]

    def checked(self, plugin: ResolvedPlugin) -> Any:
        """The instance, after its ``check()`` has passed (run once per process)."""
        instance = self.instance(plugin)
        key = (plugin.entry.kind, plugin.spec)
        if key not in self._checked:
            check = getattr(instance, "check", None)
            if callable(check):
                check()
            self._checked.add(key)
        return instance
