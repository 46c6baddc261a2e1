"""Language folders named in English: stored under their codes, shown under their names (issue 16 §2)."""

from __future__ import annotations

from pathlib import Path

from tiny_world import invoke as _invoke
from tiny_world import rows as _rows
from tiny_world import write_benchmark

NAMES = ("english", "indonesian", "toba_batak")


def test_a_files_benchmark_with_language_names(world: dict[str, str], kdreg_home: Path,
                                               tmp_path: Path) -> None:
    bench = f"files:path={write_benchmark(tmp_path / 'named', NAMES)}"  # the source is found: english
    result = _invoke("run", "--teacher", world["teacher"], "--student", "layers:k=1",
                     "--stage", "teacher,none",
                     "--benchmark", bench, "--config", world["grid"])
    assert result.exit_code == 0, result.output
    db = kdreg_home / "kdreg.db"
    assert sorted(_rows(db, "SELECT DISTINCT language, lang, is_source FROM results")) == [
        ("english", "en", 1), ("indonesian", "id", 0), ("toba_batak", "bbc", 0)]

    found = _invoke("query", "--lang", "id", "--format", "csv")
    assert found.exit_code == 0 and len(found.output.strip().splitlines()) == 1 + 2  # teacher and none
    report = _invoke("report", "--format", "markdown")
    header = next(line for line in report.output.splitlines() if line.startswith("| teacher"))
    assert "english (source)" in header and "| indonesian |" in header and "| toba_batak |" in header


def test_an_unresolvable_folder_is_refused_before_anything_runs(world: dict[str, str], kdreg_home: Path,
                                                                  tmp_path: Path) -> None:
    root = write_benchmark(tmp_path / "named", ("english", "old_tongue"))
    base = ["run", "--teacher", world["teacher"], "--student", "layers:k=1", "--stage", "none",
            "--config", world["grid"]]
    refused = _invoke(*base, "--benchmark", f"files:path={root}")
    assert refused.exit_code == 1
    lines = [line for line in refused.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "'old_tongue'" in lines[0] and "files:codes=old_tongue:<code>" in lines[0]
    assert not (kdreg_home / "kdreg.db").exists()

    mapped = _invoke(*base, "--benchmark", f"files:path={root},codes=old_tongue:ang", "--dry-run")
    assert mapped.exit_code == 0, mapped.output
