"""``kdreg plugins``: what is installed, from which distribution, and whether it loads."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from kdreg.cli.options import JsonOption
from kdreg.cli.output import console, print_json, render_rows

plugins_app = typer.Typer(
    help="List and inspect teacher, student, loss, benchmark, corpus and executor plugins.")

KindOption = Annotated[
    str | None,
    typer.Option("--kind", "-k", help="Only this kind: teacher, student, loss, benchmark, corpus, executor."),
]


def _check_kind(kind: str | None) -> None:
    from kdreg.errors import ConfigError
    from kdreg.plugins.spec import KINDS

    if kind is not None and kind not in KINDS:
        raise ConfigError(f"Unknown plugin kind {kind[:40]!r}; use one of: {', '.join(KINDS)}.")


@plugins_app.callback(invoke_without_command=True)
def list_plugins(
    ctx: typer.Context,
    kind: KindOption = None,
    load: Annotated[
        bool, typer.Option("--load/--no-load", help="Import each plugin to show its summary and status.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """List plugins with kind, name, distribution, version, summary and status."""
    if ctx.invoked_subcommand is not None:
        return
    from kdreg.plugins.registry import registry

    _check_kind(kind)
    reg = registry()
    if load:
        reg.load_all()
    rows = [
        {
            "kind": e.kind,
            "name": e.name,
            "distribution": e.distribution,
            "version": e.version,
            "summary": e.summary(),
            "status": e.status,
            "error": e.conflict or e.error,
            "heavy_imports": list(e.heavy_imports),
        }
        for e in reg.entries(kind)
    ]
    if as_json:
        print_json({"plugins": rows, "duplicates": reg.duplicates})
        return
    render_rows(rows, ["kind", "name", "distribution", "version", "status", "summary"], title="kdreg plugins")
    for e in reg.entries(kind):
        if e.error and not e.conflict:
            console.print(
                f"[red]broken[/] {escape(f'{e.kind} {e.name!r} ({e.distribution} {e.version}): {e.error}')}",
                soft_wrap=True,
            )
    for e in reg.entries(kind):
        if e.heavy_imports:
            console.print(
                f"[yellow]slow[/] {escape(f'{e.kind} {e.name!r} ({e.value})')} imports "
                f"{', '.join(e.heavy_imports)} when loaded; import them inside functions instead.",
                soft_wrap=True,
            )
    for message in reg.duplicates:
        if kind is None or message.startswith(f"{kind} plugin "):
            console.print(f"[red]duplicate[/] {escape(message)}", soft_wrap=True)


@plugins_app.command("show")
def show_plugin(
    name: Annotated[
        str,
        typer.Argument(
            help="Plugin name, KIND/NAME when several kinds share it, or NAME:key=value to check parameters."
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """A plugin's summary and its parameters with types, defaults and help."""
    from kdreg.plugins.describe import describe

    info = describe(name)
    if as_json:
        print_json(info)
        return
    for item in info:
        origin = f"{item['distribution']} {item['version']} ({item['entry_point']})"
        console.print(
            f"[bold]{escape(item['kind'])} {escape(item['name'])}[/] — {escape(item['summary'])}\n"
            f"  from {escape(origin)}",
            soft_wrap=True,
        )
        if item.get("error"):
            console.print(f"  [red]{item['status']}[/]: {escape(item['error'])}", soft_wrap=True)
        elif item["params"]:
            shown = [{**p, "default": "None" if p["default"] is None else p["default"]}
                     for p in item["params"]]
            render_rows(shown, ["parameter", "type", "default", "help"])
        else:
            console.print("  no parameters")
        if "spec" in item:
            console.print(f"  canonical spec: {escape(item['spec'])}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")
    from kdreg.cli import plugins_dev; plugins_dev.register(plugins_app)  # noqa: E702, I001 (check, new)
