"""A weighted sum of loss plugins, e.g. ``--loss kl+0.5*hidden``.

The combination behaves like one loss towards the training loop: it asks the models
for the union of what its terms read, runs the teacher if any term uses it, and hands
the optimiser every term's trainable parts (e.g. a hidden-state projection) at once.
A single term of weight 1 needs no wrapper: :func:`build_loss` returns the plugin itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kdreg.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from kdreg.plugins.registry import Registry
    from kdreg.plugins.spec import LossBatch, ModelGeometry, ModelOutputs


class CombinedLoss:
    """Σ_k w_k · L_k over loss plugin instances (each keeps its own parameters and checks)."""

    def __init__(self, terms: Sequence[tuple[float, Any]]) -> None:
        if not terms:
            raise ConfigError("A loss combination needs at least one term; write e.g. --loss kl+0.5*hidden.")
        self.terms: list[tuple[float, Any]] = [(float(weight), loss) for weight, loss in terms]
        self.needs: frozenset[str] = frozenset().union(*(frozenset(loss.needs) for _, loss in self.terms))
        self.uses_teacher: bool = any(bool(getattr(loss, "uses_teacher", True)) for _, loss in self.terms)

    @classmethod
    def from_terms(cls, terms: Sequence[tuple[float, Any]]) -> CombinedLoss:
        """Combine ``(weight, loss)`` pairs."""
        return cls(terms)

    def prepare(
        self, teacher: ModelGeometry | None, student: ModelGeometry, stage: str
    ) -> torch.nn.Module | None:
        """Run every term's checks; collect their trainable parts in one ModuleList (None if none)."""
        modules = []
        for _, loss in self.terms:
            prepare = getattr(loss, "prepare", None)
            module = prepare(teacher, student, stage) if prepare is not None else None
            if module is not None:
                modules.append(module)
        if not modules:
            return None
        import torch

        return torch.nn.ModuleList(modules)

    def compute(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: LossBatch) -> torch.Tensor:
        """The weighted sum of the terms' values."""
        total = None
        for weight, loss in self.terms:
            value = weight * loss.compute(student, teacher, batch)
            total = value if total is None else total + value
        assert total is not None
        return total


def build_loss(text: str, registry: Registry | None = None) -> tuple[Any, str, list[dict[str, Any]]]:
    """Resolve ``kl:temperature=4+0.5*hidden`` into (loss object, canonical spec, one identity per term).

    Each term is validated by ``registry.resolve("loss", ...)`` (the process-wide
    registry when none is given); each identity is the plugin's name, parameters,
    distribution and version plus its ``weight``.
    """
    from kdreg.plugins.resolve import resolve_loss

    if registry is None:
        from kdreg.plugins.registry import registry as default_registry

        registry = default_registry()
    resolved = resolve_loss(registry, text)
    identities = [{"weight": weight, **plugin.identity()} for weight, plugin in resolved.terms]
    return resolved.create(), resolved.spec, identities
