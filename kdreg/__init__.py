"""kdreg: a plugin-based experiment registry for knowledge-distillation studies."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "connect"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """``kdreg.connect`` for notebooks, imported on first use so the CLI starts fast."""
    if name == "connect":
        from kdreg.api import connect

        return connect
    raise AttributeError(f"module 'kdreg' has no attribute {name!r}")
