"""``kdreg status [GRID]``: a grid in progress — runs by status, models built, what runs where and since when.

It reads the store only (no torch), so it is as quick to run while a grid trains in
another terminal, on another machine sharing the database, or on a cluster.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kdreg.cli.options import DbOption, JsonOption
from kdreg.cli.output import console, print_json, render_rows

ORDER = ("pending", "running", "stale", "succeeded", "failed", "interrupted")


def status(
    grid: Annotated[int | None, typer.Argument(
        help="Grid id (default: the latest grid).", show_default=False)] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Show a grid's progress: runs by status (stale: its process died), models built, running tasks."""
    from kdreg.store.liveness import stale_seconds
    from kdreg.store.reading import open_reader

    stale_limit = stale_seconds()  # a bad KDREG_STALE_SECONDS is one line, before any reading
    store: Any = open_reader(db)
    if store.journals():  # a cluster grid's outcomes wait in files: record what has arrived
        store.close()
        from kdreg.execution.journal import collect
        from kdreg.store.store import open_store

        store = open_store(db)
        collect(store)
    try:
        _show(store, grid, as_json, stale_limit)
    finally:
        store.close()


def _show(store: Any, grid: int | None, as_json: bool, stale_limit: float) -> None:
    from kdreg.errors import RunNotFoundError
    from kdreg.store.liveness import describe_age

    grid_id = grid if grid is not None else store.latest_grid_id()
    if grid_id is None:
        raise RunNotFoundError("The store has no grid yet; `kdreg run` starts one.")
    if not 0 < grid_id < 2**63:
        raise RunNotFoundError(f"No grid {grid_id}; `kdreg status` shows the latest one.")
    progress = store.grid_progress(grid_id)
    if progress is None:
        raise RunNotFoundError(f"No grid {grid_id}; `kdreg status` shows the latest one.")
    _engine_view(progress)
    if as_json:
        print_json(_as_dict(progress, stale_limit))
        return
    console.print(f"grid {grid_id}: {progress.total} runs — {_counts(progress.runs)}", markup=False)
    queued = f" · {progress.submitted} task(s) with the executor" if progress.submitted else ""
    console.print(f"models built {progress.artifacts_done}/{progress.artifacts}{queued} · {progress.command}",
                  markup=False)
    if progress.running:
        rows = [{"task": t.label, "state": t.state, "where": _where(t), "for": describe_age(t.seconds),
                 "heartbeat": describe_age(t.heartbeat_age) + (" stale" if t.stale else ""),
                 "log": t.log_path} for t in progress.running]
        render_rows(rows, ["task", "state", "where", "for", "heartbeat", "log"], title="running now")
    if progress.runs.get("stale"):
        console.print(f"stale: running, but no heartbeat for over {stale_limit:.0f}s (its process "
                      "died); `kdreg run` runs it again.", markup=False)


def _engine_view(progress: Any) -> None:
    """What the engine and the journal say of tasks an engine has: its job state, where, the heartbeat."""
    submitted = [t for t in progress.running if t.state == "submitted"]
    if not submitted:
        return
    from pathlib import Path

    from kdreg.execution.journal import entries

    states: dict[str, str] = {}
    try:
        from kdreg.execution.engines import executor_plugin

        ids = [t.external_id for t in submitted if t.external_id]
        states = executor_plugin(progress.executor).states(ids)
    except Exception:  # no engine here to ask (another machine, the plugin gone): the store's view only
        pass
    journal = {e.key: e for e in entries(Path(progress.journal))} if progress.journal else {}
    for task in submitted:
        engine_state = states.get(task.external_id or "", "")
        task.state = f"submitted ({engine_state.lower()})" if engine_state else "submitted"
        entry = journal.get(task.key)
        if entry is not None and entry.started is not None:
            started = entry.started.get("outcome", {})
            task.host, task.pid, task.device = started.get("host"), started.get("pid"), started.get("device")
            task.heartbeat_age = entry.heartbeat_age
            task.state = f"running ({engine_state.lower() or 'journal'})"


def _counts(runs: dict[str, int]) -> str:
    names = [s for s in ORDER if s in runs] + sorted(s for s in runs if s not in ORDER)
    return ", ".join(f"{runs[s]} {s}" for s in names) or "none"


def _where(task: Any) -> str:
    parts = [task.host or "", f"pid {task.pid}" if task.pid else "", task.device or ""]
    if task.external_id:
        parts.append(f"job {task.external_id}")
    return " · ".join(p for p in parts if p)


def _as_dict(progress: Any, stale_limit: float) -> dict[str, Any]:
    return {
        "grid": progress.grid_id,
        "command": progress.command,
        "created_at": progress.created_at.isoformat() if progress.created_at else None,
        "runs": progress.runs,
        "total": progress.total,
        "models": {"built": progress.artifacts_done, "total": progress.artifacts},
        "submitted": progress.submitted,
        "stale_after_seconds": stale_limit,
        "executor": progress.executor,
        "running": [{"key": t.key, "kind": t.kind, "label": t.label, "state": t.state, "run_id": t.run_id,
                     "host": t.host, "pid": t.pid, "device": t.device, "external_id": t.external_id,
                     "log": t.log_path,
                     "seconds": t.seconds, "heartbeat_age": t.heartbeat_age, "stale": t.stale}
                    for t in progress.running],
    }


def register(app: typer.Typer) -> None:
    app.command("status")(status)
