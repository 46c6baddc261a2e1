"""`kdreg query`, `report` and the end-of-run table at 80 and 100 columns, and piped.

The terminal is set explicitly: ``COLUMNS`` and ``TTY_COMPATIBLE=1`` (rich's switch for
"this output is a terminal"); without ``TTY_COMPATIBLE`` the output counts as piped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from kdreg.cli.main import app
from kdreg.testing.store_data import SyntheticRun, seeded_copy

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[SyntheticRun]]]:
    cache = tmp_path_factory.getbasetemp() / "synthetic-store-cache"
    cache.mkdir(exist_ok=True)
    path = tmp_path_factory.mktemp("widths") / "runs.db"
    yield path, seeded_copy(cache, path)


def terminal(monkeypatch: pytest.MonkeyPatch, width: int | None) -> None:
    """A terminal ``width`` columns wide; None: output piped (not a terminal), COLUMNS=80 all the same."""
    monkeypatch.setenv("COLUMNS", str(width or 80))
    monkeypatch.setenv("NO_COLOR", "1")
    if width is None:
        monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    else:
        monkeypatch.setenv("TTY_COMPATIBLE", "1")


def widest(text: str) -> int:
    return max(cell_len(ANSI.sub("", line)) for line in text.splitlines())


def invoke(path: Path, *args: str) -> str:
    done = CliRunner().invoke(app, [*args, "--db", str(path)])
    assert done.exit_code == 0, done.output
    return done.stdout


@pytest.mark.parametrize("width", [80, 100])
def test_query_fits_and_keeps_the_identifying_columns(seeded, monkeypatch: pytest.MonkeyPatch,
                                                      width: int) -> None:
    path, runs = seeded
    terminal(monkeypatch, width)
    out = invoke(path, "query", "-n", "30")
    assert widest(out) <= width
    shown = {r.id: r for r in runs if r.id > len(runs) - 30}
    for run in shown.values():  # each run's id, stage and seed whole on one line: never 'bot'/'h'
        assert re.search(rf"^{run.id}\s.*\b{run.stage}\b.*\s{run.seed}(\s|$)", out, re.M), run
    assert "kl#1 = kl:alpha=0.5,temperature=4" in out  # long specs: a short label and its legend
    grouped = invoke(path, "query", "--group-seeds", "--lang", "de,fr,zh", "-n", "12")
    assert widest(grouped) <= width and "0.642 ± 0.011 (3)" in grouped


@pytest.mark.parametrize("width", [80, 100])
def test_report_fits(seeded, monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    path, _ = seeded
    terminal(monkeypatch, width)
    out = invoke(path, "report")
    assert widest(out) <= width
    assert re.search(r"^chance\s+33\.3", out, re.M)  # xnli knows its chance level: 1/3


def test_piped_output_keeps_the_natural_width(seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped, nothing is folded or abbreviated even with COLUMNS=80: there is no width to keep,
    and scripts and grep want whole names (machine formats exist too)."""
    path, _ = seeded
    terminal(monkeypatch, None)
    report = invoke(path, "report")
    assert widest(report) > 150 and "kl#1" not in report
    assert re.search(r"distil\s+finetune\s+kl:alpha=0\.5,temperature=4\s", report)
    query = invoke(path, "query", "-n", "5")
    assert widest(query) > 80 and "kl:alpha=0.5,temperature=4" in query and "kl#1" not in query


@pytest.mark.parametrize("width", [80, 100])
def test_end_of_run_table_fits_and_pools_seeds(seeded, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], width: int) -> None:
    """The table `kdreg run` ends with: mean ± std per configuration with n once per row, chance
    level as the last row, the teacher never best, every line within the terminal."""
    from kdreg.cli.summary import print_summary
    from kdreg.store.store import open_store

    path, _ = seeded
    terminal(monkeypatch, width)
    store = open_store(f"sqlite:///{path}", read_only=True)
    try:
        print_summary(store, 1)
    finally:
        store.close()
    out = capsys.readouterr().out
    assert widest(out) <= width
    assert re.search(r"\b3\s+\d+\.\d ± \d+\.\d[ *]", out)  # n = 3 seeds, then mean ± std
    teacher_rows = [line for line in out.splitlines() if re.search(r"\bteacher\b", line) and "±" in line]
    assert teacher_rows and not any("*" in line for line in teacher_rows)
    assert re.search(r"^chance\s+33\.3", out, re.M) and re.search(r"^chance\s+14\.3", out, re.M)


def test_a_dry_run_shows_only_what_differs_and_fits(
        monkeypatch: pytest.MonkeyPatch, kdreg_home: Path) -> None:
    """Two teachers: the runs table has a teacher column; what every run shares is said once, above it."""
    terminal(monkeypatch, 80)
    done = CliRunner().invoke(app, ["run", "--dry-run", "--teacher", "synthetic,synthetic:size=large"])
    assert done.exit_code == 0, done.output
    text = ANSI.sub("", done.stdout)
    assert widest("\n".join(line for line in text.splitlines() if line[:1] in "┏┃┡│└")) <= 80  # the tables
    shared = text[text.index("every run:"):text.index("runs\n")]
    assert " ".join(shared.split()) == ("every run: student layers · loss kl · benchmark xnli · corpus "
                                        "wikipedia · seed 0")
    header = next(line for line in text.splitlines() if "action" in line and "stage" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == ["action", "before", "stage",
                                                                          "teacher", "needs", "unavailable",
                                                                          "hash"]
    assert sum(line.startswith("│ run ") for line in text.splitlines()) == 10
