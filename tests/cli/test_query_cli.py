"""`kdreg query`, `show`, `report` and `export` on a synthetic store: formats parse back, errors are
one line, hostile filter values match nothing and change nothing, and no heavy import happens."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.reporting.aggregate import zero_shot_average
from kdreg.testing.store_data import SyntheticRun, seeded_copy


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[SyntheticRun]]]:
    cache = tmp_path_factory.getbasetemp() / "synthetic-store-cache"
    cache.mkdir(exist_ok=True)
    path = tmp_path_factory.mktemp("query-cli") / "runs.db"
    yield path, seeded_copy(cache, path)


def kdreg(path: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [*args, "--db", str(path)])


def checksum(path: Path) -> str:
    """Every row of every table, in a stable order: equal checksums mean nothing was written."""
    digest = hashlib.sha256()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        for table in tables:
            width = len(conn.execute(f'PRAGMA table_info("{table}")').fetchall())
            order = ", ".join(str(i) for i in range(1, width + 1))
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}'):
                digest.update(repr(row).encode())
    finally:
        conn.close()
    return digest.hexdigest()


def test_query_json_and_csv_parse_back_with_the_stored_numbers(seeded) -> None:
    path, runs = seeded
    truth = {r.id: r for r in runs}
    done = kdreg(path, "query", "--lang", "de,zh", "--teacher", "xlmr", "--stage", "pretrain", "-f", "json")
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)
    assert {r["run"] for r in rows} == {r.id for r in runs if r.teacher == "xlmr" and r.stage == "pretrain"}
    for row in rows:
        scores = truth[row["run"]].scores()
        assert row["de"] == pytest.approx(scores["de"]) and row["zh"] == pytest.approx(scores["zh"])
        assert row["zero_shot"] == pytest.approx(zero_shot_average(scores, "en"))
    as_csv = list(
        csv.DictReader(
            io.StringIO(
                kdreg(
                    path, "query", "--lang", "de", "--teacher", "xlmr", "--stage", "pretrain", "-f", "csv"
                ).stdout
            )
        )
    )
    assert [int(r["run"]) for r in as_csv] == [r["run"] for r in rows]
    assert [float(r["de"]) for r in as_csv] == pytest.approx([r["de"] for r in rows])


def test_a_filter_matching_nothing_names_what_the_store_has(seeded) -> None:
    path, _ = seeded
    before = checksum(path)
    empty = kdreg(path, "query", "--lang", "id", "--teacher", "mbert")
    assert empty.exit_code == 0  # no match is not an error, as before
    assert "no run has language 'id'; stored languages: de, en, fr, zh" in empty.stderr
    assert "teacher" not in empty.stderr.split("No runs")[0]  # mbert exists: only the culprit is named
    assert "No runs match" in empty.stderr and empty.stdout == ""
    several = kdreg(path, "query", "--teacher", "bert-large", "--stage", "both", "--loss", "kl,ce",
                    "--benchmark", "pawsx", "--metric", "f1", "-f", "json")
    assert several.exit_code == 0 and json.loads(several.stdout) == []  # machines still get their format
    hints = several.stderr.splitlines()
    assert "no run has teacher 'bert-large'; stored teachers: mbert, xlmr" in hints
    [losses] = [line for line in hints if line.startswith("no run has loss 'ce'; stored losses: kl (as kl:")]
    assert losses.endswith("), mse")  # kl exists (its specs named), ce does not
    assert "no run has benchmark 'pawsx'; stored benchmarks: sib200, xnli" in hints
    assert "no run has metric 'f1'; stored metrics: accuracy, macro_f1" in hints
    assert not any("stage" in line for line in hints)
    report = kdreg(path, "report", "--lang", "sw")
    assert report.exit_code == 0
    assert "no run has language 'sw'; stored languages: de, en, fr, zh" in report.stderr
    export = kdreg(path, "export", "--corpus", "cc100")
    assert export.exit_code == 0 and "no run has corpus 'cc100'; stored corpora:" in export.stderr
    # each filter matches some run, only not together: nothing to name
    together = kdreg(path, "query", "--stage", "teacher", "--loss", "mse")  # a teacher row has no loss
    assert together.stderr.strip().splitlines() == [f"No runs match in {path}."]
    assert checksum(path) == before


def test_query_table_and_markdown(seeded) -> None:
    path, _ = seeded
    table = kdreg(path, "query", "--lang", "deu_Latn", "--benchmark", "sib200", "--sort", "de", "-n", "3")
    assert table.exit_code == 0 and "de" in table.stdout and "benchmark=sib200" in table.stdout
    markdown = kdreg(
        path, "query", "--seed", "1", "--teacher", "mbert", "--stage", "teacher", "-f", "markdown"
    )
    lines = markdown.stdout.strip().splitlines()
    assert len(lines) == 2 + 2 and lines[1].startswith("|---")
    empty = kdreg(path, "query", "--teacher", "nobody")
    assert empty.exit_code == 0 and "No runs match" in empty.stderr
    # --sort takes any spelling of a selected language, like --lang does
    by_code = kdreg(path, "query", "--lang", "de", "--sort", "de", "-f", "json").stdout
    for spelling in ("deu", "deu_Latn"):
        assert kdreg(path, "query", "--lang", "de", "--sort", spelling, "-f", "json").stdout == by_code
    unselected = kdreg(path, "query", "--sort", "de")
    assert unselected.exit_code == 1 and "select it too: --lang de" in unselected.stderr


def test_group_seeds(seeded) -> None:
    path, runs = seeded
    done = kdreg(
        path,
        "query",
        "--group-seeds",
        "--teacher",
        "mbert",
        "--benchmark",
        "xnli",
        "--lang",
        "fr",
        "--status",
        "succeeded",
        "--sort",
        "fr",
        "-f",
        "json",
    )
    rows = json.loads(done.stdout)
    assert len(rows) == 21 and all(r["seeds"] == 3 for r in rows)
    assert [r["fr_mean"] for r in rows] == sorted((r["fr_mean"] for r in rows), reverse=True)
    top = rows[0]
    values = [
        r.scores()["fr"]
        for r in runs
        if r.group[1:] == (top["student"], top["stage"], top["loss"], "xnli", top["corpus"])
        and r.teacher == "mbert"
        and r.values
    ]
    assert top["fr_mean"] == pytest.approx(sum(values) / 3)
    people = kdreg(path, "query", "--group-seeds", "--teacher", "mbert", "--lang", "fr", "-n", "2")
    assert people.exit_code == 0 and "±" in people.stdout


def test_show_by_id_and_hash_prefix(seeded) -> None:
    path, runs = seeded
    failed = next(r for r in runs if r.status == "failed")
    done = kdreg(path, "show", str(failed.id))
    assert done.exit_code == 0
    assert (
        "failed" in done.stdout and "loss became NaN at step 3" in done.stdout and "Traceback" in done.stdout
    )
    assert "at least 6 characters" in kdreg(path, "show", "d9b59").stderr
    for odd in ("99999999999999999999999", "²", "٣"):
        missing = kdreg(path, "show", odd)
        assert missing.exit_code == 1 and missing.stderr.startswith("error: No run"), missing.output
    record = json.loads(kdreg(path, "show", "1", "--json").stdout)
    by_hash = kdreg(path, "show", record["config_hash"][:10])
    assert by_hash.exit_code == 0 and "curve finetune" in by_hash.stdout and "zero-shot avg" in by_hash.stdout
    assert record["summary"]["accuracy/test"]["zero_shot"] == pytest.approx(
        zero_shot_average(runs[0].scores(), "en")
    )
    missing = kdreg(path, "show", "99999")
    assert missing.exit_code == 1 and "No run '99999'" in missing.stderr


@pytest.mark.parametrize("fmt", ["terminal", "markdown", "latex", "csv", "html"])
def test_report_formats(seeded, fmt: str) -> None:
    path, _ = seeded
    done = kdreg(path, "report", "--teacher", "mbert", "--student", "distil", "-f", fmt)
    assert done.exit_code == 0, done.output
    assert ("source_mean" if fmt == "csv" else "en (source)") in done.stdout and "zero" in done.stdout
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(done.stdout)))
        assert len(rows) == 2 * 11 and {r["stage"] for r in rows} == {
            "teacher",
            "none",
            "finetune",
            "pretrain",
            "both",
        }


def test_report_out_writes_every_format_and_the_plot(seeded, tmp_path: Path) -> None:
    path, _ = seeded
    done = kdreg(
        path,
        "report",
        "--teacher",
        "xlmr",
        "--student",
        "layers",
        "--out",
        str(tmp_path / "out"),
        "--plot-format",
        "svg",
    )
    assert done.exit_code == 0, done.output
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"report.txt", "report.md", "report.tex", "report.csv", "report.html"} <= names
    assert all(p.stat().st_size > 0 for p in (tmp_path / "out").iterdir())
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "No plot" in (tmp_path / "out" / "report.html").read_text()
    else:
        assert (tmp_path / "out" / "report.svg").stat().st_size > 1000
        assert "<svg" in (tmp_path / "out" / "report.html").read_text()


def test_export_formats_round_trip(seeded, tmp_path: Path) -> None:
    path, runs = seeded
    expected = sum(len(r.values) for r in runs if r.seed == 2)
    as_csv = list(csv.DictReader(io.StringIO(kdreg(path, "export", "--seed", "2").stdout)))
    assert len(as_csv) == expected and as_csv[0]["is_source"] in ("True", "False")
    jsonl = [
        json.loads(line) for line in kdreg(path, "export", "--seed", "2", "-f", "jsonl").stdout.splitlines()
    ]
    assert len(jsonl) == expected and isinstance(jsonl[0]["value"], float)
    assert sum(r["value"] for r in jsonl) == pytest.approx(
        sum(v for r in runs if r.seed == 2 for v in r.values.values())
    )
    assert kdreg(path, "export", "-f", "parquet").exit_code == 1
    out = tmp_path / "flat.parquet"
    done = kdreg(path, "export", "--seed", "2", "-f", "parquet", "-o", str(out))
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert done.exit_code == 1 and "pip install 'kdreg[export]'" in done.stderr
        return
    assert done.exit_code == 0, done.output
    table = pq.read_table(out)
    assert table.num_rows == expected and str(table.schema.field("value").type) == "double"
    assert not list(tmp_path.glob("*.partial"))


def test_the_last_day_of_the_calendar_is_a_valid_bound(seeded) -> None:
    path, _ = seeded
    everything = kdreg(path, "query", "-f", "json").stdout
    assert json.loads(everything)
    assert kdreg(path, "query", "--until", "9999-12-31", "-f", "json").stdout == everything


@pytest.mark.parametrize(
    "args",
    [
        ("query", "--format", "xml"),
        ("query", "--stage", "distill"),
        ("query", "--since", "yesterday"),
        ("query", "--seed", "1.5"),
        ("report", "--format", "[/]"),
        ("query", "--group-seeds", "--sort", "hash"),
        ("export", "--format", "xlsx"),
        ("report", "--scale", "nan"),
        ("report", "--scale", "0"),
    ],
    ids=" ".join,
)
def test_mistakes_are_one_line_and_exit_1(seeded, args: tuple[str, ...]) -> None:
    path, _ = seeded
    done = kdreg(path, *args)
    assert done.exit_code == 1 and done.stdout == ""
    assert done.stderr.startswith("error:") and len(done.stderr.strip().splitlines()) == 1


HOSTILE = [
    "'",
    '"',
    "%",
    "_",
    ";",
    "' OR 1=1 --",
    "x'; DROP TABLE runs; --",
    "%' OR '1'='1",
    "\\",
    "*",
    "de%",
    "d_",
    "de\udcff",
    "x" * 10_000,
    "[bold]",
    "zz,de'--",
]


@pytest.mark.parametrize(
    "option", ["--teacher", "--lang", "--loss", "--metric", "--status", "--grid", "--seed"]
)
def test_hostile_values_match_nothing_and_change_nothing(seeded, option: str) -> None:
    path, _ = seeded
    before = checksum(path)
    for value in HOSTILE:
        done = kdreg(path, "query", option, value, "-f", "json")
        if done.exit_code == 0:
            assert json.loads(done.stdout) == [], (option, value)
        else:
            assert done.exit_code == 1 and done.stdout == "", (option, value, done.output)
            assert done.stderr.startswith("error:") and len(done.stderr.strip().splitlines()) == 1
            assert "sql" not in done.stderr.lower() and "database error" not in done.stderr.lower()
    for value in HOSTILE[:6]:
        assert kdreg(path, "report", option, value).exit_code in (0, 1)
        assert kdreg(path, "export", option, value).stdout.count("\n") <= 1  # the header at most
    assert checksum(path) == before


def test_non_utf8_bytes_in_a_real_process(seeded, kdreg_cli) -> None:
    path, _ = seeded
    before = checksum(path)
    argv = [
        sys.executable,
        "-m",
        "kdreg",
        "query",
        "--db",
        os.fsencode(str(path)),
        "--teacher",
        b"mb\xffert",
        "--lang",
        b"d\xe9",
        "-f",
        "json",
    ]
    done = subprocess.run(argv, capture_output=True, timeout=120)
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.startswith(b"error:") and b"not valid UTF-8" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    real = kdreg_cli("query", "--db", str(path), "--lang", "' OR 1=1 --", "--teacher", "%", "-f", "csv")
    assert real.returncode == 0 and real.stdout.strip().count("\n") == 0  # header only
    assert checksum(path) == before


def test_read_commands_import_nothing_heavy(seeded) -> None:
    path, _ = seeded
    code = (
        "import sys, json\n"
        "from kdreg.cli.main import main\n"
        "heavy = set()\n"
        "for argv in (['query', '--lang', 'de', '-n', '3'], ['query', '--group-seeds', '-n', '2'],\n"
        "             ['report', '--teacher', 'mbert'], ['report', '-f', 'latex'], ['show', '1'],\n"
        "             ['export', '--seed', '0', '-f', 'jsonl']):\n"
        "    try:\n"
        "        main([*argv, '--db', sys.argv[1]])\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules}\n"
        "               & {'torch', 'transformers', 'datasets', 'pandas', 'matplotlib', 'pyarrow'})\n"
        "print(json.dumps(heavy), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_a_terminal_table_shows_the_first_hundred_rows_and_says_so(seeded) -> None:
    path, runs = seeded
    done = kdreg(path, "query")
    assert done.exit_code == 0 and "first 100 runs" in done.stdout and "--limit N shows more" in done.stderr
    assert len(json.loads(kdreg(path, "query", "-f", "json").stdout)) == len(runs)
    small = kdreg(path, "query", "--teacher", "mbert", "--seed", "0", "--stage", "teacher")
    assert "first" not in small.stdout and small.stderr == ""


def test_without_the_optional_extras_the_errors_name_them(seeded, tmp_path: Path, monkeypatch) -> None:
    """pyarrow / matplotlib absent (an import of them fails): one actionable line, the rest still works."""
    path, _ = seeded
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    done = kdreg(path, "export", "-f", "parquet", "-o", str(tmp_path / "x.parquet"))
    assert done.exit_code == 1 and "Parquet export needs pyarrow: pip install 'kdreg[export]'" in done.stderr
    assert not list(tmp_path.iterdir())  # no partial file left behind
    out = tmp_path / "report"
    done = kdreg(path, "report", "--teacher", "mbert", "--out", str(out))
    assert done.exit_code == 0 and "No plot" in done.stderr
    assert "No plot: matplotlib is not installed" in (out / "report.html").read_text()
    assert not list(out.glob("report.png"))
