"""runs.setup_hash: every run's setup (its canonical config without the seed), indexed

Revision ID: 0005
Revises: 0004

Reports averaged the runs that share teacher, student, stage, loss, benchmark and corpus
*specs*, so runs that differed only in hyper-parameters (or evaluated languages, or plugin
versions) were pooled into one row. A run's *setup* — the sha256 of its canonical config
without the seed — names exactly the runs that differ only by seed; reports group and
``kdreg compare`` pairs by it. Existing runs get theirs from their stored config, computed
as kdreg.identity.setup_hash computes it for new runs (a copy here, because a migration
must not change when kdreg's code does; a test holds the two equal).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 1000


def setup_hash(config: Any) -> str:
    """sha256 of the sorted, compact JSON of the config without its ``seed`` ({} for a non-mapping)."""
    setup = {k: v for k, v in config.items() if k != "seed"} if isinstance(config, dict) else {}
    text = json.dumps(setup, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def upgrade() -> None:
    # A plain ADD COLUMN (no table copy): SQLite supports it, and the results_flat view that
    # reads runs stays valid (a batch-mode copy would drop and recreate runs under it).
    op.add_column("runs", sa.Column("setup_hash", sa.String(length=64), nullable=False, server_default=""))
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("config", sa.JSON),
                    sa.column("setup_hash", sa.String))
    bind = op.get_bind()
    update = (runs.update().where(runs.c.id == sa.bindparam("run_id"))
              .values(setup_hash=sa.bindparam("hash")))
    last = 0
    while True:  # in id order and in batches, so a large store never sits in memory at once
        rows = bind.execute(sa.select(runs.c.id, runs.c.config).where(runs.c.id > last)
                            .order_by(runs.c.id).limit(BATCH)).all()
        if not rows:
            break
        bind.execute(update, [{"run_id": run_id, "hash": setup_hash(config)} for run_id, config in rows])
        last = rows[-1][0]
    op.create_index(op.f("ix_runs_setup_hash"), "runs", ["setup_hash"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_setup_hash"), table_name="runs")
    op.drop_column("runs", "setup_hash")  # SQLite ≥ 3.35 drops a column in place
