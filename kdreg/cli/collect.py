"""``kdreg collect``: record the outcomes that cluster tasks left in their grids' journals.

With an SQLite store, tasks on other nodes write their outcome as files on the shared
file system instead of into the database (see docs/cluster.md); ``kdreg status`` and
``kdreg run`` record what has arrived whenever they run, and this command does it alone.
"""

from __future__ import annotations

import typer

from kdreg.cli.options import DbOption
from kdreg.cli.output import console


def collect(db: DbOption = None) -> None:
    """Record the outcomes cluster tasks left in their grids' journals (idempotent)."""
    from kdreg.execution.journal import collect as collect_journals
    from kdreg.store.store import open_store

    store = open_store(db)
    try:
        done = collect_journals(store)
    finally:
        store.close()
    counts = ", ".join(f"{n} {status}" for status, n in sorted(done.recorded.items()))
    console.print(f"recorded {done.new} outcome(s)" + (f" ({counts})" if counts else ""), markup=False)


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)
