"""Entry-point discovery: one generic registry for every plugin kind.

Design (after stevedore rather than simonw/llm, whose CLI dies when one plugin fails
to import):

* names, distributions and versions come from ``importlib.metadata`` alone, so
  listing plugins imports no plugin code and nothing heavy;
* a plugin is imported only when it is used (or checked), each one on its own: an
  import failure is recorded with name, distribution, version and error, shown by
  ``kdreg plugins``, and every other plugin keeps working
  (``KDREG_STRICT_PLUGINS=1`` turns such failures into errors);
* ``KDREG_PLUGINS_ALLOW=dist-a,dist-b`` limits which distributions are loaded at all;
* the same kind and name from two distributions is an error naming both (when that
  plugin is used, and as its status in ``kdreg plugins``);
* a loaded object is checked against its kind's contract (:mod:`kdreg.plugins.spec`).

A plugin's import is isolated as far as Python allows: any exception, ``SystemExit``
included, marks that plugin broken instead of ending the command, and whatever it
prints goes to stderr, so ``kdreg plugins --json`` stays parseable. A plugin whose
module imports torch, transformers or datasets at import time still works, but is
flagged (``heavy_imports``), because it makes every light command slow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import sys
import traceback
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from typing import Any, get_args

from kdreg.errors import (
    ContractError,
    DuplicatePluginError,
    ParameterError,
    PluginError,
    PluginLoadError,
    UnknownPluginError,
)
from kdreg.plugins import spec as contract
from kdreg.plugins.params import PluginSpec, build_params, canonical_spec, params_to_dict, parse_spec

STRICT_ENV = "KDREG_STRICT_PLUGINS"
ALLOW_ENV = "KDREG_PLUGINS_ALLOW"
HEAVY_MODULES = ("torch", "transformers", "datasets")
"""Libraries a plugin module should import inside the functions that need them, not at import time."""


def _heavy_loaded() -> set[str]:
    return {name for name in HEAVY_MODULES if name in sys.modules}


@dataclass
class PluginEntry:
    """One registered plugin, known from metadata; ``load()`` imports it (once)."""

    kind: str
    name: str
    value: str
    distribution: str
    version: str
    _entry_point: metadata.EntryPoint = field(repr=False)
    _loaded: Any = field(default=None, repr=False)
    error: str | None = None
    error_traceback: str | None = field(default=None, repr=False)
    conflict: str | None = None
    """Set when another distribution registers the same kind and name (the message names both)."""
    heavy_imports: tuple[str, ...] = ()
    """Heavy libraries that importing this plugin's module brought in (see HEAVY_MODULES)."""

    @property
    def status(self) -> str:
        """'ok', 'broken' (fails to import or breaks the contract), 'duplicate' or 'not loaded'."""
        if self.conflict:
            return "duplicate"
        if self.error:
            return "broken"
        return "ok" if self._loaded is not None else "not loaded"

    def load(self) -> type:
        """Import the plugin's class and check it against the contract (cached)."""
        if self.conflict:
            raise DuplicatePluginError(self.conflict)
        if self._loaded is not None:
            return self._loaded
        if self.error:
            raise PluginLoadError(self._failure_message())
        heavy_before = _heavy_loaded()
        try:
            with contextlib.redirect_stdout(sys.stderr):
                obj = self._entry_point.load()
        except BaseException as exc:  # a plugin's import may raise anything, even SystemExit; isolate it
            if isinstance(exc, KeyboardInterrupt):
                raise
            detail = f"{type(exc).__name__}: {exc}".strip().splitlines()
            self.error = (detail[0] if detail else type(exc).__name__)[:300]
            self.error_traceback = traceback.format_exc()
            raise PluginLoadError(self._failure_message()) from exc
        self.heavy_imports = tuple(sorted(_heavy_loaded() - heavy_before))
        problems = contract_problems(self.kind, obj)
        if problems:
            self.error = "does not satisfy the contract: " + "; ".join(problems)
            raise ContractError(
                f"{self.kind} plugin {self.name!r} ({self.distribution} {self.version}) "
                f"{self.error}; see kdreg.plugins.spec.{contract.BASES[self.kind].__name__}."
            )
        self._loaded = obj
        return obj

    def summary(self) -> str:
        """The one-line summary, or '' when the plugin is not (or cannot be) imported."""
        obj = self._loaded
        if obj is None:
            return ""
        text = getattr(obj, "summary", "")
        if not isinstance(text, str) or not text.strip():  # a plugin may shadow it with anything
            text = obj.__doc__ or ""
        return text.strip().splitlines()[0] if text.strip() else ""

    def _failure_message(self) -> str:
        return (
            f"{self.kind} plugin {self.name!r} from {self.distribution} {self.version} is broken: "
            f"{self.error} (reinstall or fix that package; `kdreg plugins` shows all)."
        )


def contract_problems(kind: str, obj: Any) -> list[str]:
    """What ``obj`` lacks to be a plugin of ``kind``; empty when it satisfies the contract."""
    if not isinstance(obj, type):
        return [f"entry point must name a class, got {type(obj).__name__}"]
    base = contract.BASES[kind]
    problems: list[str] = []
    for member in contract.REQUIRED[kind]:
        value = getattr(obj, member, None)
        if value is None:
            problems.append(f"missing member '{member}'")
        elif callable(getattr(base, member, None)) and value is getattr(base, member, None):
            problems.append(f"member '{member}' is not implemented")
        elif callable(getattr(base, member, None)) and not callable(value):
            problems.append(f"member '{member}' must be a method")
    params_cls = getattr(obj, "Params", contract.NoParams)
    if not (isinstance(params_cls, type) and dataclasses.is_dataclass(params_cls)):
        problems.append("member 'Params' must be a dataclass")
    if kind == "loss":
        needs = getattr(obj, "needs", frozenset())
        bad = set(needs) - set(get_args(contract.Output))
        if bad:
            problems.append(f"member 'needs' names unknown outputs {sorted(bad)}")
    return problems


def _allowed_distributions() -> set[str] | None:
    raw = os.environ.get(ALLOW_ENV, "").strip()
    if not raw:
        return None
    return {_normalize_dist(d) for d in raw.split(",") if d.strip()}


def _normalize_dist(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def strict() -> bool:
    """Whether plugin failures are errors (``KDREG_STRICT_PLUGINS=1``)."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class Registry:
    """All plugins of all kinds, discovered from entry-point metadata."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, PluginEntry]] = {kind: {} for kind in contract.KINDS}
        self._duplicates: list[str] = []
        allowed = _allowed_distributions()
        # One scan of the installed distributions, and each one's metadata parsed once: reading
        # it per entry point (as name, then as version) was most of a light command's plugin cost.
        everything = metadata.entry_points()
        described: dict[int, tuple[str, str]] = {}
        for kind, group in contract.KINDS.items():
            for ep in everything.select(group=group):
                dist = ep.dist
                if dist is None:
                    dist_name, version = "unknown", "unknown"
                else:
                    if id(dist) not in described:
                        meta = dist.metadata
                        described[id(dist)] = (meta["Name"], meta["Version"])
                    dist_name, version = described[id(dist)]
                if allowed is not None and _normalize_dist(dist_name) not in allowed:
                    continue
                entry = PluginEntry(kind, ep.name, ep.value, dist_name, version, ep)
                existing = self._by_kind[kind].get(ep.name)
                if existing is not None:
                    if _normalize_dist(existing.distribution) == _normalize_dist(dist_name):
                        continue  # the same distribution seen twice on sys.path
                    message = (
                        f"{kind} plugin {ep.name!r} is registered by both {existing.distribution} "
                        f"{existing.version} ({existing.value}) and {dist_name} {version} ({ep.value}); "
                        f"uninstall one, or limit loading with {ALLOW_ENV}."
                    )
                    self._duplicates.append(message)
                    existing.conflict = existing.conflict or message
                    continue
                self._by_kind[kind][ep.name] = entry

    # ------------------------------------------------------------ lookups
    def entries(self, kind: str | None = None) -> list[PluginEntry]:
        """Registered plugins (of one kind, or all), sorted by kind then name."""
        kinds = [kind] if kind else list(contract.KINDS)
        return [e for k in kinds for _, e in sorted(self._by_kind[k].items())]

    @property
    def duplicates(self) -> list[str]:
        """Messages for kind/name pairs that two distributions both register."""
        return list(self._duplicates)

    def entry(self, kind: str, name: str) -> PluginEntry:
        """The entry for ``kind``/``name``; unknown names suggest close matches, duplicates raise."""
        entries = self._by_kind[kind]
        if name in entries:
            if entries[name].conflict:
                raise DuplicatePluginError(entries[name].conflict)
            return entries[name]
        close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        allowed = os.environ.get(ALLOW_ENV, "").strip()
        if allowed:
            hint += f" Only the distributions in {ALLOW_ENV}={allowed[:60]!r} are loaded."
        raise UnknownPluginError(
            f"No {kind} plugin named {name!r}.{hint} `kdreg plugins --kind {kind}` lists them all."
        )

    def load_all(self) -> list[PluginEntry]:
        """Import every plugin (for `kdreg plugins --load` and checks); failures are recorded, not raised."""
        for entry in self.entries():
            try:
                entry.load()
            except PluginError:
                if strict():
                    raise
        return self.entries()

    def check_strict(self) -> None:
        """In strict mode, raise on duplicates (import failures raise where they happen)."""
        if strict() and self._duplicates:
            raise DuplicatePluginError(self._duplicates[0])

    # ------------------------------------------------------------ building
    def resolve(self, kind: str, text: str | PluginSpec) -> ResolvedPlugin:
        """Parse ``name:key=value`` and validate it against the plugin's parameters."""
        parsed = parse_spec(text) if isinstance(text, str) else text
        entry = self.entry(kind, parsed.name)
        cls = entry.load()
        params_cls = getattr(cls, "Params", contract.NoParams)
        params = build_params(parsed.name, params_cls, parsed.raw)
        spec = canonical_spec(parsed.name, params)  # non-default parameters only, field by field
        return ResolvedPlugin(entry=entry, cls=cls, params=params, spec=spec)


@dataclass
class ResolvedPlugin:
    """A plugin chosen by name with validated parameters; ``create()`` instantiates it."""

    entry: PluginEntry
    cls: type
    params: Any
    spec: str
    """Canonical ``name:key=value`` (only non-default parameters, sorted)."""
    _identity: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.entry.name

    def create(self) -> Any:
        """Instantiate the plugin with its parameters."""
        try:
            return self.cls(self.params)
        except ParameterError:
            raise
        except (ValueError, TypeError) as exc:
            raise ParameterError(
                f"{self.entry.kind} plugin {self.spec!r} rejected its parameters: {exc}"
            ) from exc

    def identity(self) -> dict[str, Any]:
        """What identifies this plugin in a run's canonical config: name, parameters, code version.

        Computed once (a grid asks for it in every combination); callers must not change it.
        """
        if self._identity is None:
            self._identity = {
                "name": self.entry.name,
                "params": params_to_dict(self.params),
                "distribution": self.entry.distribution,
                "version": self.entry.version,
            }
        return self._identity


@cache
def registry() -> Registry:
    """The process-wide registry (entry points are read once)."""
    reg = Registry()
    reg.check_strict()
    return reg
