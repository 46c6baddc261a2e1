"""Helpers for testing kdreg and kdreg plugins without a network.

* :func:`check_plugin` / :func:`assert_plugin_conforms` — conformance checks a plugin
  author runs from their own test suite (``kdreg plugins check NAME`` runs the same);
* ``kdreg.testing.tiny`` saves tiny real models (1–2 layers) that load through
  ``from_pretrained`` like any hub model.

Importing this package is cheap: torch is imported only when a check needs it.
"""

from __future__ import annotations

from kdreg.testing.checks import CheckResult, assert_plugin_conforms, check_plugin

__all__ = ["CheckResult", "assert_plugin_conforms", "check_plugin"]
