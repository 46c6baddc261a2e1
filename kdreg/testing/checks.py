"""Conformance checks for plugins, in the spirit of scikit-learn's ``check_estimator``.

A plugin author calls them from their own test suite::

    from kdreg.testing import assert_plugin_conforms

    def test_my_loss_conforms():
        assert_plugin_conforms("loss", MyLoss)             # the class itself, not yet installed
        assert_plugin_conforms("loss", "my-loss")          # through its entry point, once installed

and ``kdreg plugins check NAME`` runs the same checks from the command line. Each check
is one :class:`CheckResult` row (name, passed, reason), so a broken plugin gets a
reason per member instead of one traceback:

* **contract** — every member of the kind is present, implemented, and callable the
  way kdreg calls it (``inspect.signature`` against :mod:`kdreg.plugins.spec`);
* **parameters** — ``Params`` is a dataclass whose fields kdreg can parse, and the
  parameters survive their canonical text (see :mod:`kdreg.testing.param_checks`);
* **behaviour** — the plugin works on tiny real inputs (see :mod:`kdreg.testing.behaviour`).

Checks never stop at the first failure: a row that raises is a failed row whose reason
names the exception, and the next row runs.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, get_args

from kdreg.plugins import spec as contract


@dataclass(frozen=True)
class CheckResult:
    """One row of a conformance report."""

    name: str
    passed: bool
    reason: str = ""
    skipped: bool = False
    """A check that could not apply (a refusal the plugin declares in ``check_setup.skips``, a missing
    built-in teacher to build students from); never a failure."""

    @property
    def status(self) -> str:
        """'pass', 'fail' or 'skip'."""
        return "skip" if self.skipped else ("pass" if self.passed else "fail")


class CheckFailed(Exception):
    """Raised inside a check: the row fails with this message as its reason."""


class CheckSkipped(Exception):
    """Raised inside a check: the row is skipped with this message as its reason."""


@dataclass
class CheckContext:
    """What the checks of one plugin share: the class, its name and, once built, params and instance."""

    kind: str
    cls: Any
    name: str
    teacher: Any = None
    """Student checks: a Teacher instance or ``name:key=value`` spec; None uses a tiny ``hf`` teacher."""
    params: Any = None
    instance: Any = None
    setup: contract.CheckSetup = field(default_factory=contract.CheckSetup)
    """What the plugin class declares for its checks (``check_setup``; defaults when it declares none)."""
    rows: list[CheckResult] = field(default_factory=list)

    @contextmanager
    def row(self, name: str) -> Iterator[list[str]]:
        """Run one check: yields a one-element list for its pass reason; exceptions become the row."""
        note = [""]
        try:
            yield note
        except CheckSkipped as exc:
            self.rows.append(CheckResult(name, True, str(exc), skipped=True))
        except CheckFailed as exc:
            self.rows.append(CheckResult(name, False, str(exc)))
        except Exception as exc:  # a plugin may raise anything: report it and go on
            self.rows.append(CheckResult(name, False, describe_exception(exc)))
        else:
            self.rows.append(CheckResult(name, True, note[0]))

    def skip(self, name: str, reason: str) -> None:
        self.rows.append(CheckResult(name, True, reason, skipped=True))

    @property
    def failed(self) -> bool:
        return any(r.status == "fail" for r in self.rows)


def describe_exception(exc: BaseException) -> str:
    """``TypeName: first line of the message`` (at most 300 characters)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text[:300]


def _check_here(instance: Any) -> None:
    """``instance.check()``; a model or dataset to obtain (not a flaw of the plugin) skips the row.

    Offline, ``plugins check mbert`` cannot load mBERT: that says nothing about the plugin's
    code. Malformed local data (an error naming nothing to obtain) still fails the check.
    """
    from kdreg.errors import ObtainableError

    try:
        instance.check()
    except ObtainableError as exc:
        if not exc.missing:
            raise
        raise CheckSkipped(f"not available here: {describe_exception(exc)}") from exc


# ----------------------------------------------------------------- public API
def check_plugin(
    kind: str, cls_or_name: Any, params: Any = None, *, teacher: Any = None
) -> list[CheckResult]:
    """Run every conformance check for one plugin; never raises for a broken plugin.

    ``cls_or_name`` is the plugin class, or the name of an installed plugin (``name`` or
    ``name:key=value,...``). ``params`` is None (the defaults), ``"key=value,..."`` text
    parsed as on the command line, a mapping of typed values, or a ``Params`` instance.
    ``teacher`` (student checks only) is a Teacher instance or a teacher spec; by default a
    tiny BERT saved to a temporary folder, loaded through the built-in ``hf`` teacher.
    """
    from kdreg.errors import ConfigError

    if kind not in contract.KINDS:
        raise ConfigError(f"Unknown plugin kind {kind!r}; use one of: {', '.join(contract.KINDS)}.")
    ctx, spec_raw = _context(kind, cls_or_name, teacher)
    if ctx.cls is None:
        return ctx.rows
    check_contract(ctx)
    contract_ok = not ctx.failed
    from kdreg.testing.param_checks import check_params

    given = params if params is not None else (spec_raw or None)
    check_params(ctx, given if given is not None else ctx.setup.params)
    if ctx.params is not None:
        with ctx.row("instantiate") as note:
            ctx.instance = ctx.cls(ctx.params)
            note[0] = f"{_class_name(ctx.cls)}(params)"
    if ctx.instance is None:
        ctx.skip("behaviour", "not run: the plugin could not be instantiated")
        return ctx.rows
    if callable(getattr(ctx.instance, "check", None)):
        with ctx.row("check()") as note:
            _check_here(ctx.instance)
            note[0] = "no error"
        if ctx.rows[-1].skipped:  # a model or dataset this machine cannot have: nothing to judge
            ctx.skip("behaviour", "not run: it needs what check() could not find here")
            return ctx.rows
    if not contract_ok or ctx.failed:
        what = "contract failures" if not contract_ok else "failures"
        ctx.skip("behaviour", f"not run: fix the {what} above first")
        return ctx.rows
    from kdreg.testing import behaviour

    behaviour.BEHAVIOURS[kind](ctx)
    return ctx.rows


def assert_plugin_conforms(
    kind: str, cls_or_name: Any, params: Any = None, *, teacher: Any = None
) -> list[CheckResult]:
    """:func:`check_plugin`, raising AssertionError that lists every failed check (for pytest)."""
    results = check_plugin(kind, cls_or_name, params, teacher=teacher)
    failures = [r for r in results if r.status == "fail"]
    if failures:
        label = cls_or_name if isinstance(cls_or_name, str) else _class_name(cls_or_name)
        lines = [f"{kind} plugin {label} fails {len(failures)} conformance check(s):"]
        lines += [f"  - {r.name}: {r.reason}" for r in failures]
        raise AssertionError("\n".join(lines))
    return results


# ----------------------------------------------------------------- resolution
def _class_name(cls: Any) -> str:
    return getattr(cls, "__qualname__", None) or type(cls).__name__


def _context(kind: str, cls_or_name: Any, teacher: Any) -> tuple[CheckContext, tuple[tuple[str, str], ...]]:
    """The context for a class, or for an installed plugin found by name (import failures are a row)."""
    if not isinstance(cls_or_name, str):
        name = getattr(cls_or_name, "__name__", "plugin").lower()
        return CheckContext(kind, cls_or_name, name, teacher), ()
    from kdreg.errors import ContractError, KdregError
    from kdreg.plugins.params import parse_spec
    from kdreg.plugins.registry import registry

    ctx = CheckContext(kind, None, cls_or_name, teacher)
    heavy_before: list[str] = []
    with ctx.row("import") as note:
        parsed = parse_spec(cls_or_name)
        ctx.name = parsed.name
        entry = registry().entry(kind, parsed.name)
        if entry.status != "not loaded":
            heavy_before = ["(imported earlier in this process)"]
        heavy_before = heavy_before or [m for m in HEAVY if m in sys.modules]
        try:
            ctx.cls = entry.load()
        except ContractError:
            # The registry refuses it; import it anyway so every member gets its own row.
            from importlib.metadata import EntryPoint

            ctx.cls = EntryPoint(entry.name, entry.value, contract.KINDS[kind]).load()
        except KdregError as exc:
            raise CheckFailed(str(exc)) from None
        note[0] = f"{entry.value} from {entry.distribution} {entry.version}"
    if ctx.cls is None:
        return ctx, ()
    with ctx.row("import: light") as note:
        heavy = getattr(entry, "heavy_imports", ())
        if heavy:
            raise CheckFailed(
                f"importing {entry.value.partition(':')[0]} imports {', '.join(heavy)} at module level, "
                "which slows down every `kdreg plugins`; import it inside the methods that need it"
            )
        note[0] = (
            f"only partly measurable: {', '.join(heavy_before)} already imported"
            if heavy_before
            else "no torch, transformers or datasets at import"
        )
    return ctx, parsed.raw


# ------------------------------------------------------------------- contract
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "teacher": (),
    "student": (),
    "loss": ("needs", "uses_teacher"),
    "benchmark": ("metrics", "eval_splits"),
    "corpus": (),
    "executor": (),
}
"""Class attributes (not methods) of each kind, checked for type and allowed values."""

HEAVY = ("torch", "transformers", "datasets")
"""Libraries a plugin module should import lazily (inside the methods that need them)."""
OUTPUTS = frozenset(get_args(contract.Output))
METRICS = frozenset({"accuracy", "macro_f1"})
EVAL_SPLITS = frozenset({"validation", "test"})


def contract_methods(kind: str) -> list[str]:
    """The methods kdreg may call on a plugin of ``kind`` (from the base classes in the spec)."""
    names: list[str] = []
    for klass in reversed(contract.BASES[kind].__mro__):
        if klass is object:
            continue
        for member, value in vars(klass).items():
            if inspect.isfunction(value) and not member.startswith("_") and member not in names:
                names.append(member)
    return names


def check_contract(ctx: CheckContext) -> None:
    """One row per member: present, implemented (required ones), callable as kdreg calls it."""
    base = contract.BASES[ctx.kind]
    required = set(contract.REQUIRED[ctx.kind])
    with ctx.row("contract: class") as note:
        if not isinstance(ctx.cls, type):
            raise CheckFailed(f"the entry point must name a class, got {type(ctx.cls).__name__}")
        note[0] = (
            f"subclasses kdreg.plugins.spec.{base.__name__}"
            if issubclass(ctx.cls, base)
            else (f"does not subclass kdreg.plugins.spec.{base.__name__}: every member must be defined")
        )
    if not isinstance(ctx.cls, type):
        return
    with ctx.row("contract: __init__") as note:
        _check_signature(ctx.cls, "__init__", base, required=True)
        note[0] = "takes the Params instance"
    for member in contract_methods(ctx.kind):
        with ctx.row(f"contract: {member}") as note:
            note[0] = _check_signature(ctx.cls, member, base, required=member in required)
    for member in ATTRIBUTES[ctx.kind]:
        with ctx.row(f"contract: {member}") as note:
            note[0] = _check_attribute(ctx.kind, ctx.cls, member)
    with ctx.row("contract: summary") as note:
        text = getattr(ctx.cls, "summary", "") or ctx.cls.__doc__ or ""
        if not isinstance(text, str) or not text.strip():
            raise CheckFailed("no 'summary' and no docstring: `kdreg plugins` would show an empty summary")
        note[0] = text.strip().splitlines()[0][:80]
    setup = getattr(ctx.cls, "check_setup", None)
    if setup is not None:
        with ctx.row("contract: check_setup") as note:
            if not isinstance(setup, contract.CheckSetup):
                raise CheckFailed(
                    "'check_setup' must be a kdreg.plugins.spec.CheckSetup or None, "
                    f"not {type(setup).__name__}"
                )
            ctx.setup = setup
            note[0] = describe_setup(setup)


def describe_setup(setup: contract.CheckSetup) -> str:
    """What a plugin's CheckSetup changes, in a few words."""
    parts = [f"params {setup.params}"] if setup.params else []
    parts += [f"{side} geometry" for side in ("teacher", "student") if getattr(setup, side) is not None]
    parts += [f"declared skip of {name!r}" for name in setup.skips]
    return "; ".join(parts) or "defaults"


def _check_signature(cls: type, member: str, base: type, *, required: bool) -> str:
    """Whether ``cls.member`` can be called with the arguments kdreg passes to ``base.member``."""
    where = f"kdreg.plugins.spec.{base.__name__}.{member}"
    if not hasattr(cls, member):
        hint = "" if required else f" (subclass kdreg.plugins.spec.{base.__name__} to inherit its default)"
        raise CheckFailed(f"'{member}' is missing{hint}")
    value = getattr(cls, member)
    base_value = getattr(base, member, None) if member != "__init__" else contract.Plugin.__init__
    if required and member != "__init__" and value is base_value:
        raise CheckFailed(
            f"'{member}' is not implemented (it is still {where}, which raises NotImplementedError)"
        )
    if not callable(value):
        raise CheckFailed(f"'{member}' must be a method, not {type(value).__name__}")
    if value is base_value or base_value is None:
        return "inherited default"
    expected = inspect.signature(base_value)
    arguments = list(expected.parameters)[1:]  # without self
    try:
        actual = inspect.signature(value)
    except (TypeError, ValueError):
        return "signature not inspectable; assumed compatible"
    static = inspect.getattr_static(cls, member, None)
    needs_self = not isinstance(static, (staticmethod, classmethod)) and inspect.isfunction(value)
    try:
        actual.bind(*([None] if needs_self else []), *arguments)
    except TypeError:
        plain = actual.replace(
            parameters=[p.replace(annotation=inspect.Parameter.empty) for p in actual.parameters.values()],
            return_annotation=inspect.Signature.empty,
        )
        shown = f"{member}{plain}"
        raise CheckFailed(
            f"'{shown}' cannot be called as kdreg calls it, {member}({', '.join(['self', *arguments])}) "
            f"(see {where})"
        ) from None
    names = [p for p in actual.parameters if p != "self"][: len(arguments)]
    if names != arguments:
        return f"parameter names {names} differ from {arguments}; kdreg passes them by position"
    return f"{member}({', '.join(['self', *arguments])})" if member != "__init__" else "ok"


def _check_attribute(kind: str, cls: type, member: str) -> str:
    base = contract.BASES[kind]
    if not hasattr(cls, member):
        raise CheckFailed(
            f"'{member}' is missing (subclass kdreg.plugins.spec.{base.__name__} to inherit its default)"
        )
    value = getattr(cls, member)
    if member == "uses_teacher":
        if not isinstance(value, bool):
            raise CheckFailed(f"'uses_teacher' must be True or False, not {value!r}")
        return str(value)
    if isinstance(value, str) or not isinstance(value, (set, frozenset, tuple, list)):
        raise CheckFailed(
            f"'{member}' must be a collection of strings (e.g. a frozenset or tuple), not {value!r}"
        )
    allowed = {"needs": OUTPUTS, "metrics": METRICS, "eval_splits": EVAL_SPLITS}[member]
    unknown = sorted(str(v) for v in value if v not in allowed)
    if unknown:
        raise CheckFailed(
            f"'{member}' names {unknown}, which kdreg does not know (allowed: {sorted(allowed)})"
        )
    if not value:
        raise CheckFailed(f"'{member}' is empty")
    return ", ".join(sorted(value))
