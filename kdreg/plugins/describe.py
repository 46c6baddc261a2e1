"""Human-facing descriptions of plugins (for `kdreg plugins show` and the docs)."""

from __future__ import annotations

import dataclasses
from typing import Any

from kdreg.errors import UnknownPluginError
from kdreg.plugins.params import _type_name, param_fields
from kdreg.plugins.registry import PluginEntry, registry
from kdreg.plugins.spec import KINDS, NoParams


def _matches(name: str) -> list[PluginEntry]:
    reg = registry()
    kind, sep, bare = name.partition("/")
    if sep:
        if kind not in KINDS:
            raise UnknownPluginError(f"Unknown plugin kind {kind!r}; use one of: {', '.join(KINDS)}.")
        return [reg.entry(kind, bare)]
    found = [e for e in reg.entries() if e.name == name]
    if not found:
        raise UnknownPluginError(name)
    return found


def describe(name: str) -> list[dict[str, Any]]:
    """Summary, origin and parameters of every plugin called ``name`` (or ``KIND/NAME``)."""
    try:
        entries = _matches(name)
    except UnknownPluginError:
        import difflib

        names = sorted({e.name for e in registry().entries()})
        close = difflib.get_close_matches(name.partition("/")[2] or name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownPluginError(f"No plugin named {name!r}.{hint} `kdreg plugins` lists them all.") from None
    out = []
    for entry in entries:
        cls = entry.load()
        params_cls = getattr(cls, "Params", NoParams)
        params = []
        for f, tp in param_fields(params_cls):
            if f.default is not dataclasses.MISSING:
                default: Any = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = "(required)"
            params.append(
                {"parameter": f.name, "type": _type_name(tp), "default": default, "help": f.metadata.get("help", "")}
            )
        out.append(
            {
                "kind": entry.kind,
                "name": entry.name,
                "summary": entry.summary(),
                "distribution": entry.distribution,
                "version": entry.version,
                "entry_point": entry.value,
                "params": params,
            }
        )
    return out
