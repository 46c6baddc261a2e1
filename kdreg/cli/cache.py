"""``kdreg cache``: the intermediate models kdreg keeps (fine-tuned teachers, distilled students).

The listing says what each model is — its kind, the teacher/student/loss/benchmark or
corpus that made it, the seed — with its size and when a run last loaded it, so that
``kdreg cache clear`` can remove some (by name, kind or time unused; ``--dry-run`` first)
rather than a teacher that took an hour along with everything else.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import typer

from kdreg.cli.options import JsonOption
from kdreg.cli.output import console, print_json, render_rows
from kdreg.errors import ConfigError

cache_app = typer.Typer(help="Show what the model cache holds and how large it is, or clear some of it.")

UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
"""Duration units of --unused-for: minutes, hours, days, weeks."""


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} GB"


def _ago(moment: datetime, now: datetime) -> str:
    """``3m ago``, ``5h ago``, ``12d ago``: how long since a model was last used."""
    seconds = max(0.0, (now - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``, ``90m`` → a timedelta; anything else is a one-line ConfigError."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([mhdw])\s*", text.lower())
    if not match:
        raise ConfigError(f"--unused-for {text[:30]!r}: write a number and a unit m, h, d or w, e.g. 30d.")
    return timedelta(seconds=int(match.group(1)) * UNITS[match.group(2)])


def _require_folder(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"The cache folder {path} is a file; point KDREG_CACHE at a folder (or unset it).")


def _row(model: Any, now: datetime) -> dict[str, Any]:
    return {"model": model.name, "kind": model.kind, "what": model.description, "size": _human(model.size),
            "last used": _ago(model.last_used, now)}


def _record(model: Any) -> dict[str, Any]:
    """A model for --json: folder, kind, what made it, bytes, last use."""
    return {"model": f"{model.path.parent.name}/{model.path.name}", "name": model.name, "kind": model.kind,
            "description": model.description, "about": model.about, "bytes": model.size,
            "size": _human(model.size), "last_used": model.last_used.isoformat(timespec="seconds"),
            "path": str(model.path)}


@cache_app.callback(invoke_without_command=True)
def cache_info(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Where the cache is and, for each model, what it is, its size and when a run last used it."""
    if ctx.invoked_subcommand is not None:
        return
    from kdreg.paths import cache_dir
    from kdreg.pipeline.model_cache import list_models

    _require_folder(cache_dir())
    models = list_models()
    total = sum(m.size for m in models)
    if as_json:
        print_json({"path": str(cache_dir()), "bytes": total, "models": [_record(m) for m in models]})
        return
    now = datetime.now(timezone.utc)
    if models:
        render_rows([_row(m, now) for m in models], ["model", "kind", "what", "size", "last used"],
                    title="cached models (most recently used first)", no_wrap=("size",))
    console.print(f"{cache_dir()}: {_human(total)} in {len(models)} model(s)", markup=False)


def select_models(models: list[Any], names: list[str], kinds: list[str], unused_for: str | None,
                  now: datetime) -> list[Any]:
    """The models every given criterion picks: a name (or its start), a kind, unused for that long."""
    chosen = list(models)
    if names:
        unknown = [n for n in names if not any(_matches(m, n) for m in models)]
        if unknown:
            raise ConfigError(f"No cached model is named {unknown[0][:60]!r}; `kdreg cache` lists them.")
        chosen = [m for m in chosen if any(_matches(m, n) for n in names)]
    if kinds:
        known = sorted({m.kind for m in models} | {"teacher", "student-pretrained"})
        bad = [k for k in kinds if k not in known]
        if bad:
            raise ConfigError(f"Unknown model kind {bad[0][:40]!r}; use one of: {', '.join(known)}.")
        chosen = [m for m in chosen if m.kind in kinds]
    if unused_for is not None:
        cutoff = now - parse_duration(unused_for)
        chosen = [m for m in chosen if m.last_used <= cutoff]
    return chosen


def _matches(model: Any, name: str) -> bool:
    text = name.strip().rstrip("/")
    return bool(text) and (model.name.startswith(text) or model.path.name.startswith(text)
                           or f"{model.path.parent.name}/{model.path.name}".startswith(text))


@cache_app.command("clear")
def cache_clear(
    names: Annotated[list[str] | None, typer.Argument(
        help="Models to delete, as `kdreg cache` names them (or the start of a name); default: all.",
        show_default=False)] = None,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", "-k", show_default=False,
        help="Only this kind: teacher (fine-tuned teachers), student-pretrained (students distilled in "
             "pretraining) or a plugin's own (e.g. synthetic). Repeatable.")] = None,
    unused_for: Annotated[str | None, typer.Option(
        "--unused-for", metavar="DURATION", show_default=False,
        help="Only models no run has loaded for this long, e.g. 30d, 12h, 2w.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List what would be deleted; delete nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete cached models (all, or those the arguments select); runs re-create what they need.

    Nothing but kdreg's finished models is touched. Example: kdreg cache clear --kind student-pretrained
    --unused-for 30d --dry-run
    """
    from kdreg.paths import cache_dir
    from kdreg.pipeline.model_cache import clear, list_models

    _require_folder(cache_dir())
    now = datetime.now(timezone.utc)
    chosen = select_models(list_models(), names or [], kind or [], unused_for, now)
    size = sum(m.size for m in chosen)
    if not chosen:
        console.print("No cached model matches; nothing to delete.")
        return
    if dry_run or not yes:
        render_rows([_row(m, now) for m in chosen], ["model", "kind", "what", "size", "last used"],
                    title="would delete" if dry_run else "to delete", no_wrap=("size",))
    if dry_run:
        console.print(f"dry run: {len(chosen)} model(s), {_human(size)} would be freed; nothing was deleted")
        return
    if not yes and not typer.confirm(f"Delete {len(chosen)} model(s), {_human(size)}?"):
        raise typer.Exit(1)
    console.print(f"freed {_human(clear(m.path for m in chosen))} ({len(chosen)} model(s))")


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
