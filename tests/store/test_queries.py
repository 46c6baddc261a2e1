"""Filters and score statements against a synthetic store whose every number the test holds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect

from kdreg.errors import ConfigError
from kdreg.reporting.aggregate import zero_shot_average
from kdreg.store.filters import Filters, build_filters, parse_time
from kdreg.store.queries import FLAT_COLUMNS, read_connection, select_flat, select_run_scores
from kdreg.store.store import Store, open_store
from kdreg.testing.store_data import SyntheticRun, seeded_copy


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, list[SyntheticRun]]:
    cache = tmp_path_factory.getbasetemp() / "synthetic-store-cache"
    cache.mkdir(exist_ok=True)
    path = tmp_path_factory.mktemp("queries") / "runs.db"
    runs = seeded_copy(cache, path)
    store = open_store(f"sqlite:///{path}", create=False)
    yield store, runs
    store.close()


def rows(store: Store, f: Filters, **options: object) -> list[dict]:
    with read_connection(store) as conn:
        return [dict(r) for r in conn.execute(select_run_scores(f, **options)).mappings()]


def ids(store: Store, **filters: object) -> set[int]:
    return {r["run"] for r in rows(store, build_filters(**filters))}


def test_no_filter_lists_every_run_even_without_results(seeded) -> None:
    store, runs = seeded
    found = rows(store, build_filters())
    assert {r["run"] for r in found} == {r.id for r in runs}
    pending = next(r for r in found if r["status"] == "pending")
    assert pending["source"] is None and pending["zero_shot"] is None


def test_repeated_values_are_or_and_options_are_and(seeded) -> None:
    store, runs = seeded
    got = ids(store, teacher="mbert", stage=["none", "both"], seed=[0, 2])
    want = {r.id for r in runs if r.teacher == "mbert" and r.stage in ("none", "both") and r.seed in (0, 2)}
    assert got == want and len(want) == 2 * 2 * (2 + 2 * 3)  # benchmarks × seeds × (none + both×losses)


def test_a_dimension_matches_its_name_or_its_full_spec(seeded) -> None:
    store, runs = seeded
    assert ids(store, loss="kl") == {r.id for r in runs if r.loss and r.loss.startswith("kl:")}
    assert ids(store, loss="kl:alpha=0.5,temperature=4") == {
        r.id for r in runs if r.loss == "kl:alpha=0.5,temperature=4"
    }
    assert ids(store, student="layers") == {r.id for r in runs if r.student == "layers:keep=6"}
    assert ids(store, student="layers:keep=6") == ids(store, student="layers")
    assert ids(store, student="keep=6") == set()


@pytest.mark.parametrize("typed", ["de", "deu", "deu_Latn", "DE", "ger"])
def test_a_language_is_found_under_every_spelling(seeded, typed: str) -> None:
    store, runs = seeded
    found = rows(store, build_filters(lang=typed))
    with_results = {r.id: r for r in runs if r.values}
    assert {r["run"] for r in found} == set(with_results)  # xnli says de, sib200 says deu_Latn
    for row in found:
        assert row["de"] == pytest.approx(with_results[row["run"]].scores()["de"])


def test_runs_without_the_language_or_any_result_are_left_out(seeded) -> None:
    store, runs = seeded
    assert ids(store, lang="tlh") == set()
    assert ids(store, lang="de", status="failed") == set()
    assert ids(store, status="failed") != set()
    assert ids(store, metric="accuracy") == {r.id for r in runs if r.values}
    assert ids(store, split="dev") == set() and ids(store, metric="bleu") == set()


def test_source_score_and_zero_shot_average_per_metric_and_split(seeded) -> None:
    store, runs = seeded
    truth = {r.id: r for r in runs}
    for metric, split in (("accuracy", "test"), ("macro_f1", "validation")):
        found = rows(store, build_filters(metric=metric, split=split, status="succeeded", lang=["fr", "zh"]))
        assert len(found) == sum(1 for r in runs if r.values)
        for row in found:
            run = truth[row["run"]]
            scores = run.scores(metric, split)
            assert (row["metric"], row["split"], row["source_lang"]) == (metric, split, "en")
            assert row["source"] == pytest.approx(scores["en"])
            assert row["zero_shot"] == pytest.approx(zero_shot_average(scores, "en"))
            assert row["fr"] == pytest.approx(scores["fr"]) and row["zh"] == pytest.approx(scores["zh"])
            assert row["targets"] == 3


def test_two_metrics_give_a_row_each(seeded) -> None:
    store, runs = seeded
    found = rows(store, build_filters(metric=["accuracy", "macro_f1"], seed=0, teacher="xlmr"))
    assert len(found) == 2 * sum(1 for r in runs if r.values and r.seed == 0 and r.teacher == "xlmr")


def test_sort_by_a_language_best_first_and_limit(seeded) -> None:
    store, runs = seeded
    found = rows(store, build_filters(lang="de"), sort="de", limit=5)
    best = sorted((r for r in runs if r.values), key=lambda r: -r.scores()["de"])[:5]
    assert [r["run"] for r in found] == [r.id for r in best]
    ascending = rows(store, build_filters(lang="de"), sort="de", descending=False, limit=1)
    assert ascending[0]["de"] == pytest.approx(min(r.scores()["de"] for r in runs if r.values))


def test_default_order_is_newest_run_first_and_names_sort_ascending(seeded) -> None:
    store, runs = seeded
    assert [r["run"] for r in rows(store, build_filters(), limit=3)] == [r.id for r in runs][::-1][:3]
    by_teacher = [r["teacher"] for r in rows(store, build_filters(), sort="teacher")]
    assert by_teacher == sorted(by_teacher)
    with pytest.raises(ConfigError, match="Cannot sort by 'fr'"):
        rows(store, build_filters(lang="de"), sort="fr")


def test_time_range_and_grid(seeded) -> None:
    store, runs = seeded
    now = datetime.now(timezone.utc)
    everything = {r.id for r in runs}
    assert ids(store, since=(now - timedelta(days=1)).date().isoformat()) == everything
    assert ids(store, until=(now - timedelta(days=1)).date().isoformat()) == set()
    assert ids(store, since=(now + timedelta(days=2)).isoformat()) == set()
    assert ids(store, until=(now + timedelta(days=1)).date().isoformat()) == everything
    assert ids(store, grid=1) == everything and ids(store, grid=[2, 3]) == set()


def test_keep_unset_keeps_runs_a_filter_does_not_apply_to(seeded) -> None:
    store, runs = seeded
    strict = ids(store, teacher="mbert", student="distil", loss="mse")
    kept = ids(store, teacher="mbert", student="distil", loss="mse", keep_unset=True)
    assert strict == {
        r.id for r in runs if r.teacher == "mbert" and r.student == "distil" and r.loss == "mse"
    }
    extra = {
        r.id
        for r in runs
        if r.teacher == "mbert" and (r.stage == "teacher" or (r.student == "distil" and r.stage == "none"))
    }
    assert kept == strict | extra


def test_flat_rows_are_the_results_of_the_selected_runs(seeded) -> None:
    store, runs = seeded
    f = build_filters(teacher="xlmr", seed=1, lang="fr", metric="accuracy")
    with read_connection(store) as conn:
        flat = [dict(r) for r in conn.execute(select_flat(f)).mappings()]
    want = [
        (r.id, lang, split, v)
        for r in runs
        if r.teacher == "xlmr" and r.seed == 1
        for (metric, split, lang), v in r.values.items()
        if metric == "accuracy" and lang in ("fr", "fra_Latn")
    ]
    assert sorted((row["run_id"], row["language"], row["split"], row["value"]) for row in flat) == sorted(
        want
    )
    assert list(flat[0]) == list(FLAT_COLUMNS)


def test_export_columns_are_the_results_flat_view(seeded) -> None:
    store, _ = seeded
    with store.engine.connect() as conn:
        view = [c["name"] for c in inspect(conn).get_columns("results_flat")]
    assert view == list(FLAT_COLUMNS)


def test_the_report_index_is_in_the_models_and_the_migrations(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from kdreg.store.schema import Base

    store = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("results")}
    finally:
        store.close()
    assert [d for d in diff if d[0] != "remove_table"] == []
    assert indexes["ix_results_metric_split_run_id_lang_is_source_value"] == [
        "metric",
        "split",
        "run_id",
        "lang",
        "is_source",
        "value",
    ]


def test_parse_time() -> None:
    assert parse_time("2025-03-01") == datetime(2025, 3, 1)
    assert parse_time("2025-03-01", end=True) == datetime(2025, 3, 2)
    assert parse_time("2025-03-01T14:30+02:00") == datetime(2025, 3, 1, 12, 30)
    assert parse_time("2025-03-01T14:30:00Z") == datetime(2025, 3, 1, 14, 30)
    assert parse_time(None) is None
    with pytest.raises(ConfigError, match="Not an ISO date"):
        parse_time("last tuesday")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stage": "distill"}, "Unknown --stage 'distill'"),
        ({"status": "done"}, "Unknown --status 'done'"),
        ({"seed": "one"}, "--seed value 'one' is not an integer"),
        ({"seed": 2**70}, "out of range"),
        ({"since": "2025-03-02", "until": "2025-03-01"}, "--since is not before --until"),
        ({"teacher": "x" * 10_000}, "10000 characters long"),
        ({"lang": "de\udcff"}, "not valid UTF-8"),
        ({"lang": "seed"}, "--lang 'seed' is not a language code"),
    ],
)
def test_bad_filter_values_are_one_clean_error(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_filters(**options)


def test_language_columns_merge_spellings_of_one_language() -> None:
    f = build_filters(lang=["de", "deu_Latn", "fr", "de"])
    assert [(c.code, c.typed) for c in f.language_columns] == [("de", ("de", "deu_Latn")), ("fr", ("fr",))]


def test_the_two_letter_shortcut_is_normalize_language() -> None:
    import string

    from kdreg.languages import normalize_language
    from kdreg.store.filters import normalized

    for a in string.ascii_letters:
        for b in string.ascii_lowercase:
            assert normalized(a + b) == normalize_language(a + b), a + b


def test_the_read_path_converts_every_typed_column_of_the_schema() -> None:
    """SQLite hands datetimes, booleans and JSON back as text or integers; the read path turns
    them back by column name, so those names must be exactly the schema's columns of those types."""
    from sqlalchemy import JSON, Boolean, DateTime

    from kdreg.store import filters, reading, schema

    by_type: dict[type, set[str]] = {DateTime: set(), Boolean: set(), JSON: set()}
    others: set[str] = set()
    for table in schema.Base.metadata.tables.values():
        for col in table.columns:
            kind = next((t for t in by_type if isinstance(col.type, t) or isinstance(
                getattr(col.type, "impl", None), t)), None)
            (by_type[kind] if kind else others).add(col.name)
    assert by_type[DateTime] == reading.DATETIME_COLUMNS - {"created"}  # `created`: query's label
    assert by_type[Boolean] == reading.BOOLEAN_COLUMNS
    assert by_type[JSON] - {"steps", "losses"} == reading.JSON_COLUMNS  # curves: read by the ORM
    assert not others & (reading.DATETIME_COLUMNS | reading.BOOLEAN_COLUMNS | reading.JSON_COLUMNS)
    assert filters.STAGES == schema.STAGES and filters.RUN_STATUSES == schema.RUN_STATUSES


def test_an_sqlite_file_at_head_is_read_without_sqlalchemy(seeded) -> None:
    """The light read path: the standard library's sqlite3, the same rows as through the engine."""
    from kdreg.store.reading import open_reader

    store, _ = seeded
    reader = open_reader(store.url)
    try:
        assert reader.engine is None and reader.sqlite_uri is not None and "mode=ro" in reader.sqlite_uri
        f = build_filters(lang=["de", "fra_Latn"], metric="accuracy")
        for statement in (select_run_scores(f, sort="de"), select_flat(f)):
            with read_connection(reader) as light, read_connection(store) as full:
                assert light.execute(statement).mappings() == full.execute(statement).mappings()
    finally:
        reader.close()
