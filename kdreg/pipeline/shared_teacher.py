"""A teacher that is loaded once per pretraining build.

:class:`SharedTeacher` serves a student derived from the teacher (``layers``), which loads
the teacher to copy its weights: distillation during pretraining then uses that same
loaded model instead of reading the weights from disk a second time.
"""

from __future__ import annotations

from typing import Any

from kdreg.plugins.spec import Head, LoadedModel


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
