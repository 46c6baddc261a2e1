"""Writing third-party plugins, end to end, with real installed distributions.

Once per session, three packages are pip-installed (offline, ``--target``) into one folder:

* the package ``kdreg plugins new loss my-loss`` writes (``kdreg-my-loss`` 0.1.0);
* the example package ``examples/kdreg-example-plugin`` (0.1.0: loss ``example-jsd``,
  benchmark ``example-topics``), copied first so the build leaves the checkout clean;
* ``kdreg-broken-plugins`` 0.0.1, written here: a loss with the wrong ``compute``
  signature, one without ``compute``, one whose value is NaN, one whose module fails.

Each test then runs the real ``kdreg`` in a subprocess with ``PYTHONPATH`` at that
folder, so discovery goes through real entry-point metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kdreg-example-plugin"

BROKEN_PYPROJECT = """
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "kdreg-broken-plugins"
version = "0.0.1"

[project.entry-points."kdreg.losses"]
broken-signature = "kdreg_broken_plugins.losses:WrongSignature"
broken-missing = "kdreg_broken_plugins.losses:MissingCompute"
broken-nan = "kdreg_broken_plugins.losses:NotFinite"
broken-import = "kdreg_broken_plugins.unimportable:Anything"
broken-heavy = "kdreg_broken_plugins.heavy:HeavyAtImport"
broken-heads = "kdreg_broken_plugins.heads:TwelveHeads"
fitted-heads = "kdreg_broken_plugins.heads:FittedHeads"
"""

BROKEN_LOSSES = '''
"""Losses broken on purpose."""
from kdreg.plugins.spec import Loss


class WrongSignature(Loss):
    """compute without its batch argument."""

    def compute(self, student, teacher):
        return student.logits.sum()


class MissingCompute(Loss):
    """Forgot compute."""


class NotFinite(Loss):
    """Returns NaN."""

    def compute(self, student, teacher, batch):
        return student.logits.sum() * float("nan")
'''

HEAVY = '''
"""A working loss whose module imports torch at the top (slows down every `kdreg plugins`)."""
import torch

from kdreg.plugins.spec import Loss


class HeavyAtImport(Loss):
    """Mean squared error on logits."""

    def compute(self, student, teacher, batch):
        return torch.nn.functional.mse_loss(student.logits, teacher.logits.detach())
'''

HEADS = '''
"""A loss whose prepare refuses every model without its number of heads (12 by default)."""
from dataclasses import dataclass

from kdreg.errors import IncompatiblePluginsError
from kdreg.plugins.spec import CheckSetup, Loss


@dataclass(frozen=True)
class HeadsParams:
    heads: int = 12


class TwelveHeads(Loss):
    """Attention-map MSE, head by head."""

    Params = HeadsParams
    needs = frozenset({"attentions"})

    def prepare(self, teacher, student, stage):
        if student.num_heads != self.params.heads:
            have = student.num_heads
            raise IncompatiblePluginsError(f"needs {self.params.heads} heads, the student has {have}")

    def compute(self, student, teacher, batch):
        return (student.attentions[-1] - teacher.attentions[-1].detach()).pow(2).mean()


class FittedHeads(TwelveHeads):
    """The same, declaring the parameters its conformance checks should use."""

    check_setup = CheckSetup(params="heads=2")
'''

UNIMPORTABLE = 'raise ImportError("kdreg-broken-plugins: this module is broken on purpose")\n'

SKIP_BUILD_OUTPUT = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache")


def run(
    *argv: str, site: Path, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter that sees the installed packages (and nothing of the test's imports)."""
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


@pytest.fixture(scope="session")
def authoring(tmp_path_factory: pytest.TempPathFactory,
    pip_install: Callable[..., None]) -> dict[str, Path]:
    """The scaffolded, example and broken packages, installed into one folder."""
    base = tmp_path_factory.mktemp("authoring")
    scaffold = base / "my-loss"
    made = subprocess.run(
        [sys.executable, "-m", "kdreg", "plugins", "new", "loss", "my-loss", "--dir", str(scaffold)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    executor = base / "my-exec"
    made = subprocess.run(
        [sys.executable, "-m", "kdreg", "plugins", "new", "executor", "my-exec", "--dir", str(executor)],
        capture_output=True, text=True, timeout=120,
    )
    assert made.returncode == 0, made.stderr
    example = base / "example"
    shutil.copytree(EXAMPLE, example, ignore=SKIP_BUILD_OUTPUT)
    broken = base / "broken"
    (broken / "kdreg_broken_plugins").mkdir(parents=True)
    (broken / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (broken / "kdreg_broken_plugins" / "__init__.py").write_text("")
    (broken / "kdreg_broken_plugins" / "losses.py").write_text(BROKEN_LOSSES)
    (broken / "kdreg_broken_plugins" / "unimportable.py").write_text(UNIMPORTABLE)
    (broken / "kdreg_broken_plugins" / "heavy.py").write_text(HEAVY)
    (broken / "kdreg_broken_plugins" / "heads.py").write_text(HEADS)
    site = base / "site"
    pip_install(site, scaffold, executor, example, broken)
    return {"site": site, "scaffold": scaffold, "executor": executor, "example": example}


def check_json(site: Path, *argv: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = run("-m", "kdreg", "plugins", "check", *argv, "--json", site=site)
    assert done.stdout.strip(), done.stderr
    reports = json.loads(done.stdout)["plugins"]
    return done.returncode, {f"{r['kind']}/{r['name']}": r for r in reports}


def test_installed_plugins_are_listed_with_distribution_and_version(authoring: dict[str, Path]) -> None:
    done = run("-m", "kdreg", "plugins", "--json", site=authoring["site"])
    assert done.returncode == 0, done.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(done.stdout)["plugins"]}
    for kind, name, dist in [
        ("loss", "my-loss", "kdreg-my-loss"),
        ("loss", "example-jsd", "kdreg-example-plugin"),
        ("benchmark", "example-topics", "kdreg-example-plugin"),
    ]:
        assert (rows[kind, name]["distribution"], rows[kind, name]["version"]) == (dist, "0.1.0")
        assert rows[kind, name]["status"] == "ok"
    # broken neighbours are listed as broken, and stop nothing
    assert rows["loss", "broken-import"]["status"] == "broken"
    assert "broken on purpose" in rows["loss", "broken-import"]["error"]
    assert rows["loss", "broken-missing"]["status"] == "broken"
    assert rows["loss", "broken-signature"]["status"] == "ok"  # only a conformance check can see it


def test_plugins_check_passes_for_the_scaffold_and_the_example(authoring: dict[str, Path]) -> None:
    code, reports = check_json(authoring["site"], "my-loss", "example-jsd", "example-topics:languages=de")
    assert code == 0, reports
    assert set(reports) == {"loss/my-loss", "loss/example-jsd", "benchmark/example-topics:languages=de"}
    for report in reports.values():
        assert report["passed"]
        statuses = {c["check"]: c["status"] for c in report["checks"]}
        assert statuses["import"] == "pass" and "fail" not in statuses.values()
    checks = {c["check"]: c for c in reports["benchmark/example-topics:languages=de"]["checks"]}
    assert "en 6, de 6" in checks["examples: test"]["reason"]


def test_broken_plugins_are_reported_by_member_and_do_not_stop_the_others(authoring: dict[str, Path]) -> None:
    code, reports = check_json(
        authoring["site"],
        "broken-heavy",  # first: its import is measured before any check has loaded torch
        "broken-signature",
        "broken-missing",
        "broken-nan",
        "broken-import",
        "my-loss",
        "--kind",
        "loss",
    )
    assert code == 1

    def failed(name: str) -> dict[str, str]:
        return {c["check"]: c["reason"] for c in reports[f"loss/{name}"]["checks"] if c["status"] == "fail"}

    assert "compute(self, student, teacher)" in failed("broken-signature")["contract: compute"]
    assert "'compute' is not implemented" in failed("broken-missing")["contract: compute"]
    assert "compute returned nan" in failed("broken-nan")["loss: finetune"]
    assert "broken on purpose" in failed("broken-import")["import"]
    assert failed("broken-heavy") == {
        "import: light": "importing kdreg_broken_plugins.heavy imports torch at module level, which slows "
        "down every `kdreg plugins`; import it inside the methods that need it"
    }
    assert reports["loss/my-loss"]["passed"]


def test_plugins_check_table_and_exit_code(authoring: dict[str, Path]) -> None:
    """The table names the failing member; an unknown name is a failed row, not the end of the command."""
    done = run(
        "-m",
        "kdreg",
        "plugins",
        "check",
        "broken-signature",
        "no-such-plugin",
        "--kind",
        "loss",
        site=authoring["site"],
    )
    assert done.returncode == 1
    assert "contract: compute" in done.stdout and "compute(self, student, teacher)" in done.stdout
    assert "FAILS loss broken-signature" in done.stdout
    assert "No loss plugin named 'no-such-plugin'" in done.stdout


def test_a_loss_that_refuses_the_check_models_fails_until_it_declares_why(authoring: dict[str, Path]) -> None:
    """A skipped behaviour check is not a pass: its maths never ran (issue 16 §3)."""
    done = run("-m", "kdreg", "plugins", "check", "broken-heads", "fitted-heads", "--kind", "loss",
               site=authoring["site"])
    assert done.returncode == 1
    assert "FAILS loss broken-heads: 15 passed, 2 failed, 0 skipped" in done.stdout
    assert "conforms loss fitted-heads" in done.stdout
    fix = [line for line in done.stdout.splitlines() if line.startswith("  loss: finetune:")]
    assert len(fix) == 1 and "needs 12 heads, the student has 2" in fix[0]
    assert "check_setup = CheckSetup(" in fix[0] and "skips={'loss: finetune'" in fix[0]


def test_the_scaffold_and_the_example_pass_their_own_tests(authoring: dict[str, Path]) -> None:
    """Run unchanged with pytest, after installation, in a fresh interpreter."""
    tests = [authoring["scaffold"] / "tests", authoring["example"] / "tests"]
    done = run(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *map(str, tests),
        site=authoring["site"],
        cwd=authoring["scaffold"],
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "10 passed" in done.stdout


def test_check_options_params_kind_and_names_of_several_kinds() -> None:
    """In-process, on built-ins: --params, a name several kinds register, --params with two names."""
    from typer.testing import CliRunner

    from kdreg.cli.main import app
    from kdreg.errors import KdregError
    from kdreg.plugins.registry import registry

    try:
        registry().entry("loss", "kl").load()
    except KdregError:
        pytest.skip("the built-in kl loss is not there yet")
    runner = CliRunner()
    result = runner.invoke(
        app, ["plugins", "check", "kl", "--kind", "loss", "--params", "temperature=4", "--json"]
    )
    assert result.exit_code == 0, result.output
    checks = {c["check"]: c for c in json.loads(result.output)["plugins"][0]["checks"]}
    assert checks["params: round-trip"]["reason"] == "kl:temperature=4"
    result = runner.invoke(
        app, ["plugins", "check", "kl", "--kind", "loss", "--params", "temprature=4", "--json"]
    )
    assert result.exit_code == 1
    checks = {c["check"]: c for c in json.loads(result.output)["plugins"][0]["checks"]}
    assert "no parameter 'temprature'" in checks["params: build"]["reason"]
    # 'hf' is a teacher and a student; both need a path, so both fail at their parameters
    result = runner.invoke(app, ["plugins", "check", "hf", "--json"])
    reports = {r["kind"]: r for r in json.loads(result.output)["plugins"]}
    assert set(reports) == {"teacher", "student"} and result.exit_code == 1
    result = runner.invoke(app, ["plugins", "check", "kl", "mse", "--params", "temperature=4"])
    assert result.exit_code == 1 and "--params applies to one plugin" in result.output


# ------------------------------------------------------------------ scaffolds
@pytest.mark.parametrize("kind", ["benchmark", "corpus", "teacher", "student", "executor"])
def test_every_kind_scaffolds_a_conforming_plugin(
    kind: str, tmp_path: Path, tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from kdreg.cli.plugins_dev import write_plugin_package
    from kdreg.plugins.registry import registry
    from kdreg.testing import assert_plugin_conforms

    if kind in ("teacher", "student"):
        try:
            registry().entry("teacher", "hf").load()
        except Exception:
            pytest.skip("the built-in hf teacher is not there yet")
    written = write_plugin_package(kind, f"my-{kind}", tmp_path / "pkg")
    assert sorted(p.relative_to(tmp_path / "pkg").as_posix() for p in written) == [
        "README.md",
        "pyproject.toml",
        f"src/kdreg_my_{kind}/__init__.py",
        f"src/kdreg_my_{kind}/plugin.py",
        f"tests/test_kdreg_my_{kind}.py",
    ]
    project = tomllib.loads((tmp_path / "pkg" / "pyproject.toml").read_text())
    from kdreg.plugins.spec import KINDS

    class_name = f"My{kind.capitalize()}"
    assert project["project"]["entry-points"][KINDS[kind]] == {
        f"my-{kind}": f"kdreg_my_{kind}.plugin:{class_name}"
    }
    monkeypatch.syspath_prepend(str(tmp_path / "pkg" / "src"))
    cls = getattr(importlib.import_module(f"kdreg_my_{kind}.plugin"), class_name)
    params = {"path": tiny_bert} if kind == "teacher" else None
    teacher = f"hf:path={tiny_bert}" if kind == "student" else None
    assert_plugin_conforms(kind, cls, params, teacher=teacher)


def test_scaffolds_are_described_for_the_kind_and_name_asked_for(tmp_path: Path) -> None:
    import ast

    from kdreg.cli.plugins_dev import write_plugin_package
    from kdreg.plugins.spec import KINDS

    summaries = {}
    for kind in KINDS:
        write_plugin_package(kind, f"word-{kind}", tmp_path / kind)
        module = ast.parse((tmp_path / kind / "src" / f"kdreg_word_{kind}" / "plugin.py").read_text())
        classes = [node for node in module.body if isinstance(node, ast.ClassDef)]
        summary = (ast.get_docstring(classes[-1]) or "").splitlines()[0]  # what `kdreg plugins` shows
        assert f"word-{kind}" in summary and kind in summary, summary
        assert (ast.get_docstring(module) or "").startswith(summary)
        assert summary in (tmp_path / kind / "README.md").read_text()
        summaries[kind] = summary
    assert "squared" not in summaries["loss"].lower()  # the example's formula is not the plugin's summary
    assert len(set(summaries.values())) == len(KINDS)


def test_new_refuses_a_non_empty_folder_and_bad_names(tmp_path: Path, kdreg_cli: Callable[..., Any]) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("mine")
    done = kdreg_cli("plugins", "new", "loss", "x", "--dir", str(tmp_path / "taken"))
    assert done.returncode == 1 and "not empty" in done.stderr
    assert (tmp_path / "taken" / "file.txt").read_text() == "mine"
    done = kdreg_cli("plugins", "new", "lost", "x", "--dir", str(tmp_path / "new"))
    assert done.returncode == 1 and "Unknown plugin kind 'lost'" in done.stderr
    done = kdreg_cli("plugins", "new", "loss", "9 lives", "--dir", str(tmp_path / "new"))
    assert done.returncode == 1 and "must start with a letter" in done.stderr
    done = kdreg_cli("plugins", "new", "loss", "a" * 300, "--dir", str(tmp_path / "new"))
    assert done.returncode == 1 and "up to 64" in done.stderr
    done = kdreg_cli("plugins", "new", "loss", "kl", "--dir", str(tmp_path / "new"))
    assert done.returncode == 1 and "A loss plugin named 'kl' is already installed (from kdreg" in done.stderr
    assert not (tmp_path / "new").exists()
    (tmp_path / "a-file").write_text("x")
    done = kdreg_cli("plugins", "new", "loss", "fine", "--dir", str(tmp_path / "a-file" / "sub"))
    assert done.returncode == 1 and "Cannot write the package" in done.stderr


def test_plugin_authoring_help_imports_nothing_heavy(tmp_path: Path) -> None:
    probe = (
        "import sys\nfrom kdreg.cli.main import main\n"
        "for argv in (['plugins', '--help'], ['plugins', 'check', '--help'], ['plugins', 'new', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'datasets'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "check" in done.stdout and "new" in done.stdout


# ----------------------------------------------------------------- end to end
@pytest.mark.slow
def test_a_grid_with_the_example_plugins_stores_results_with_plugin_versions(
    authoring: dict[str, Path], tiny_bert: Path, kdreg_home: Path
) -> None:
    site = authoring["site"]
    help_text = run("-m", "kdreg", "run", "--help", site=site).stdout
    if "--teacher" not in help_text:
        pytest.skip("`kdreg run` is not there yet")
    # One optimiser step per phase: the point is the plumbing, not the accuracy.
    hparams = kdreg_home / "one-step.toml"
    hparams.write_text("[teacher_finetune]\nmax_steps = 1\n\n[finetune]\nmax_steps = 1\n")
    done = run(
        "-m",
        "kdreg",
        "run",
        "--teacher",
        f"hf:path={tiny_bert}",
        "--student",
        "layers:k=1",
        "--stage",
        "finetune",
        "--loss",
        "example-jsd",
        "--benchmark",
        "example-topics",
        "--seed",
        "0,1",
        "--device",
        "cpu",
        "--config",
        str(hparams),
        site=site,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    query = run("-m", "kdreg", "query", "--loss", "example-jsd", "--format", "json", site=site)
    assert query.returncode == 0, query.stderr
    rows = json.loads(query.stdout)
    assert sorted(r["seed"] for r in rows) == [0, 1]
    assert {(r["benchmark"], r["status"]) for r in rows} == {("example-topics", "succeeded")}
    assert all(0 <= r["source"] <= 1 for r in rows)

    from sqlalchemy import select

    from kdreg.store.schema import Run
    from kdreg.store.store import open_store

    store = open_store()
    with store.session() as session:
        runs = list(session.scalars(select(Run).where(Run.loss == "example-jsd")))
        assert len(runs) == 2
        for record in runs:
            for key in ("loss", "benchmark"):
                assert record.config[key]["distribution"] == "kdreg-example-plugin"
                assert record.config[key]["version"] == "0.1.0"
            plugins = {(p["name"], p["distribution"], p["version"]) for p in record.environment["plugins"]}
            assert ("example-jsd", "kdreg-example-plugin", "0.1.0") in plugins
            assert ("example-topics", "kdreg-example-plugin", "0.1.0") in plugins
            languages = {r.lang for r in record.results}
            assert languages == {"en", "de", "fr"}
    store.close()


def test_a_third_party_executor_is_discovered_and_runs_a_grid(
        authoring: dict[str, Path], world: dict[str, str], kdreg_home: Path) -> None:
    site = authoring["site"]
    listed = run("-m", "kdreg", "plugins", "--kind", "executor", "--json", site=site)
    entries = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}
    assert entries["my-exec"]["distribution"] == "kdreg-my-exec" and {"inline", "local"} <= set(entries)
    done = run("-m", "kdreg", "run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
               world["benchmark"], "--stage", "none,finetune", "--config", world["grid"],
               "--executor", "my-exec:verbose=true", site=site)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("my-exec: ") == 4  # the fine-tuned teacher, then three runs, through the plugin
    db = kdreg_home / "kdreg.db"
    import sqlite3

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT DISTINCT executor FROM tasks").fetchall() == [("my-exec:verbose=True",)]
        statuses = conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
        assert statuses == [("succeeded", 3)]
