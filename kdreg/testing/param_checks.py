"""Conformance checks of a plugin's parameters (used by :mod:`kdreg.testing.checks`).

``Params`` must be a dataclass whose fields kdreg can parse from ``key=value`` text, whose
defaults read back as themselves, and whose chosen values survive
``canonical_spec → parse_spec → build_params`` unchanged: the canonical text is what
identifies a run, so a value that does not come back would make two different runs
look alike (or one run fail to parse its own config).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from kdreg.plugins import spec as contract
from kdreg.testing.checks import CheckContext, CheckFailed, describe_exception


def check_params(ctx: CheckContext, params: Any) -> None:
    """Params is a parseable dataclass; the chosen parameters survive their canonical text."""
    from kdreg.plugins.params import param_fields

    params_cls = getattr(ctx.cls, "Params", contract.NoParams)
    rows_before = len(ctx.rows)
    with ctx.row("params: dataclass") as note:
        if not (isinstance(params_cls, type) and dataclasses.is_dataclass(params_cls)):
            raise CheckFailed(f"'Params' must be a dataclass, got {params_cls!r}")
        fields = param_fields(params_cls)
        for f, tp in fields:
            _check_field(ctx.name, f, tp)
        undocumented = [f.name for f, _ in fields if not f.metadata.get("help")]
        note[0] = f"{len(fields)} field(s)" + (
            f"; no help metadata on {', '.join(undocumented)}" if undocumented else ""
        )
    if ctx.rows[rows_before].status == "fail":
        return
    with ctx.row("params: build") as note:
        ctx.params = _build_params(ctx.name, params_cls, params)
        note[0] = repr(ctx.params)[:120]
    if ctx.params is not None:
        with ctx.row("params: round-trip") as note:
            note[0] = _round_trip(ctx.name, params_cls, ctx.params)


def _supported(tp: Any) -> bool:
    """Whether kdreg can parse a field of this type from ``key=value`` text."""
    import types
    import typing
    from pathlib import Path

    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return True
    if origin in (typing.Union, types.UnionType):
        return all(arg is type(None) or _supported(arg) for arg in typing.get_args(tp))
    return tp in (int, float, bool, str, Path)


def _check_field(name: str, f: dataclasses.Field[Any], tp: Any) -> None:
    """A field's type is one kdreg parses, and its default survives ``name:field=text``."""
    from kdreg.plugins.params import _coerce, _format, _type_name

    if not _supported(tp):
        import typing

        shown = str(tp).replace("typing.", "") if typing.get_origin(tp) else _type_name(tp)
        raise CheckFailed(
            f"field '{f.name}' has type {shown}, which {name}:{f.name}=... cannot express; use "
            "int, float, bool, str, pathlib.Path, Literal[...] or X | None of those"
        )
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return
    probe = _text(default, _format)
    try:
        back = _coerce(probe, tp)
    except (ValueError, TypeError):
        back = dataclasses.MISSING
    if back != default:
        shown = "an error" if back is dataclasses.MISSING else repr(back)
        raise CheckFailed(
            f"field '{f.name}': default {default!r} written as {name}:{f.name}={probe} reads back as {shown}"
        )


def _text(value: Any, fmt: Callable[[Any], str]) -> str:
    from pathlib import Path

    if value is None:
        return "none"
    return fmt(str(value) if isinstance(value, Path) else value)


def _build_params(name: str, params_cls: type, params: Any) -> Any:
    from kdreg.plugins.params import build_params, parse_spec

    if params is None:
        return build_params(name, params_cls, ())
    if isinstance(params, str):
        raw = parse_spec(f"{name}:{params}").raw if params.strip() else ()
        return build_params(name, params_cls, raw)
    if isinstance(params, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in params):
        return build_params(name, params_cls, params)
    if isinstance(params, Mapping):  # typed values or text, parsed exactly as on the command line
        from kdreg.plugins.params import _format

        return build_params(name, params_cls, tuple((str(k), _text(v, _format)) for k, v in params.items()))
    if isinstance(params, params_cls):
        return params
    raise CheckFailed(
        f"params must be None, 'key=value,...', a mapping or a {params_cls.__name__}, got {params!r}"
    )


def _round_trip(name: str, params_cls: type, params: Any) -> str:
    from kdreg.plugins.params import build_params, canonical_spec, params_to_dict, parse_spec

    try:
        defaults = params_cls()
    except (TypeError, ValueError):
        defaults = None
    text = canonical_spec(name, params, defaults)
    try:
        again = build_params(name, params_cls, parse_spec(text).raw)
    except Exception as exc:
        raise CheckFailed(f"canonical text {text!r} does not parse back: {describe_exception(exc)}") from None
    before, after = params_to_dict(params), params_to_dict(again)
    differ = [k for k in before if before[k] != after.get(k)]
    if differ:
        raise CheckFailed(
            "; ".join(
                f"field '{k}': {before[k]!r} comes back from {text!r} as {after.get(k)!r}" for k in differ
            )
        )
    return text
