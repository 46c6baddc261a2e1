"""The read path on PostgreSQL gives what it gives on SQLite: same rows, same seed statistics.

Reuses the throwaway cluster of ``test_postgres.py`` (skipped like it without the server
binaries or psycopg). The window function, the boolean CASEs, NULLS LAST and PostgreSQL's
strict GROUP BY are exactly where two SQL dialects part ways.
"""

from __future__ import annotations

import pytest

# The server fixture of test_postgres.py (which skips itself without psycopg or the binaries).
from pg_server import Cluster

from kdreg.reporting.aggregate import seed_groups
from kdreg.reporting.report import build_report
from kdreg.store.filters import build_filters
from kdreg.store.queries import select_flat, select_run_scores
from kdreg.store.reading import Reader, open_reader, read_connection
from kdreg.testing.store_data import seed_store, seeded_copy

pytestmark = pytest.mark.slow  # a server start and 254 runs written over TCP: ~10 s


@pytest.fixture(scope="module")
def both(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cache = tmp_path_factory.getbasetemp() / "synthetic-store-cache"
    cache.mkdir(exist_ok=True)
    path = tmp_path_factory.mktemp("parity") / "runs.db"
    seeded_copy(cache, path)
    url = cluster.create_database("kdreg_read_parity")
    seed_store(url)
    sqlite, postgres = open_reader(str(path)), open_reader(url)
    yield sqlite, postgres
    sqlite.close()
    postgres.close()


def rows(reader: Reader, stmt) -> list[dict]:  # type: ignore[no-untyped-def]
    with read_connection(reader) as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def comparable(row: dict) -> dict:
    """Times differ (each store was written at its own moment); floats to 9 digits."""
    return {
        k: round(v, 9) if isinstance(v, float) else v
        for k, v in row.items()
        if k not in ("created", "hash", "created_at", "finished_at", "heartbeat_at", "config_hash")
    }


@pytest.mark.parametrize(
    ("filters", "options"),
    [
        ({}, {"limit": 30}),
        ({"lang": ["deu", "fr"], "stage": ["none", "both"]}, {"sort": "de"}),
        (
            {"teacher": "xlmr", "metric": ["accuracy", "macro_f1"], "split": "validation"},
            {"sort": "zero_shot"},
        ),
        ({"loss": "kl", "seed": [0, 2], "status": "succeeded"}, {"sort": "teacher", "limit": 25}),
        ({"lang": "' OR 1=1 --"}, {}),
    ],
)
def test_run_scores_agree(both, filters: dict, options: dict) -> None:
    sqlite, postgres = both
    stmt = select_run_scores(build_filters(**filters), **options)
    expected = [comparable(r) for r in rows(sqlite, stmt)]
    assert [comparable(r) for r in rows(postgres, stmt)] == expected
    assert expected or filters.get("lang") == "' OR 1=1 --"


def test_seed_statistics_reports_and_flat_rows_agree(both) -> None:
    sqlite, postgres = both
    f = build_filters(status="succeeded", keep_unset=True, teacher="mbert", student="distil")
    for metric, split in (("accuracy", "test"), ("macro_f1", "validation")):
        a, b = seed_groups(sqlite, f, metric, split), seed_groups(postgres, f, metric, split)
        assert [g.key for g in a] == [g.key for g in b] and len(a) == 2 * 11
        for x, y in zip(a, b, strict=True):
            assert (x.runs, x.seeds, x.source_lang) == (y.runs, y.seeds, y.source_lang)
            for cell_x, cell_y in [
                (x.source, y.source),
                (x.zero_shot, y.zero_shot),
                *((x.languages[k], y.languages[k]) for k in x.languages),
            ]:
                assert cell_x.n == cell_y.n
                assert cell_x.mean == pytest.approx(cell_y.mean, abs=1e-12)
                assert cell_x.std == pytest.approx(cell_y.std, rel=1e-6)
    tables_a, tables_b = build_report(sqlite, f), build_report(postgres, f)
    assert [(t.headers, [r.label for r in t.rows], t.best) for t in tables_a] == [
        (t.headers, [r.label for r in t.rows], t.best) for t in tables_b
    ]
    flat = build_filters(seed=1, lang="zh", metric="accuracy")
    assert [comparable(r) for r in rows(sqlite, select_flat(flat))] == [
        comparable(r) for r in rows(postgres, select_flat(flat))
    ]



@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bulk_export_writes_exactly_the_rows_cell_by_cell(both, backend: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """CSV, JSON Lines and Parquet hold exactly the typed rows of the flat statement."""
    import csv
    import json
    from datetime import datetime, timezone

    from kdreg.reporting.export import write_export

    reader = both[backend == "postgresql"]
    flat = build_filters(seed=[0, 2], lang=["de", "zh"])
    typed = rows(reader, select_flat(flat))
    assert len(typed) > 100 and all(isinstance(r["finished_at"], datetime) for r in typed)
    iso = [{k: v.isoformat() if isinstance(v, datetime) else v for k, v in r.items()} for r in typed]

    write_export(reader, flat, "csv", tmp_path / "flat.csv")
    with open(tmp_path / "flat.csv", newline="", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == [
            {k: "" if v is None else str(v) for k, v in r.items()} for r in iso
        ]
    write_export(reader, flat, "jsonl", tmp_path / "flat.jsonl")
    lines = (tmp_path / "flat.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == iso

    pq = pytest.importorskip("pyarrow.parquet")
    write_export(reader, flat, "parquet", tmp_path / "flat.parquet")

    def utc(v: object) -> object:  # Parquet keeps the instant, as UTC without a zone
        aware = isinstance(v, datetime) and v.tzinfo is not None
        return v.astimezone(timezone.utc).replace(tzinfo=None) if aware else v  # type: ignore[union-attr]

    assert pq.read_table(tmp_path / "flat.parquet").to_pylist() == [
        {k: utc(v) for k, v in r.items()} for r in typed
    ]


def test_compare_and_claims_agree(both) -> None:
    """Pairing reads configs (JSON) and scores; PostgreSQL must give what SQLite gives."""
    from kdreg.reporting.claims import evaluate_claims
    from kdreg.reporting.compare import compare, parse_side

    sqlite, postgres = both
    f = build_filters(status="succeeded", keep_unset=True)
    sides = parse_side(["stage=pretrain"]), parse_side(["stage=finetune"], "--b")
    x, y = compare(sqlite, *sides, f), compare(postgres, *sides, f)
    assert [c.label for c in x.comparisons] == [c.label for c in y.comparisons]
    assert len(x.comparisons) == 2 and all(len(c.pairs) == 2 * 2 * 3 * 3 for c in x.comparisons)
    for cx, cy in zip(x.comparisons, y.comparisons, strict=True):
        assert cx.pairs == cy.pairs
        for mx, my in zip(cx.measures, cy.measures, strict=True):
            assert (mx.column, mx.n) == (my.column, my.n)
            assert mx.delta == pytest.approx(my.delta) and mx.p_value == pytest.approx(my.p_value)
    claims_x, claims_y = evaluate_claims(sqlite, f), evaluate_claims(postgres, f)
    assert [(c.verdict, c.reason) for c in claims_x] == [(c.verdict, c.reason) for c in claims_y]
