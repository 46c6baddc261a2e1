"""``kdreg cache``: the intermediate models kdreg keeps (fine-tuned teachers, distilled students)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kdreg.cli.options import JsonOption
from kdreg.cli.output import console, print_json, render_rows
from kdreg.errors import ConfigError

cache_app = typer.Typer(help="Show the size of the model cache, list it, or clear it.")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} GB"


def _require_folder(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"The cache folder {path} is a file; point KDREG_CACHE at a folder (or unset it).")


@cache_app.callback(invoke_without_command=True)
def cache_info(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Where the cache is, what it holds and how large it is."""
    if ctx.invoked_subcommand is not None:
        return
    from kdreg.paths import cache_dir
    from kdreg.pipeline.model_cache import cached_models, folder_size

    _require_folder(cache_dir())
    sizes = {p: folder_size(p) for p in cached_models()}
    rows = [{"model": f"{p.parent.name}/{p.name}", "size": _human(size), "bytes": size}
            for p, size in sizes.items()]
    total = sum(sizes.values())
    if as_json:
        print_json({"path": str(cache_dir()), "bytes": total, "models": rows})
        return
    if rows:
        render_rows(rows, ["model", "size"], title="cached models")
    console.print(f"{cache_dir()}: {_human(total)} in {len(rows)} model(s)")


@cache_app.command("clear")
def cache_clear(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every cached model (they are re-created when a run needs them); nothing else is touched."""
    from kdreg.paths import cache_dir
    from kdreg.pipeline.model_cache import cached_models, clear, folder_size

    _require_folder(cache_dir())
    size = sum(folder_size(p) for p in cached_models())
    if not yes and not typer.confirm(f"Delete {_human(size)} of cached models?"):
        raise typer.Exit(1)
    console.print(f"freed {_human(clear())}")


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
