"""Plugin instances shared by a whole grid, and a teacher that is loaded once per build.

A grid names the same teacher, student, benchmark and corpus in many combinations.
Instantiating them once (and running each ``check()`` once) means a benchmark reads and
validates its files once per grid, not once per run. Losses are the exception: they are
created fresh for every training phase, because ``prepare()`` gives them per-phase
state (a learned projection).

:class:`SharedTeacher` serves a student derived from the teacher (``layers``), which loads
the teacher to copy its weights: distillation during pretraining then uses that same
loaded model instead of reading the weights from disk a second time.
"""

from __future__ import annotations

from typing import Any

from kdreg.plugins.spec import Head, LoadedModel


class PluginInstances:
    """One instance per (kind, canonical specification), created on first use."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, str], Any] = {}
        self._checked: set[tuple[str, str]] = set()

    def get(self, plugin: Any) -> Any:
        """The instance of a ResolvedPlugin (created once)."""
        key = (plugin.entry.kind, plugin.spec)
        if key not in self._made:
            self._made[key] = plugin.create()
        return self._made[key]

    def checked(self, plugin: Any) -> Any:
        """The instance, after its ``check()`` has passed (run once per grid)."""
        instance = self.get(plugin)
        key = (plugin.entry.kind, plugin.spec)
        if key not in self._checked:
            check = getattr(instance, "check", None)
            if callable(check):
                check()
            self._checked.add(key)
        return instance


def shares_parameters(a: Any, b: Any) -> bool:
    """Whether two torch modules hold any parameter storage in common."""
    mine = {p.data_ptr() for p in a.parameters()}
    return any(p.data_ptr() in mine for p in b.parameters())


class SharedTeacher:
    """A teacher plugin whose ``load(head)`` happens at most once per head (for one pretraining build).

    Every other attribute (``params``, ``load_config``, ``load_tokenizer``) is the plugin's own,
    so a student plugin sees the teacher it expects.
    """

    def __init__(self, plugin: Any) -> None:
        self._plugin = plugin
        self._loaded: dict[Head, LoadedModel] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._plugin, name)

    def load(self, head: Head) -> LoadedModel:
        if head not in self._loaded:
            self._loaded[head] = self._plugin.load(head)
        return self._loaded[head]

    def tokenizer(self) -> Any:
        """The teacher's tokenizer, reading no weights when nothing was loaded yet and the plugin can."""
        for loaded in self._loaded.values():
            return loaded.tokenizer
        load_tokenizer = getattr(self._plugin, "load_tokenizer", None)
        if callable(load_tokenizer):
            return load_tokenizer()
        return self.load(Head("mlm")).tokenizer

    def distil_from(self, head: Head, student_model: Any) -> LoadedModel:
        """The loaded teacher to distil from, unless the student shares its weights (then a fresh load)."""
        loaded = self.load(head)
        if shares_parameters(loaded.model, student_model):
            return self._plugin.load(head)
        return loaded
