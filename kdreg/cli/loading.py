"""Building the CLI lazily: a command's module is imported only when that command is used.

A light command (``kdreg query``, ``kdreg db current``) should cost little more than
Python's own start-up, so two costs are avoided:

* **importing every command module at start.** :class:`LazyCommands` is the root
  group's command table: it knows every command's name (the last part of its module's
  name) and imports the module, calls its ``register(app)`` on a throw-away Typer app and
  builds the click command only when that command is looked up. ``kdreg --help`` and
  ``typer ... utils docs`` look every command up and so still list them all.
* **pydantic, for parameters that need no validation.** Typer coerces every parameter
  value through a pydantic ``TypeAdapter`` — even an unset option's ``None`` — so any
  command imports pydantic (≈ 40 ms) and builds an adapter per option. For the values
  where that is an identity (a string for a ``str``, strings for a ``list[str]``, a plain
  in-range integer), :class:`_LightParam` gives the same value without pydantic; every
  other value goes through Typer's own coercion, built on first use, so errors and
  conversions are exactly Typer's. This hooks into Typer internals (``_runtime_param``,
  ``type_descriptor``); with a Typer that lacks them it does nothing and Typer
  behaves as usual (``tests/cli/test_light_imports.py`` notices the lost speed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from functools import cache
from typing import Any

import typer
import typer.main

_NOT_LIGHT = object()


def command_name(module: str) -> str:
    """``kdreg.cli.query`` → ``query``: a command is named after its module."""
    return module.rsplit(".", 1)[-1]


def build_command(module: str, *, rich_markup_mode: Any) -> Any:
    """The click command a command module registers (its ``register(app)`` adds exactly one)."""
    holder = typer.Typer(rich_markup_mode=rich_markup_mode, add_completion=False,
                         pretty_exceptions_enable=False)
    importlib.import_module(module).register(holder)
    commands = typer.main.get_group(holder).commands
    name = command_name(module)
    if list(commands) != [name]:
        raise RuntimeError(f"{module}.register() must add exactly the command {name!r}, not {list(commands)}")
    command = commands[name]
    use_light_params(command)
    return command


class LazyCommands(MutableMapping[str, Any]):
    """A group's command table whose entries are built from their modules on first access.

    Iterating (``list_commands``, "did you mean" suggestions) gives names only and imports
    nothing; looking a name up imports that one module.
    """

    def __init__(self, modules: Sequence[str], build: Callable[[str], Any],
                 built: MutableMapping[str, Any] | None = None) -> None:
        self._modules = {command_name(m): m for m in modules}
        self._build = build
        self._built: dict[str, Any] = dict(built or {})
        self._order = [*self._built, *(name for name in self._modules if name not in self._built)]

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in self._modules:
                raise KeyError(name)
            self._built[name] = self._build(self._modules[name])
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._order:
            self._order.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self._order:
            raise KeyError(name)
        self._order.remove(name)
        self._built.pop(name, None)
        self._modules.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._order


# --------------------------------------------------------------------------- parameters
def use_light_params(command: Any) -> None:
    """Give every Typer parameter of ``command`` (its ``--help`` too, and its sub-commands'
    when they are already built) the light coercion."""
    try:
        from typer._click import Context
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:  # another Typer: nothing to hook into
        return
    light = _light_param_class(RuntimeParam, build_runtime_param)
    stack = [command]
    while stack:
        current = stack.pop()
        # --help is made (and kept) on first use; make it now so that it is light too
        help_option = current.get_help_option(Context(current))
        for param in [*current.params, *([help_option] if help_option is not None else [])]:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is not None and getattr(param, "_runtime_param", _NOT_LIGHT) is None:
                param._runtime_param = light(parameter_info=descriptor.parameter_info,
                                             annotation=descriptor.annotation, descriptor=descriptor)
        commands = getattr(current, "commands", None)
        if isinstance(commands, dict):  # not a LazyCommands: those are made light as they are built
            stack.extend(commands.values())


def light_value(annotation: Any, info: Any, value: Any) -> Any:
    """``value`` as Typer would coerce it, when that needs no validation; else ``_NOT_LIGHT``."""
    if getattr(info, "parser", None) is not None:
        return _NOT_LIGHT
    if annotation is str:
        return value if type(value) is str else _NOT_LIGHT
    if getattr(annotation, "__origin__", None) is list and getattr(annotation, "__args__", None) == (str,):
        if isinstance(value, (list, tuple)) and all(type(v) is str for v in value):
            return list(value)
        return _NOT_LIGHT
    if annotation is bool:
        return value if type(value) is bool else _NOT_LIGHT
    if annotation in (int, float) and not getattr(info, "clamp", False):
        if type(value) is str and annotation is int and value.isascii() and value.isdigit():
            number: Any = int(value)
        elif type(value) is annotation:
            number = value
        else:
            return _NOT_LIGHT
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        if (low is not None and number < low) or (high is not None and number > high):
            return _NOT_LIGHT  # out of range: Typer's coercion says so, in its words
        return number
    return _NOT_LIGHT


@cache
def _light_param_class(base: type, build_runtime_param: Callable[[Any], Any]) -> type:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class _LightParam(base):  # type: ignore[misc, valid-type]
        """Typer's coercion, skipped where it is an identity (see the module docstring)."""

        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            light = light_value(self.annotation, self.parameter_info, value)
            if light is not _NOT_LIGHT:
                return light
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    return _LightParam
