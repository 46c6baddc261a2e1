"""A run's identities: its canonical config's hash, and its *setup* (the config without the seed).

Two runs are the same run when their canonical configs are equal (:func:`config_hash`).
Two runs are the same **setup** when their configs are equal once the seed is left out
(:func:`setup_hash`): the seeds of one setup are what a report averages over, and what
``kdreg compare`` pairs on. Runs that differ in anything else — a hyper-parameter, a
plugin's version, the evaluated languages, the pipeline version — are different setups,
so a report never pools them into one row.

Stdlib only: the grid computes these for new runs, the store for records that come
without one, and migration 0005 (which keeps its own copy, as migrations must not
change when this module does; a test holds the two equal) for runs stored before.
"""

from __future__ import annotations

import json
from typing import Any

SEED_KEY = "seed"
"""The one key of a canonical config that a setup leaves out."""


def canonical_json(data: Any) -> str:
    """Sorted, compact JSON: the same config always serialises to the same text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_hash(data: Any) -> str:
    """sha256 of the canonical JSON."""
    import hashlib  # here: reports import this module for setup_config, and hashlib costs them 2.5 ms

    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def setup_config(config: Any) -> dict[str, Any]:
    """The canonical config without its seed (a config that is not a mapping has no setup: {})."""
    if not isinstance(config, dict):
        return {}
    return {key: value for key, value in config.items() if key != SEED_KEY}


def setup_hash(config: Any) -> str:
    """sha256 of the canonical JSON of :func:`setup_config`: equal for the seeds of one setup."""
    return config_hash(setup_config(config))
