"""Resolving a grid's plugin specifications through the registry (the public door).

A loss may be a weighted combination (``kl+0.5*hidden``); it resolves to one
:class:`ResolvedLoss` whose identity lists every term, so the canonical config of a
run records each component's parameters and version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kdreg.plugins.params import _format, parse_loss_combination
from kdreg.plugins.registry import Registry, ResolvedPlugin


@dataclass
class ResolvedLoss:
    """One loss or a weighted sum of losses, validated, not yet instantiated."""

    terms: list[tuple[float, ResolvedPlugin]]

    @property
    def name(self) -> str:
        """The filterable name: ``kl``, or ``kl+hidden`` for a combination."""
        return "+".join(plugin.name for _, plugin in self.terms)

    @property
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
    return ResolvedLoss([(term.weight, registry.resolve("loss", term.spec)) for term in terms])
