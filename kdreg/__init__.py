"""kdreg: a plugin-based experiment registry for knowledge-distillation studies."""

from __future__ import annotations

__version__ = "0.1.0"
