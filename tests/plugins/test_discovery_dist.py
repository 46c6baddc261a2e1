"""Real plugin distributions, built and pip-installed in the test, found through real entry points.

Three tiny packages are built from source with the installed setuptools and installed
with ``pip install --no-deps --no-build-isolation --no-index --target`` (offline), once
per session. Each test then runs the real ``kdreg`` in a subprocess with
``PYTHONPATH`` pointing at the installation:

* ``kdreg-fake-plugins`` 1.4.0 — a working loss and teacher, and a loss without ``compute``;
* ``kdreg-broken-plugin`` 0.0.1 — a loss whose module raises at import;
* ``kdreg-dup-plugin`` 2.0.0 — installed in a second folder, registers ``fake-kl`` again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

FAKE = '''
"""Plugins of a third-party package (no torch at import)."""
from dataclasses import dataclass, field
from typing import Literal

from kdreg.plugins.spec import Loss, Teacher


class FakeKL(Loss):
    """Temperature-scaled KL from a third-party package."""

    @dataclass(frozen=True)
    class Params:
        temperature: float = field(default=2.0, metadata={"help": "softmax temperature"})
        reduction: Literal["mean", "sum"] = "mean"

    def compute(self, student, teacher, batch):
        raise NotImplementedError


class NoCompute:
    """Has needs but forgot compute."""

    needs = frozenset({"logits"})


class FakeTeacher(Teacher):
    """A teacher from a third-party package."""

    def load(self, head):
        raise NotImplementedError
'''

BROKEN = '''
raise RuntimeError("kdreg-broken-plugin cannot start: libmissing.so not found")
'''

DUP = '''
from kdreg.plugins.spec import Loss


class OtherKL(Loss):
    """Another package's idea of fake-kl."""

    def compute(self, student, teacher, batch):
        raise NotImplementedError
'''


def _package(
    root: Path, dist: str, version: str, module: str, source: str, eps: dict[str, dict[str, str]]
) -> Path:
    """A source tree of a one-module distribution registering ``eps`` (group → name → object)."""
    folder = root / dist
    folder.mkdir(parents=True)
    groups = "\n".join(
        f'[project.entry-points."{group}"]\n' + "\n".join(f'{name} = "{obj}"' for name, obj in items.items())
        for group, items in eps.items()
    )
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{dist}"
            version = "{version}"
            description = "A kdreg plugin built by the test suite"

            [tool.setuptools]
            py-modules = ["{module}"]

            """
        )
        + groups
        + "\n"
    )
    (folder / f"{module}.py").write_text(source)
    return folder


@pytest.fixture(scope="session")
def plugin_sites(tmp_path_factory: pytest.TempPathFactory,
    pip_install: Callable[..., None]) -> dict[str, Path]:
    """``site``: the working and the broken distribution; ``dup``: the duplicating one."""
    root = tmp_path_factory.mktemp("plugin-dists")
    fake = _package(
        root / "src", "kdreg-fake-plugins", "1.4.0", "kdreg_fake_plugins", FAKE,
        {
            "kdreg.losses": {
                "fake-kl": "kdreg_fake_plugins:FakeKL",
                "no-compute": "kdreg_fake_plugins:NoCompute",
            },
            "kdreg.teachers": {"fake-teacher": "kdreg_fake_plugins:FakeTeacher"},
        },
    )
    broken = _package(
        root / "src", "kdreg-broken-plugin", "0.0.1", "kdreg_broken_plugin", BROKEN,
        {"kdreg.losses": {"broken-loss": "kdreg_broken_plugin:Whatever"}},
    )
    dup = _package(
        root / "src", "kdreg-dup-plugin", "2.0.0", "kdreg_dup_plugin", DUP,
        {"kdreg.losses": {"fake-kl": "kdreg_dup_plugin:OtherKL"}},
    )
    pip_install(root / "site", fake, broken)
    pip_install(root / "site-dup", dup)
    return {"site": root / "site", "dup": root / "site-dup"}


def kdreg(sites: list[Path], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real ``kdreg`` (``python -m kdreg``) with the plugin folders on PYTHONPATH."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, sites)), **env}
    return subprocess.run(
        [sys.executable, "-m", "kdreg", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def test_installed_distribution_is_listed_with_the_broken_one(plugin_sites: dict[str, Path]) -> None:
    done = kdreg([plugin_sites["site"]], "plugins", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    rows = {(p["kind"], p["name"]): p for p in listing["plugins"]}
    assert listing["duplicates"] == []

    good = rows[("loss", "fake-kl")]
    assert (good["distribution"], good["version"], good["status"]) == ("kdreg-fake-plugins", "1.4.0", "ok")
    assert good["summary"] == "Temperature-scaled KL from a third-party package."
    assert rows[("teacher", "fake-teacher")]["status"] == "ok"

    broken = rows[("loss", "broken-loss")]
    assert (broken["distribution"], broken["version"]) == ("kdreg-broken-plugin", "0.0.1")
    assert broken["status"] == "broken"
    assert broken["error"] == "RuntimeError: kdreg-broken-plugin cannot start: libmissing.so not found"

    no_compute = rows[("loss", "no-compute")]
    assert no_compute["status"] == "broken"
    assert "missing member 'compute'" in no_compute["error"]

    assert any(p["distribution"] == "kdreg" for p in listing["plugins"])  # the built-ins are still there


def test_other_commands_keep_working_beside_a_broken_plugin(plugin_sites: dict[str, Path]) -> None:
    table = kdreg([plugin_sites["site"]], "plugins", "--kind", "loss")
    assert table.returncode == 0, table.stderr
    assert "broken loss 'broken-loss' (kdreg-broken-plugin 0.0.1): RuntimeError" in table.stdout

    shown = kdreg([plugin_sites["site"]], "plugins", "show", "fake-kl:temperature=4.0", "--json")
    assert shown.returncode == 0, shown.stderr
    (info,) = json.loads(shown.stdout)
    assert info["distribution"] == "kdreg-fake-plugins"
    assert info["spec"] == "fake-kl:temperature=4"
    assert info["values"] == {"temperature": 4.0, "reduction": "mean"}
    assert [(p["parameter"], p["type"], p["default"]) for p in info["params"]] == [
        ("temperature", "float", 2.0),
        ("reduction", "'mean' | 'sum'", "mean"),
    ]

    current = kdreg([plugin_sites["site"]], "db", "current", "--json")
    assert current.returncode == 0, current.stderr
    assert json.loads(current.stdout)["state"] == "not created yet"

    line = one_error_line(kdreg([plugin_sites["site"]], "plugins", "show", "broken-loss"))
    assert "loss plugin 'broken-loss' from kdreg-broken-plugin 0.0.1 is broken: RuntimeError" in line


def test_strict_mode_makes_the_failure_an_error(plugin_sites: dict[str, Path]) -> None:
    done = kdreg(
        [plugin_sites["site"]], "plugins",
        KDREG_STRICT_PLUGINS="1", KDREG_PLUGINS_ALLOW="kdreg-fake-plugins,kdreg-broken-plugin",
    )
    line = one_error_line(done)
    assert "'broken-loss' from kdreg-broken-plugin 0.0.1 is broken" in line
    assert done.stdout == ""


def test_allow_list_limits_loading(plugin_sites: dict[str, Path]) -> None:
    done = kdreg([plugin_sites["site"]], "plugins", "--json", KDREG_PLUGINS_ALLOW="kdreg_fake_plugins")
    assert done.returncode == 0, done.stderr
    listed = {(p["kind"], p["name"], p["distribution"]) for p in json.loads(done.stdout)["plugins"]}
    assert listed == {
        ("teacher", "fake-teacher", "kdreg-fake-plugins"),
        ("loss", "fake-kl", "kdreg-fake-plugins"),
        ("loss", "no-compute", "kdreg-fake-plugins"),
    }


def test_duplicate_name_errors_naming_both_distributions(plugin_sites: dict[str, Path]) -> None:
    sites = [plugin_sites["site"], plugin_sites["dup"]]
    line = one_error_line(kdreg(sites, "plugins", "show", "fake-kl"))
    assert "loss plugin 'fake-kl' is registered by both" in line
    assert "kdreg-fake-plugins 1.4.0" in line and "kdreg-dup-plugin 2.0.0" in line

    listing = kdreg(sites, "plugins", "--json")
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    row = next(p for p in data["plugins"] if p["name"] == "fake-kl")
    assert row["status"] == "duplicate"
    assert "kdreg-dup-plugin 2.0.0" in row["error"]
    assert len(data["duplicates"]) == 1

    teacher = kdreg(sites, "plugins", "show", "fake-teacher")  # the rest of the package still works
    assert teacher.returncode == 0, teacher.stderr
    assert "from kdreg-fake-plugins 1.4.0" in teacher.stdout


def test_contract_breach_and_unknown_names(plugin_sites: dict[str, Path]) -> None:
    line = one_error_line(kdreg([plugin_sites["site"]], "plugins", "show", "no-compute"))
    assert "missing member 'compute'" in line
    assert "kdreg-fake-plugins 1.4.0" in line

    line = one_error_line(kdreg([plugin_sites["site"]], "plugins", "show", "loss/fake-kll"))
    assert line == (
        "error: No loss plugin named 'fake-kll'. Did you mean 'fake-kl'? "
        "`kdreg plugins --kind loss` lists them all."
    )
