"""``kdreg plugins check`` and ``kdreg plugins new``: tools for people who write plugins.

``check`` runs :mod:`kdreg.testing`'s conformance checks on installed plugins and prints
one row per check, so a broken plugin is told which member to fix; one plugin failing
never stops the others from being checked. ``new`` writes a ready-to-install package
(pyproject with the entry point, the plugin module, a README and a test that runs the
same checks) from the templates in ``kdreg/cli/templates/``.

Both are registered onto ``kdreg plugins`` by :func:`register`; torch is imported only
when a check needs it, so ``kdreg plugins --help`` stays light.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Annotated, Any

import typer

from kdreg.cli.options import JsonOption
from kdreg.cli.output import console, err_console, print_json, render_rows

TEMPLATES = Path(__file__).with_name("templates")

USAGE: dict[str, str] = {
    "teacher": "kdreg run --teacher $name:path=/models/teacher --stage none",
    "student": "kdreg run --teacher mbert --student $name:layers=2 --stage finetune",
    "loss": "kdreg run --teacher mbert --loss $name:temperature=2 --stage finetune",
    "benchmark": "kdreg run --teacher mbert --benchmark $name --stage none",
    "corpus": "kdreg run --teacher mbert --corpus $name --stage pretrain",
    "executor": "kdreg run --executor $name:verbose=true",
}
SUMMARIES: dict[str, str] = {
    "teacher": "The $name teacher: pre-trained weights from a saved folder or the hub.",
    "student": "The $name student: the teacher's architecture with its first layers.",
    "loss": "The $name distillation loss (say here what it computes).",
    "benchmark": "The $name benchmark: a labelled task in several languages (say here which).",
    "corpus": "The $name corpus: unlabeled text per language (say here where it comes from).",
    "executor": "The $name executor: runs a grid's tasks (say here where: a cluster, a queue, ...).",
}
"""The generated plugin's one-line summary (what `kdreg plugins` shows), for the kind and name asked for."""
TEST_PARAMS: dict[str, str] = {
    "teacher": "    from kdreg.testing.tiny import save_tiny_bert\n\n"
    '    return {"path": save_tiny_bert(tmp_path_factory.mktemp("tiny-teacher"))}',
}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")


# ---------------------------------------------------------------------- check
def _targets(names: list[str], kind: str | None) -> list[tuple[str, str]]:
    """(kind, spec) pairs: KIND/NAME, --kind, or every kind that has the name."""
    from kdreg.plugins.params import parse_spec
    from kdreg.plugins.registry import registry
    from kdreg.plugins.spec import KINDS

    targets: list[tuple[str, str]] = []
    for text in names:
        prefix, sep, rest = text.partition("/")
        if sep and prefix in KINDS:
            targets.append((prefix, rest))
            continue
        if kind is not None:
            targets.append((kind, text))
            continue
        bare = parse_spec(text).name
        kinds = [k for k in KINDS if any(e.name == bare for e in registry().entries(k))]
        targets.extend((k, text) for k in kinds or [None])  # type: ignore[list-item]
    return targets


def _check_one(kind: str | None, text: str, params: str | None, teacher: str | None) -> list[Any]:
    from kdreg.plugins.params import parse_spec
    from kdreg.testing.checks import CheckResult, check_plugin

    if kind is None:
        import difflib

        from kdreg.plugins.registry import registry

        bare = parse_spec(text).name
        close = difflib.get_close_matches(
            bare, sorted({e.name for e in registry().entries()}), n=3, cutoff=0.5
        )
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return [
            CheckResult("import", False, f"No plugin named {bare!r}.{hint} `kdreg plugins` lists them all.")
        ]
    return check_plugin(kind, text, params, teacher=teacher)


def check_command(
    names: Annotated[list[str], typer.Argument(help="Plugin name(s): NAME, KIND/NAME or NAME:key=value,...")],
    kind: Annotated[
        str | None,
        typer.Option("--kind", "-k", help="The kind, when a name is registered for several kinds."),
    ] = None,
    params: Annotated[
        str | None, typer.Option("--params", "-p", help="Parameters key=value,... to check the plugin with.")
    ] = None,
    teacher: Annotated[
        str | None,
        typer.Option("--teacher", help="Teacher spec to build students from (default: a tiny hf teacher)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the conformance checks of kdreg.testing on installed plugins; exit 1 if any fails."""
    from kdreg.errors import ConfigError
    from kdreg.plugins.spec import KINDS

    if kind is not None and kind not in KINDS:
        raise ConfigError(f"Unknown plugin kind {kind[:40]!r}; use one of: {', '.join(KINDS)}.")
    if params is not None and len(names) > 1:
        raise ConfigError("--params applies to one plugin; give parameters as NAME:key=value for several.")
    reports = []
    for plugin_kind, text in _targets(names, kind):
        results = _check_one(plugin_kind, text, params, teacher)
        reports.append(
            {
                "kind": plugin_kind,
                "name": text,
                "passed": all(r.status != "fail" for r in results),
                "checks": [{"check": r.name, "status": r.status, "reason": r.reason} for r in results],
            }
        )
    if as_json:
        print_json({"plugins": reports})
    else:
        _print_reports(reports)
    if not all(r["passed"] for r in reports):
        raise typer.Exit(1)


def _print_reports(reports: list[dict[str, Any]]) -> None:
    """One table per plugin, then one verdict line per plugin."""
    for r in reports:
        render_rows(r["checks"], ["check", "status", "reason"], title=f"{r['kind'] or '?'} {r['name']}")
    for r in reports:
        counts = {s: sum(c["status"] == s for c in r["checks"]) for s in ("pass", "fail", "skip")}
        untested = any(c["check"] == "behaviour" and c["status"] == "skip" for c in r["checks"])
        verdict, colour = (("FAILS", "red") if not r["passed"] else
                           ("not fully checked here", "yellow") if untested else ("conforms", "green"))
        console.print(
            f"[{colour}]{verdict}[/] {r['kind'] or '?'} {r['name']}: "
            f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped",
            markup=True,
            highlight=False,
            soft_wrap=True,
        )
        # Each failure once more on one unfolded line: a narrow table folds the reason, which
        # is where the check says what to change.
        for c in r["checks"]:
            if c["status"] == "fail" or (untested and c["status"] == "skip"):
                console.print(f"  {c['check']}: {c['reason']}", markup=False, highlight=False, soft_wrap=True)


# ------------------------------------------------------------------------ new
def package_names(kind: str, name: str) -> dict[str, str]:
    """Distribution, module and class names for a plugin called ``name`` (e.g. my-loss)."""
    from kdreg.errors import ConfigError
    from kdreg.plugins.spec import KINDS

    if kind not in KINDS:
        raise ConfigError(f"Unknown plugin kind {kind[:40]!r}; use one of: {', '.join(KINDS)}.")
    if not _NAME.match(name):
        raise ConfigError(
            f"Plugin name {name[:40]!r} must start with a letter and use up to 64 letters, digits, '-', '_'."
        )
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    distribution = slug if slug.startswith("kdreg-") else f"kdreg-{slug}"
    class_name = "".join(part.capitalize() for part in slug.split("-"))
    if not class_name.endswith(kind.capitalize()):
        class_name += kind.capitalize()
    return {
        "name": name,
        "kind": kind,
        "group": KINDS[kind],
        "distribution": distribution,
        "module": distribution.replace("-", "_"),
        "class_name": class_name,
    }


def write_plugin_package(kind: str, name: str, target: Path) -> list[Path]:
    """Write a ready-to-install plugin package into ``target`` (created; must be empty); the files written."""
    from kdreg import __version__
    from kdreg.errors import ConfigError

    values = package_names(kind, name)
    values["summary"] = Template(SUMMARIES[kind]).substitute(values)
    values["kdreg_version"] = __version__
    values["usage"] = Template(USAGE[kind]).substitute(values)
    values["params_body"] = TEST_PARAMS.get(kind, "    return None")
    _refuse_taken_name(kind, name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} exists and is not empty; choose another --dir.")
    module = values["module"]
    layout = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        f"src/{module}/__init__.py": "__init__.py.tmpl",
        f"src/{module}/plugin.py": f"{kind}.py.tmpl",
        f"tests/test_{module}.py": "test_plugin.py.tmpl",
    }
    written = []
    try:
        for relative, template in layout.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            text = Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(values)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as exc:
        raise ConfigError(f"Cannot write the package into {target}: {exc.strerror or exc}.") from None
    return written


def _refuse_taken_name(kind: str, name: str) -> None:
    """Two installed plugins of one kind and name are an error, so a new one needs a name of its own."""
    from kdreg.errors import ConfigError
    from kdreg.plugins.registry import registry

    taken = {e.name.lower(): e for e in registry().entries(kind)}
    entry = taken.get(name.lower())
    if entry is not None:
        raise ConfigError(
            f"A {kind} plugin named {entry.name!r} is already installed (from {entry.distribution} "
            f"{entry.version}); both could not be installed together, so choose another name."
        )


def new_command(
    kind: Annotated[str, typer.Argument(help="teacher, student, loss, benchmark, corpus or executor.")],
    name: Annotated[str, typer.Argument(help="The plugin's name, e.g. my-loss (used as --loss my-loss).")],
    directory: Annotated[
        Path | None, typer.Option("--dir", "-d", help="Folder to create (default: ./kdreg-NAME).")
    ] = None,
) -> None:
    """Write a ready-to-install plugin package: pyproject with the entry point, module, README, test."""
    names = package_names(kind, name)
    target = directory if directory is not None else Path.cwd() / names["distribution"]
    written = write_plugin_package(kind, name, target)
    for path in written:
        err_console.print(f"  wrote {path}", markup=False, highlight=False)
    console.print(
        f"Created {names['distribution']} ({kind} plugin {name!r}) in {target}.\n"
        f"Next: pip install -e {target} && kdreg plugins check {name} --kind {kind} && pytest {target}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def register(plugins_app: typer.Typer) -> None:
    """Add ``check`` and ``new`` to the ``kdreg plugins`` group."""
    plugins_app.command("check")(check_command)
    plugins_app.command("new")(new_command)
