"""What loading pre-trained weights did, kept with every run that used them.

transformers loads whatever checkpoint it is given into the architecture asked for and
initialises what the checkpoint lacks at random: a sentence-transformers BERT loaded as
``AutoModelForMaskedLM`` gets a random masked-LM head and loads without an error. The
report says so (its *missing* keys), and kdreg keeps it — in the run's environment
(``kdreg show``) and beside cached models — instead of silencing it, and refuses the
pairings where a random head would make the numbers meaningless
(:mod:`kdreg.plugins.compatibility`).

Plugins that load with ``from_pretrained(..., output_loading_info=True)`` build one with
:meth:`LoadReport.from_loading_info`; nothing here imports torch or transformers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_KEYS = 40
"""Keys kept per list in a stored report (a checkpoint of another architecture may list hundreds)."""


def _names(keys: Iterable[Any]) -> tuple[str, ...]:
    """Sorted key names (a mismatched entry is ``(key, checkpoint shape, model shape)``)."""
    return tuple(sorted(str(k[0] if isinstance(k, tuple) else k) for k in keys))


@dataclass(frozen=True)
class LoadReport:
    """transformers' loading report of one model: what was missing, unused or re-shaped.

    ``missing`` weights were not in the checkpoint and were initialised randomly;
    ``unexpected`` checkpoint weights were not used; ``mismatched`` weights had another
    shape and were initialised randomly (e.g. a classifier for another label set).
    ``encoder_prefix`` is the model's ``base_model_prefix`` (``bert``): a key outside it
    belongs to the head on top of the encoder.
    """

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    encoder_prefix: str = ""

    @classmethod
    def from_loading_info(cls, model: Any, info: Mapping[str, Iterable[Any]]) -> LoadReport:
        """The report of ``from_pretrained(..., output_loading_info=True)``'s ``(model, info)``."""
        return cls(
            missing=_names(info.get("missing_keys", ())),
            unexpected=_names(info.get("unexpected_keys", ())),
            mismatched=_names(info.get("mismatched_keys", ())),
            encoder_prefix=str(getattr(model, "base_model_prefix", "") or ""),
        )

    @property
    def new_head(self) -> tuple[str, ...]:
        """Head weights (outside the encoder) initialised randomly: missing or mismatched."""
        inside = f"{self.encoder_prefix}." if self.encoder_prefix else None
        keys = (*self.missing, *self.mismatched)
        return tuple(k for k in keys if inside is None or not k.startswith(inside))

    @property
    def new_encoder(self) -> tuple[str, ...]:
        """Encoder weights initialised randomly (the pooler of a checkpoint saved without one, typically)."""
        head = set(self.new_head)
        return tuple(k for k in (*self.missing, *self.mismatched) if k not in head)

    @property
    def clean(self) -> bool:
        """Every weight came from the checkpoint and every checkpoint weight was used."""
        return not (self.missing or self.unexpected or self.mismatched)

    def to_json(self) -> dict[str, Any]:
        """The report as stored (each list cut to MAX_KEYS, with the full count)."""
        out: dict[str, Any] = {"encoder_prefix": self.encoder_prefix}
        for name in ("missing", "unexpected", "mismatched"):
            keys = getattr(self, name)
            out[name] = list(keys[:MAX_KEYS])
            if len(keys) > MAX_KEYS:
                out[f"{name}_count"] = len(keys)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadReport:
        return cls(missing=tuple(data.get("missing", ())), unexpected=tuple(data.get("unexpected", ())),
                   mismatched=tuple(data.get("mismatched", ())),
                   encoder_prefix=str(data.get("encoder_prefix", "")))

    def describe(self) -> str:
        """One line: 'all weights loaded', or what was initialised randomly and what was left unused."""
        if self.clean:
            return "all weights loaded from the checkpoint"
        parts = []
        if self.new_head:
            parts.append(f"{len(self.new_head)} head weights initialised randomly ({_group(self.new_head)})")
        if self.new_encoder:
            parts.append(f"{len(self.new_encoder)} encoder weights initialised randomly "
                         f"({_group(self.new_encoder)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} checkpoint weights unused ({_group(self.unexpected)})")
        return "; ".join(parts)


def _group(keys: tuple[str, ...], shown: int = 3) -> str:
    """Key names shortened to their module (``cls.predictions.*``), a few of them."""
    modules = list(dict.fromkeys(".".join(k.split(".")[:-1][:2]) + ".*" if "." in k else k for k in keys))
    more = f", +{len(modules) - shown} more" if len(modules) > shown else ""
    return ", ".join(modules[:shown]) + more
