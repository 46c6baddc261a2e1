"""Human-facing descriptions of plugins (for `kdreg plugins show` and the docs).

``kdreg plugins show kl:temperature=2`` also validates the parameters exactly as a run
would and shows the canonical spec, so a typo is found before a grid is launched.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from kdreg.errors import PluginError, UnknownPluginError
from kdreg.plugins.params import _type_name, param_fields, params_to_dict, parse_spec
from kdreg.plugins.registry import PluginEntry, registry
from kdreg.plugins.spec import KINDS, NoParams


def _matches(kind: str | None, name: str) -> list[PluginEntry]:
    """Entries called ``name`` (of ``kind`` when given); unknown names raise with close matches."""
    reg = registry()
    if kind is not None:
        if kind not in KINDS:
            raise UnknownPluginError(f"Unknown plugin kind {kind[:40]!r}; use one of: {', '.join(KINDS)}.")
        return [reg.entry(kind, name)]  # its own error names close matches of that kind
    found = [e for e in reg.entries() if e.name == name]
    if not found:
        names = sorted({e.name for e in reg.entries()})
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownPluginError(f"No plugin named {name!r}.{hint} `kdreg plugins` lists them all.")
    return found


def _params(params_cls: type) -> list[dict[str, Any]]:
    rows = []
    for f, tp in param_fields(params_cls):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        help_text = f.metadata.get("help", "")
        rows.append({"parameter": f.name, "type": _type_name(tp), "default": default, "help": help_text})
    return rows


def describe(name: str) -> list[dict[str, Any]]:
    """Summary, origin and parameters of every plugin called ``name`` (``KIND/NAME`` narrows it).

    With parameters (``NAME:key=value``) they are validated as a run would validate them and
    the result carries the canonical ``spec`` and the resolved ``values``. A plugin that is
    broken raises, unless the name also matches other kinds: then it is shown with its error.
    """
    kind, sep, rest = name.partition("/")
    if not sep:
        kind, rest = None, name
    parsed = parse_spec(rest)
    entries = _matches(kind, parsed.name)
    out: list[dict[str, Any]] = []
    failures: list[PluginError] = []
    for entry in entries:
        item: dict[str, Any] = {
            "kind": entry.kind,
            "name": entry.name,
            "distribution": entry.distribution,
            "version": entry.version,
            "entry_point": entry.value,
        }
        try:
            cls = entry.load()
            item["params"] = _params(getattr(cls, "Params", NoParams))
            if parsed.raw:
                resolved = registry().resolve(entry.kind, parsed)
                item["spec"] = resolved.spec
                item["values"] = params_to_dict(resolved.params)
        except PluginError as exc:
            if len(entries) == 1 or parsed.raw:
                raise
            failures.append(exc)
            item.update(status=entry.status, error=str(exc), params=[])
        item["summary"] = entry.summary()
        item.setdefault("status", entry.status)
        out.append(item)
    if failures and len(failures) == len(entries):
        raise failures[0]
    return out
