"""Naming setups by what differs: ``finetune.learning_rate=3e-5`` vs ``=5e-5``.

Runs of two setups can share every plugin spec a table shows (teacher, student, stage,
loss, benchmark, corpus) and differ only in what the specs do not say: a phase's
hyper-parameters, a plugin's version, the evaluated languages, the pipeline version.
Such setups are separate rows (never pooled), and each is labelled by the values that
set it apart from the others it would be confused with — the leaves of the canonical
configs (seed left out) where they disagree.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, TypeVar

from kdreg.identity import setup_config

K = TypeVar("K", bound=Hashable)

MISSING = "—"
"""How a label shows a value one setup has and another lacks."""
MAX_ITEMS = 3
"""Differences named in a label; more are counted (``+2 more``)."""
_DROPPED = frozenset({"hparams", "params"})
"""Path segments left out of names: ``hparams.finetune.learning_rate`` reads ``finetune.learning_rate``."""


def flatten(config: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Leaves of a nested mapping by path (a list is one leaf: the evaluated languages are one value)."""
    if not isinstance(config, Mapping) or (prefix and not config):
        return {prefix: config}
    out: dict[tuple[str, ...], Any] = {}
    for key in sorted(config, key=str):
        out.update(flatten(config[key], (*prefix, str(key))))
    return out


def leaf_name(path: Sequence[str]) -> str:
    """``('hparams', 'finetune', 'learning_rate')`` → ``finetune.learning_rate``."""
    kept = [part for part in path if part not in _DROPPED]
    return ".".join(kept or path)


def format_value(path: Sequence[str], value: Any) -> str:
    """A config value as people write it: ``3e-5``, ``0.001``, ``de+fr``, ``all`` (no languages chosen)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, float):
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", format(value, "g")).replace("e+", "e")
    if isinstance(value, list):
        if not value and path and path[-1] == "languages":
            return "all"
        return "+".join(format_value((), v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return "{}"
    return str(value)


def difference_labels(configs: Mapping[K, Any]) -> dict[K, str]:
    """For each config (seed ignored), the leaves where the configs disagree, as ``name=value, …``.

    Empty labels when fewer than two configs are given or they do not differ.
    """
    flat = {key: flatten(setup_config(config)) for key, config in configs.items()}
    paths = sorted({path for leaves in flat.values() for path in leaves})
    differing = [
        path for path in paths
        if len({repr(leaves.get(path, MISSING)) for leaves in flat.values()}) > 1
    ]
    labels: dict[K, str] = {}
    for key, leaves in flat.items():
        items = [
            f"{leaf_name(path)}={format_value(path, leaves[path]) if path in leaves else MISSING}"
            for path in differing
        ]
        more = len(items) - MAX_ITEMS
        labels[key] = ", ".join(items[:MAX_ITEMS]) + (f" (+{more} more)" if more > 0 else "")
    return labels
