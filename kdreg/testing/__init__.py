"""Helpers for testing kdreg and kdreg plugins without a network.

``kdreg.testing.tiny`` saves tiny real models (1–2 layers) that load through
``from_pretrained`` like any hub model.
"""

from __future__ import annotations
