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


class ModelUnavailableError(KdregError):
    """A model or tokenizer is neither cached locally nor reachable."""


class DataError(KdregError):
    """A dataset or corpus is missing, malformed or inconsistent."""
