"""Errors written for the person at the terminal.

Every error kdreg raises on purpose is a :class:`KdregError`. Its message says what
went wrong *and what to do*, in one line, because the CLI prints exactly that line
(the traceback only with ``KDREG_DEBUG=1``). Anything that is not a ``KdregError`` is
a bug in kdreg or a plugin and is shown as such.
"""

from __future__ import annotations


class KdregError(Exception):
    """Base class: a one-line, actionable message for the user."""


class ConfigError(KdregError):
    """A command-line option, grid file or environment variable is invalid."""


class PluginError(KdregError):
    """Something about a plugin: unknown, broken, duplicated or not fulfilling its contract."""


class UnknownPluginError(PluginError):
    """No plugin of that kind has that name."""


class PluginLoadError(PluginError):
    """A plugin's entry point could not be imported (raised in strict mode or when the plugin is used)."""


class DuplicatePluginError(PluginError):
    """Two distributions register the same kind and name."""


class ContractError(PluginError):
    """A loaded plugin does not satisfy its kind's contract."""


class ParameterError(PluginError):
    """A ``name:key=value`` specification is malformed or does not match the plugin's declared parameters."""


class IncompatiblePluginsError(PluginError):
    """A combination of plugins cannot work together (e.g. logit KD across different vocabularies)."""


class StoreError(KdregError):
    """The experiment database cannot be opened, read or written."""


class SchemaError(StoreError):
    """The database schema is not one this kdreg can use as it is (behind, newer, or not kdreg's)."""


class RunNotFoundError(StoreError):
    """No run matches the given id or hash prefix."""


class ObtainableError(KdregError):
    """An error about something a grid needs (a model, a dataset) that may just be out of reach.

    ``missing`` and ``instead`` are set when the cause is "not in the local cache, and the
    Hub is unreachable": what is missing (``'bert-large' (google-bert/bert-large-cased)``)
    and how to point at a local copy (``--teacher hf:path=DIR``). The grid's preflight uses
    them to report every missing item in one line with the advice said once.
    """

    def __init__(self, message: str, *, missing: str | None = None, instead: str | None = None) -> None:
        super().__init__(message)
        self.missing = missing
        self.instead = instead

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild, (type(self), str(self), self.missing, self.instead))


def _rebuild(cls: type[ObtainableError], message: str, missing: str | None,
             instead: str | None) -> ObtainableError:
    return cls(message, missing=missing, instead=instead)


class ModelUnavailableError(ObtainableError):
    """A model or tokenizer is neither cached locally nor reachable."""


class DataError(ObtainableError):
    """A dataset or corpus is missing, malformed or inconsistent."""


class UnavailableError(KdregError):
    """Several things a grid needs are not available (each plugin's error, gathered by the preflight)."""

    def __init__(self, message: str, problems: dict[tuple[str, str], KdregError] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or {}
        """(plugin kind, specification) → its error."""
