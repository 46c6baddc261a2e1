"""Plugin specifications on the command line: ``name:key=value,key=value``.

A specification is parsed into a :class:`PluginSpec` (pure text, no import), then
validated against the plugin's ``Params`` dataclass: unknown keys, missing
required values and values of the wrong type are :class:`ParameterError`\\ s that
name the plugin, the key and the expected type. The canonical form (sorted keys,
values as their parsed type) is what goes into a run's config and its hash, so
``kl:alpha=0.5,temperature=4`` and ``kl:temperature=4.0,alpha=.5`` are one run.

Losses may be combined: ``kl+0.5*hidden:layers=2`` is a weighted sum.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from kdreg.errors import ParameterError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# '+' joins loss terms, except inside a number's exponent (``kl:scale=1e+3``, ``1e+0*kl``).
_TERM_SEPARATOR = re.compile(r"(?<![0-9][eE])\+|(?<=[0-9][eE])\+(?![0-9])")


@dataclass(frozen=True)
class PluginSpec:
    """A plugin name with raw parameter text, as written by the user."""

    name: str
    raw: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        if not self.raw:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.raw)


@dataclass(frozen=True)
class WeightedSpec:
    """One term of a combined loss: ``weight * spec``."""

    weight: float
    spec: PluginSpec


def parse_spec(text: str) -> PluginSpec:
    """Parse ``name`` or ``name:key=value,...`` (no plugin is imported)."""
    text = text.strip()
    if not text:
        raise ParameterError("Empty plugin name; write NAME or NAME:key=value,... (see `kdreg plugins`).")
    name, _, rest = text.partition(":")
    name = name.strip()
    if not _NAME.match(name):
        raise ParameterError(
            f"Malformed plugin name {name[:60]!r} in {text[:80]!r}; "
            "names use letters, digits, '-', '_' and '.' (see `kdreg plugins`)."
        )
    pairs: list[tuple[str, str]] = []
    if rest.strip():
        seen: set[str] = set()
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or not _KEY.match(key):
                raise ParameterError(
                    f"Malformed parameter {item.strip()[:60]!r} in {text[:80]!r}; "
                    f"write {name}:key=value,key=value."
                )
            if key in seen:
                raise ParameterError(f"Parameter {key!r} given twice in {text[:80]!r}.")
            seen.add(key)
            pairs.append((key, value.strip()))
    elif _ != "" and not rest.strip():
        raise ParameterError(f"Nothing after ':' in {text[:80]!r}; write {name}:key=value or just {name}.")
    return PluginSpec(name=name, raw=tuple(pairs))


def parse_loss_combination(text: str) -> list[WeightedSpec]:
    """Parse ``kl`` or ``kl+0.5*hidden:layers=2`` into weighted terms (weights default to 1)."""
    terms: list[WeightedSpec] = []
    for part in _TERM_SEPARATOR.split(text):
        if not part.strip():
            raise ParameterError(f"Empty term in loss combination {text[:80]!r}; write e.g. kl+0.5*hidden.")
        head, star, body = part.partition("*")
        weight = 1.0
        if not star or set(head) & {":", "="}:  # no weight: a '*' inside parameters is theirs
            body = part
        else:
            try:
                weight = float(head)
            except ValueError:
                weight = math.nan
            if not 0 < weight < math.inf:
                raise ParameterError(
                    f"Loss weight {head.strip()[:30]!r} in {text[:80]!r} must be a positive number; "
                    "write e.g. kl+0.5*hidden."
                )
        terms.append(WeightedSpec(weight=weight, spec=parse_spec(body)))
    return terms


# ------------------------------------------------------------------ validation
def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


INT_RANGE = (-(2**63), 2**63 - 1)
"""Integers every library and database takes (64-bit): a plugin's int parameter is refused beyond."""


class _OutOfRange(ValueError):
    """The text is of the right type but beyond what any library takes (the message says the range)."""


def _coerce(value: str, tp: Any) -> Any:
    """Turn text into ``tp``; raise ValueError with no message detail (the caller words the error)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if type(None) in args and value.lower() in ("none", "null", ""):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg)
            except _OutOfRange:
                raise
            except ValueError:
                continue
        raise ValueError(value)
    if origin is Literal:
        for option in get_args(tp):
            if str(option) == value:
                return option
        raise ValueError(value)
    if tp is bool:
        lowered = value.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(value)
    if tp is int:
        number = int(value)
        if not INT_RANGE[0] <= number <= INT_RANGE[1]:
            raise _OutOfRange(f"an integer from {INT_RANGE[0]:,} to {INT_RANGE[1]:,} (64 bits)")
        return number
    if tp is float:
        result = float(value)
        if not math.isfinite(result):  # NaN and infinity never make sense as a hyper-parameter
            raise ValueError(value)
        return result
    if tp is str:
        return value
    if tp is Path:  # absolute, so the same text in another folder is another config (and hash)
        if not value.strip():  # empty would quietly mean the current folder
            raise ValueError(value)
        return Path(os.path.abspath(Path(value).expanduser()))
    raise ValueError(value)


def param_fields(params_cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    """The declared fields of a ``Params`` dataclass with their resolved types."""
    if not dataclasses.is_dataclass(params_cls):
        raise ParameterError(f"{params_cls!r} is not a dataclass; a plugin's Params must be one.")
    try:
        hints = typing.get_type_hints(params_cls)
    except Exception as exc:  # a forward reference the plugin's module cannot resolve
        raise ParameterError(
            f"Cannot read the parameter types of {params_cls.__qualname__} ({type(exc).__name__}: {exc}); "
            "the plugin's Params annotations must name importable types."
        ) from None
    return [(f, hints.get(f.name, str)) for f in dataclasses.fields(params_cls) if f.init]


def build_params(plugin_name: str, params_cls: type, raw: tuple[tuple[str, str], ...]) -> Any:
    """Validate raw ``key=value`` pairs against ``params_cls`` and instantiate it."""
    fields = {f.name: (f, tp) for f, tp in param_fields(params_cls)}
    values: dict[str, Any] = {}
    for key, text in raw:
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ParameterError(
                f"Plugin {plugin_name!r} has no parameter {key!r} (its parameters: {known}); "
                f"see `kdreg plugins show {plugin_name}`."
            )
        _, tp = fields[key]
        try:
            values[key] = _coerce(text, tp)
        except _OutOfRange as exc:
            raise ParameterError(
                f"Parameter {plugin_name}:{key} = {text[:30]}{'...' if len(text) > 30 else ''} is out of "
                f"range: it must be {exc}."
            ) from None
        except (ValueError, TypeError):
            raise ParameterError(
                f"Parameter {plugin_name}:{key} must be {_type_name(tp)}, got {text[:60]!r}."
            ) from None
    missing = [
        name
        for name, (f, _) in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ParameterError(
            f"Plugin {plugin_name!r} needs {', '.join(missing)}; write {plugin_name}:"
            + ",".join(f"{m}=<value>" for m in missing)
            + "."
        )
    try:
        return params_cls(**values)
    except (ValueError, TypeError) as exc:  # a __post_init__ check of the plugin's own
        raise ParameterError(f"Invalid parameters for {plugin_name!r}: {exc}") from None


def params_to_dict(params: Any) -> dict[str, Any]:
    """JSON-ready dict of a Params instance (paths as strings), for configs and display."""
    if not dataclasses.is_dataclass(params):
        return {}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        out[f.name] = str(value) if isinstance(value, Path) else value
    return out


def field_defaults(params_cls: type) -> dict[str, Any]:
    """Each field's own default (as params_to_dict would show it); required fields are absent."""
    out: dict[str, Any] = {}
    if not dataclasses.is_dataclass(params_cls):
        return out
    for f in dataclasses.fields(params_cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        out[f.name] = str(value) if isinstance(value, Path) else value
    return out


def canonical_spec(name: str, params: Any, defaults: Any | None = None) -> str:
    """``name:key=value,...`` listing only parameters that differ from their defaults, sorted.

    Defaults are taken field by field from the Params class, so a plugin with a required
    parameter (``hf:path=...``) still drops its other, defaulted ones. A Params class
    whose defaults depend on another parameter (a size preset: ``synthetic:size=large``)
    defines ``derived_defaults(self)`` — the values its fields take when not given — and
    those are dropped too.
    """
    values = params_to_dict(params)
    base = params_to_dict(defaults) if defaults is not None else field_defaults(type(params))
    derived = getattr(params, "derived_defaults", None)
    if defaults is None and callable(derived):
        base.update(derived())
    changed = sorted((k, v) for k, v in values.items() if k not in base or base[k] != v)
    if not changed:
        return name
    return name + ":" + ",".join(f"{k}={_format(v)}" for k, v in changed)


def _format(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)
