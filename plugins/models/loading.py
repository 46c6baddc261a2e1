"""Loading Hugging Face models for teachers and students, and saying clearly why it failed.

Every built-in model plugin goes through :func:`load_pretrained`: one code path for a
hub id (``google-bert/bert-base-multilingual-cased``) and for a local folder written
by ``save_pretrained``, so the tests, which can only use local folders, exercise the
same calls the hub models take.

Choices made here, once for all model plugins:

* weights load in float32 (transformers 5 defaults to the checkpoint's own dtype), so
  training behaves the same whatever precision a checkpoint was saved in; mixed
  precision is the pipeline's business;
* safetensors is preferred: transformers tries it first and falls back to a pickled
  ``pytorch_model.bin`` only when a repository has nothing else (``use_safetensors=None``);
  a local folder that has safetensors weights is loaded with ``use_safetensors=True``;
* ``trust_remote_code`` stays off unless the plugin's parameter asks for it;
* transformers' loading report (missing, unused and re-shaped weights) is not printed
  but returned with the model (:class:`~kdreg.plugins.load_report.LoadReport`): kdreg
  stores it with the run and refuses KD from a head the checkpoint lacks; progress bars
  are silenced, the CLI draws its own progress.

Before the first request to the Hub, :func:`kdreg.hub.hub_online` asks it once, in
seconds: when it does not answer, the process works from the local cache in offline
mode instead of retrying every request. When a model is neither cached nor reachable,
or a local folder is missing, the error is
a one-line :class:`~kdreg.errors.ModelUnavailableError` that says what to pass instead
(``--teacher hf:path=/path/to/model``). Only loading errors (``OSError`` and the
huggingface_hub errors) are turned into it; anything else is a bug and surfaces as is.

torch and transformers are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kdreg.errors import ModelUnavailableError
from kdreg.hub import hub_online, offline_reason, offline_requested
from kdreg.plugins.spec import Head, LoadedModel, LoadReport

Role = Literal["teacher", "student"]

_OFFLINE_HINTS = (
    "couldn't connect", "could not connect", "offline mode", "connection", "timed out",
    "name resolution", "unreachable", "cannot find the requested files in the local cache",
)


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from, and who asked for it (for the advice in error messages)."""

    location: str
    """A Hugging Face model id or a local folder."""
    role: Role
    plugin: str
    """The plugin name as the user wrote it (``mbert``, ``hf``)."""
    revision: str | None = None
    """Branch, tag or commit of a hub model; ignored for a local folder."""
    trust_remote_code: bool = False

    @property
    def local_path(self) -> Path | None:
        """The folder when ``location`` names one (existing or not), None for a hub id."""
        return Path(self.location).expanduser() if looks_local(self.location) else None

    @property
    def described(self) -> str:
        """How messages name the model: ``teacher 'mbert' (google-bert/...)``."""
        return f"{self.role} {self.plugin!r} ({self.location})"


def looks_local(location: str) -> bool:
    """Whether ``location`` is meant as a folder rather than a hub id.

    A hub id is ``name`` or ``namespace/name``; anything that exists on disk, is absolute,
    starts with ``.`` or ``~``, or has more than one ``/`` is a path.
    """
    if Path(location).expanduser().exists():
        return True
    return (
        location.startswith((".", "~"))
        or Path(location).is_absolute()
        or location.count("/") > 1
        or (os.sep != "/" and os.sep in location)
    )


def advice(role: Role) -> str:
    """The fallback every message offers: a local folder through the generic plugin."""
    return f"pass a local folder, e.g. --{role} hf:path=/path/to/model"


# ------------------------------------------------------------------ errors
def _hub_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub import errors

    return (OSError, errors.EntryNotFoundError, errors.HfHubHTTPError, errors.LocalEntryNotFoundError)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or offline_requested() is not None


def unavailable_error(source: ModelSource, exc: BaseException) -> ModelUnavailableError:
    """The one-line error for a failed load of ``source``."""
    from huggingface_hub import errors

    chain = list(_causes(exc))
    text = " ".join(str(exc).split())
    first = text[:200] or type(exc).__name__
    local = source.local_path
    if local is not None:
        if not local.exists():
            return missing_folder_error(source)
        return ModelUnavailableError(
            f"{source.role} {source.plugin!r}: cannot load the model folder {local} ({first}); "
            f"pass a folder written by save_pretrained (config.json, weights and tokenizer files)."
        )
    if any(isinstance(e, errors.RevisionNotFoundError) for e in chain):
        return ModelUnavailableError(
            f"{source.described}: revision {source.revision!r} does not exist on the Hugging Face Hub; "
            f"choose another {source.plugin}:revision=... or leave it out."
        )
    missing_repo = any(isinstance(e, errors.RepositoryNotFoundError) for e in chain)
    if missing_repo or "not a valid model identifier" in text:
        return ModelUnavailableError(
            f"{source.described}: no such model on the Hugging Face Hub (or it is private or gated: "
            f"log in with `hf auth login`); check the name, or {advice(source.role)}."
        )
    lowered = " ".join(str(e) for e in chain).lower()
    offline_kinds = (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled, ConnectionError,
                     TimeoutError)
    unreachable = any(isinstance(e, offline_kinds) for e in chain) or any(
        hint in lowered for hint in _OFFLINE_HINTS
    )
    if _offline() or unreachable:
        return offline_error(source)
    return ModelUnavailableError(
        f"{source.described}: cannot load the model ({type(exc).__name__}: {first})."
    )


def offline_error(source: ModelSource) -> ModelUnavailableError:
    """The error for a hub model that is not in the local cache while the Hub cannot be used."""
    return ModelUnavailableError(
        f"{source.role} {source.plugin!r}: model {source.location} is not in the local Hugging Face "
        f"cache and {offline_reason()}; {advice(source.role)}, or set HF_HOME to a cache that has it.",
        missing=f"{source.plugin!r} ({source.location})",
        instead=f"--{source.role} hf:path=DIR",
    )


def missing_folder_error(source: ModelSource) -> ModelUnavailableError:
    """The error for a local folder that does not exist."""
    return ModelUnavailableError(
        f"{source.role} {source.plugin!r}: model folder {source.local_path} does not exist; pass an existing "
        f"folder written by save_pretrained (e.g. --{source.role} hf:path=/path/to/model) "
        "or a Hugging Face model id."
    )


@contextlib.contextmanager
def translated_errors(source: ModelSource) -> Iterator[None]:
    """Turn loading errors (only those) inside the block into ModelUnavailableError."""
    try:
        yield
    except _hub_errors() as exc:
        raise unavailable_error(source, exc) from exc


# ----------------------------------------------------------------- quiet
@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars for the block, then restore them."""
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hub_bars_off = hub_utils.are_progress_bars_disabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        if not hub_bars_off:
            hub_utils.enable_progress_bars()


# ----------------------------------------------------------------- loading
def _from_kwargs(source: ModelSource) -> tuple[str, dict[str, Any]]:
    """The first argument and keyword arguments shared by every ``from_pretrained`` call."""
    local = source.local_path
    if local is not None:
        if not local.exists():
            raise missing_folder_error(source)
        return str(local), {"trust_remote_code": source.trust_remote_code}
    hub_online()  # asked once per process: offline, the libraries then read the cache without retrying
    kwargs: dict[str, Any] = {"trust_remote_code": source.trust_remote_code}
    if source.revision:
        kwargs["revision"] = source.revision
    return source.location, kwargs


def check_available(source: ModelSource) -> None:
    """Fail fast when the model cannot load: a missing folder, or a hub model neither cached nor reachable.

    Reads only ``config.json`` (from the cache, or downloads that one small file), so it
    is cheap enough for the pre-flight check of a grid.
    """
    local = source.local_path
    if local is not None:
        if not local.exists():
            raise missing_folder_error(source)
        if not (local / "config.json").is_file():
            raise ModelUnavailableError(
                f"{source.role} {source.plugin!r}: {local} has no config.json, so it is not a model folder; "
                "pass a folder written by save_pretrained (config.json, weights and tokenizer files)."
            )
        return
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(source.location, "config.json", revision=source.revision)
    if isinstance(cached, str):
        return
    if not hub_online():  # decided in seconds, once: no request, no retries
        raise offline_error(source)
    with translated_errors(source), quiet_transformers():
        hf_hub_download(source.location, "config.json", revision=source.revision)


def stored_config(source: ModelSource) -> dict[str, Any] | None:
    """The model's ``config.json`` as a dict, from its folder or the Hub cache; None when not on disk.

    Reads the file only (no transformers import, no download): what planning asks of a
    configuration (its number of layers) it can have in a millisecond.
    """
    import json

    local = source.local_path
    if local is not None:
        path: Path | None = local / "config.json"
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source.location, "config.json", revision=source.revision)
        path = Path(cached) if isinstance(cached, str) else None
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path is not None else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_tokenizer(source: ModelSource) -> Any:
    """``AutoTokenizer.from_pretrained`` of the source."""
    from transformers import AutoTokenizer

    where, kwargs = _from_kwargs(source)
    with translated_errors(source), quiet_transformers():
        return AutoTokenizer.from_pretrained(where, **kwargs)


def load_config(source: ModelSource) -> Any:
    """``AutoConfig.from_pretrained`` of the source (no weights are read)."""
    from transformers import AutoConfig

    where, kwargs = _from_kwargs(source)
    with translated_errors(source), quiet_transformers():
        return AutoConfig.from_pretrained(where, **kwargs)


def load_model(source: ModelSource, head: Head) -> tuple[Any, LoadReport]:
    """The pre-trained weights under the requested head, and transformers' loading report."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

    where, kwargs = _from_kwargs(source)
    local = source.local_path
    has_safetensors = local is not None and any(local.glob("*.safetensors"))
    kwargs.update(dtype=torch.float32, use_safetensors=True if has_safetensors else None,
                  output_loading_info=True)
    with translated_errors(source), quiet_transformers():
        if head.kind == "mlm":
            model, info = AutoModelForMaskedLM.from_pretrained(where, **kwargs)
        else:
            if head.num_labels < 1:
                raise ValueError(f"a classification head needs num_labels >= 1, got {head.num_labels}")
            # A checkpoint fine-tuned for another label set gets a fresh head of the right size.
            model, info = AutoModelForSequenceClassification.from_pretrained(
                where, num_labels=head.num_labels, ignore_mismatched_sizes=True, **kwargs
            )
    return model, LoadReport.from_loading_info(model, info)


def load_pretrained(source: ModelSource, head: Head) -> LoadedModel:
    """Tokenizer first (small, fails fast), then the model with the requested head and its report."""
    tokenizer = load_tokenizer(source)
    model, report = load_model(source, head)
    return LoadedModel(model=model, tokenizer=tokenizer, load_report=report)


def model_from_config(config: Any, head: Head, *, trust_remote_code: bool = False) -> Any:
    """A randomly initialised model of ``config`` with the requested head (torch's global RNG seeds it)."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

    with quiet_transformers():
        if head.kind == "mlm":
            model = AutoModelForMaskedLM.from_config(config, trust_remote_code=trust_remote_code)
        else:
            config.num_labels = head.num_labels
            model = AutoModelForSequenceClassification.from_config(
                config, trust_remote_code=trust_remote_code
            )
    return model.to(torch.float32)
