"""The baselines of ``bench/query_report.py``: kdreg's read commands written by hand on ``sqlite3``.

Each case does the work of one kdreg command on the same SQLite file and prints the
same output (``query_report.py`` checks that byte for byte before timing), with the
least machinery a careful person would use: one SQL statement per aggregate, the
driver's cursor, ``csv.writer.writerows`` and, for Parquet, pyarrow arrays per column.

    python bench/handwritten_sql.py CASE DB [OUT]

CASE is ``query-de`` (``kdreg query --lang de --format csv``), ``query-sort-de``
(``kdreg query --lang de --sort de -n 20 --format csv``), ``report``
(``kdreg report --format csv``), ``export-csv`` / ``export-parquet OUT``
(``kdreg export --benchmark sib200 [-f parquet -o OUT]``).
"""

from __future__ import annotations

import csv
import math
import sqlite3
import sys

EXPORT_BENCHMARK = "sib200"
FLAT = ("run_id", "config_hash", "teacher", "teacher_spec", "student", "student_spec", "loss", "loss_spec",
        "benchmark", "benchmark_spec", "corpus", "corpus_spec", "stage", "seed", "status", "created_at",
        "finished_at", "language", "lang", "split", "metric", "value", "is_source")
STAGES = ("teacher", "none", "finetune", "pretrain", "both")
KEY = ("teacher_spec", "student_spec", "stage", "loss_spec", "benchmark_spec", "corpus_spec")


LABELS = {"xnli": 3, "pawsx": 2, "sib200": 7, "synthetic": 6}
"""Each built-in benchmark's number of labels: chance accuracy is one over it (the report's ``chance``)."""


def iso(column: str) -> str:
    """SQLite stores ``YYYY-MM-DD HH:MM:SS.ffffff``; ISO 8601 text has a T and drops a zero fraction."""
    return (f"CASE WHEN {column} IS NULL THEN NULL WHEN substr({column}, 21) = '000000' "
            f"THEN replace(substr({column}, 1, 19), ' ', 'T') ELSE replace({column}, ' ', 'T') END")


def query_de(conn: sqlite3.Connection, limit: int | None) -> None:
    """Runs with their source score, de, zero-shot average: newest first, or best de first."""
    order = "s.de DESC, r.id DESC" if limit else "r.id DESC"
    cursor = conn.execute(
        f"""SELECT r.id, r.config_hash, r.teacher_spec, r.student_spec, r.stage, r.loss_spec,
                   r.benchmark_spec, r.corpus_spec, r.seed, r.status,
                   CASE WHEN r.status = 'running'
                        THEN CAST((julianday('now') - julianday(r.heartbeat_at)) * 86400 AS INTEGER) END,
                   s.metric, s.split, s.source_lang,
                   s.source, s.de, s.zero_shot, s.targets, {iso('r.created_at')}
            FROM runs r JOIN (
                SELECT run_id, metric, split,
                       MAX(CASE WHEN is_source THEN lang END) AS source_lang,
                       AVG(CASE WHEN is_source THEN value END) AS source,
                       AVG(CASE WHEN lang = 'de' OR language = 'de' THEN value END) AS de,
                       AVG(CASE WHEN NOT is_source THEN value END) AS zero_shot,
                       COUNT(CASE WHEN NOT is_source THEN value END) AS targets
                FROM results WHERE metric = 'accuracy' AND split = 'test'
                GROUP BY run_id, metric, split) s ON s.run_id = r.id
            WHERE s.de IS NOT NULL ORDER BY {order}""" + (f" LIMIT {int(limit)}" if limit else "")
    )
    writer = csv.writer(sys.stdout, lineterminator="\r\n")  # what `kdreg query -f csv` writes
    writer.writerow(["run", "hash", "teacher", "student", "stage", "loss", "benchmark", "corpus", "seed",
                     "status", "heartbeat_age", "metric", "split", "source_lang", "source", "de", "zero_shot",
                     "targets", "created"])
    while rows := cursor.fetchmany(5000):
        writer.writerows(rows)


def _aggregate(n: int, mean: float | None, sumsq: float | None, scale: float) -> tuple | None:
    """(mean, sample std, n) scaled, from SQL's count, average and sum of squares."""
    if not n or mean is None:
        return None
    std = None
    if n >= 2 and sumsq is not None:
        variance = (sumsq - n * mean * mean) / (n - 1)
        std = math.sqrt(variance) if variance > 1e-13 * max(1.0, abs(sumsq)) else 0.0
    return (mean * scale, None if std is None else std * abs(scale), n)


def report(conn: sqlite3.Connection, scale: float = 100.0) -> None:
    """Seed groups of succeeded runs (accuracy, test): mean ± std per language and zero-shot average."""
    key = ", ".join(f"r.{k}" for k in KEY)
    groups = {}
    for gid, *values in conn.execute(
        f"""SELECT MIN(r.id), {key}, COUNT(r.id), COUNT(DISTINCT r.seed),
                   COUNT(DISTINCT json_extract(r.config, '$.hparams')),
                   COUNT(z.zs), AVG(z.zs), SUM(z.zs * z.zs)
            FROM runs r LEFT JOIN (
                SELECT run_id, AVG(value) AS zs FROM results
                WHERE metric = 'accuracy' AND split = 'test' AND NOT is_source GROUP BY run_id) z
              ON z.run_id = r.id
            WHERE r.status = 'succeeded' GROUP BY {key}"""
    ):
        labels, (runs, seeds, _setups, n, mean, sumsq) = values[:6], values[6:]
        groups[gid] = {"key": dict(zip(KEY, labels, strict=True)), "runs": runs, "seeds": seeds,
                       "zero_shot": _aggregate(n, mean, sumsq, scale), "source": None, "languages": {}}
    for gid, lang, is_source, n, mean, sumsq in conn.execute(
        f"""SELECT g.gid, x.lang, x.is_source, COUNT(x.value), AVG(x.value), SUM(x.value * x.value)
            FROM results x JOIN (SELECT id, MIN(id) OVER (PARTITION BY {key.replace('r.', '')}) AS gid
                                 FROM runs WHERE status = 'succeeded') g ON g.id = x.run_id
            WHERE x.metric = 'accuracy' AND x.split = 'test' GROUP BY g.gid, x.lang, x.is_source"""
    ):
        group = groups[gid]
        if is_source:
            group["source"] = _aggregate(n, mean, sumsq, scale)
        elif mean is not None:
            group["languages"][lang] = _aggregate(n, mean, sumsq, scale)

    def order(g: dict) -> tuple:
        k = g["key"]
        return (k["benchmark_spec"] or "", k["teacher_spec"] or "", STAGES.index(k["stage"]),
                k["student_spec"] or "", k["loss_spec"] or "", k["corpus_spec"] or "")

    tables: dict[str, list[dict]] = {}
    for g in sorted(groups.values(), key=order):
        tables.setdefault(g["key"]["benchmark_spec"] or "", []).append(g)
    header_keys: list[str] = []
    header_labels: list[str] = []
    out: list[dict] = []
    for benchmark, members in tables.items():
        targets = sorted({lang for g in members for lang in g["languages"]})
        labels = ["teacher", "student", "stage", "loss"] + (["corpus"] if any(
            g["key"]["corpus_spec"] for g in members) else [])
        keys = ["source", *targets, "zero_shot"]
        header_keys += [k for k in keys if k not in header_keys]
        header_labels += [c for c in labels if c not in header_labels]
        for g in members:
            cells = [g["source"], *(g["languages"].get(t) for t in targets), g["zero_shot"]]
            if all(c is None for c in cells):
                continue
            record = {"benchmark": benchmark, "metric": "accuracy", "split": "test", "scale": scale,
                      "chance": 1 / LABELS[benchmark] * scale if benchmark in LABELS else None,
                      "runs": g["runs"], "seeds": g["seeds"]}
            record.update({c: g["key"][f"{c}_spec" if c != "stage" else c] or "" for c in labels})
            for k, cell in zip(keys, cells, strict=True):
                if cell is not None:
                    record.update({f"{k}_mean": cell[0], f"{k}_std": cell[1], f"{k}_n": cell[2]})
            out.append(record)
    header = ["benchmark", "metric", "split", "scale", "chance", *header_labels, "runs", "seeds"]
    header += [f"{k}_{part}" for k in header_keys for part in ("mean", "std", "n")]
    writer = csv.DictWriter(sys.stdout, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in out)


def _flat(conn: sqlite3.Connection, text_forms: bool) -> sqlite3.Cursor:
    """Every result of the export benchmark's runs with its run's columns, in kdreg's order."""
    columns = [f"r.{c}" if c != "run_id" else "r.id" for c in FLAT[:17]] + [f"x.{c}" for c in FLAT[17:]]
    if text_forms:  # CSV: ISO times and True/False, made by SQLite
        columns[15], columns[16] = iso("r.created_at"), iso("r.finished_at")
        columns[22] = "CASE WHEN x.is_source THEN 'True' ELSE 'False' END"
    return conn.execute(
        f"""SELECT {', '.join(columns)} FROM runs r JOIN results x ON x.run_id = r.id
            WHERE r.benchmark = ? OR r.benchmark_spec = ?
            ORDER BY r.id, x.split, x.metric, x.language""",
        (EXPORT_BENCHMARK, EXPORT_BENCHMARK),
    )


def export_csv(conn: sqlite3.Connection) -> None:
    cursor = _flat(conn, text_forms=True)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(FLAT)
    while rows := cursor.fetchmany(5000):
        writer.writerows(rows)


def export_parquet(conn: sqlite3.Connection, out: str) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    types = {"run_id": pa.int64(), "seed": pa.int64(), "value": pa.float64(), "is_source": pa.bool_(),
             "created_at": pa.timestamp("us"), "finished_at": pa.timestamp("us")}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in FLAT])
    cursor = _flat(conn, text_forms=False)
    with pq.ParquetWriter(out, schema) as writer:
        while rows := cursor.fetchmany(5000):
            arrays = []
            for values, field in zip(zip(*rows, strict=True), schema, strict=True):
                if field.name.endswith("_at"):  # SQLite's text, parsed by Arrow
                    arrays.append(pc.cast(pa.array(values, pa.string()), field.type))
                elif field.name == "is_source":
                    arrays.append(pc.cast(pa.array(values, pa.int64()), pa.bool_()))
                else:
                    arrays.append(pa.array(values, field.type))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))


def main() -> None:
    case, db, *rest = sys.argv[1:]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        if case == "query-de":
            query_de(conn, None)
        elif case == "query-sort-de":
            query_de(conn, 20)
        elif case == "report":
            report(conn)
        elif case == "export-csv":
            export_csv(conn)
        elif case == "export-parquet":
            export_parquet(conn, rest[0])
        else:
            raise SystemExit(f"unknown case {case!r}")
    finally:
        conn.close()


if __name__ == "__main__":
    main()
