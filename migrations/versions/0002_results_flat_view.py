"""results_flat: one row per result with its run's columns, for sqlite3, pandas and Datasette

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

VIEW = """
CREATE VIEW results_flat AS
SELECT
    runs.id AS run_id,
    runs.config_hash AS config_hash,
    runs.teacher AS teacher,
    runs.teacher_spec AS teacher_spec,
    runs.student AS student,
    runs.student_spec AS student_spec,
    runs.loss AS loss,
    runs.loss_spec AS loss_spec,
    runs.benchmark AS benchmark,
    runs.benchmark_spec AS benchmark_spec,
    runs.corpus AS corpus,
    runs.corpus_spec AS corpus_spec,
    runs.stage AS stage,
    runs.seed AS seed,
    runs.status AS status,
    runs.created_at AS created_at,
    runs.finished_at AS finished_at,
    results.language AS language,
    results.lang AS lang,
    results.split AS split,
    results.metric AS metric,
    results.value AS value,
    results.is_source AS is_source
FROM runs JOIN results ON results.run_id = runs.id
"""


def upgrade() -> None:
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW results_flat")
