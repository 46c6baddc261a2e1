"""Every model a task loaded, with transformers' loading report, for the run's environment.

A run's numbers depend on weights loaded in other tasks too: the fine-tuned teacher and
the student distilled in pretraining are artifacts built once. Their builds' loading
reports are saved beside them (``kdreg-model.json``) and copied into the environment of
every run that uses them, marked with the artifact they came through, so ``kdreg show``
tells the whole story: "teacher hf (...) with an mlm head: 6 head weights initialised
randomly".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kdreg.plugins.spec import LoadedModel

ABOUT_KEY = "loads"
"""Where an artifact's ``kdreg-model.json`` keeps the loads that built it."""


class LoadLog:
    """The loads of the current task, in order."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, role: str, spec: str, head: str, loaded: LoadedModel) -> None:
        """Note a plugin's load (a built model without a report — random weights by design — is noted too)."""
        report = loaded.load_report
        entry: dict[str, Any] = {"role": role, "plugin": spec, "head": head}
        if report is None:
            entry["built"] = True
        else:
            entry.update(report.to_json())
        self.entries.append(entry)

    def add_artifact(self, folder: Path, via: str) -> None:
        """Note the loads that built the artifact in ``folder``, as reached through ``via``."""
        from kdreg.pipeline.model_cache import read_about

        for entry in read_about(folder).get(ABOUT_KEY, []):
            self.entries.append({**entry, "via": via})

    def take(self) -> list[dict[str, Any]]:
        """The entries so far, and start afresh (one task's loads)."""
        entries, self.entries = self.entries, []
        return entries


def describe(entry: dict[str, Any]) -> str:
    """One line per load for ``kdreg show``."""
    from kdreg.plugins.load_report import LoadReport

    where = f" (via the {entry['via']})" if entry.get("via") else ""
    what = f"{entry.get('role', '?')} {entry.get('plugin', '?')} with a {entry.get('head', '?')} head{where}"
    if entry.get("built"):
        return f"{what}: built, not loaded (initialised by its plugin)"
    return f"{what}: {LoadReport.from_json(entry).describe()}"
