"""What loading a checkpoint would report, told from its weight names alone.

The preflight must refuse KD from a masked-LM head a checkpoint lacks *before* anything
trains, and loading BERT Large's 1.3 GB to find out would make every dry run slow. A
safetensors file starts with a header naming every tensor, and a sharded checkpoint has
an index listing them; the model the checkpoint would be loaded into can be built on
torch's ``meta`` device (no memory, no initialisation). Comparing the two names the
weights transformers would initialise randomly, the way its loader does: a checkpoint of
the bare encoder (``embeddings.*``) fills the model's ``bert.embeddings.*``, and a tied
weight (the decoder, tied to the word embeddings) is missing only when what it is tied to is.

Only safetensors checkpoints that are on disk (a local folder, or the Hub cache) are
previewed, and not models that bring their own code (``auto_map`` in their config: their
weight names are the code's to decide); otherwise the answer is None and the check
happens when the run loads the teacher.

Building even an empty model imports transformers' model stack (3–4 s of CPU on a small
machine, whatever the grid's size), so a preview is remembered in kdreg's cache
(``previews/``), keyed by everything that decides it: the checkpoint's ``config.json``,
its tensor names, the head, and the installed transformers' version. The next plan with
that teacher reads the answer back instead (:func:`remembered_preview`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kdreg.plugins.spec import Head, LoadReport

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


def checkpoint_folder(local: Path | None, location: str, revision: str | None) -> Path | None:
    """The folder holding the checkpoint's safetensors files: the local folder, or its Hub cache snapshot."""
    if local is not None:
        return local if local.is_dir() else None
    from huggingface_hub import try_to_load_from_cache

    for name in (INDEX, SINGLE):
        cached = try_to_load_from_cache(location, name, revision=revision)
        if isinstance(cached, str):
            return Path(cached).parent
    return None


def checkpoint_keys(folder: Path) -> set[str] | None:
    """The tensor names of the checkpoint in ``folder`` (header or index only); None without safetensors."""
    index = folder / INDEX
    if index.is_file():
        return set(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
    single = folder / SINGLE
    if not single.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(single), framework="numpy") as handle:  # "pt" would import torch for the names
        return set(handle.keys())


def _legacy(key: str) -> str:
    """TF-era LayerNorm names (``gamma``/``beta``), which transformers renames while loading."""
    if key.endswith(".gamma"):
        return key[: -len("gamma")] + "weight"
    if key.endswith(".beta"):
        return key[: -len("beta")] + "bias"
    return key


def preview(config: Any, head: Head, keys: set[str]) -> LoadReport:
    """The report of loading a checkpoint with tensors ``keys`` into ``config``'s model with ``head``."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

    from kdreg_plugins.models.loading import quiet_transformers

    with quiet_transformers(), torch.device("meta"):
        if head.kind == "mlm":
            model = AutoModelForMaskedLM.from_config(config)
        else:
            config = copy.deepcopy(config)
            config.num_labels = head.num_labels
            model = AutoModelForSequenceClassification.from_config(config)
    expected = set(model.state_dict())
    prefix = str(getattr(model, "base_model_prefix", "") or "")
    found = set()
    for key in map(_legacy, keys):
        prefixed = f"{prefix}.{key}"
        found.add(prefixed if prefix and key not in expected and prefixed in expected else key)
    tied: dict[str, str] = dict(getattr(model, "all_tied_weights_keys", None) or {})
    missing = {k for k in expected - found if not (k in tied and tied[k] in found)}
    return LoadReport(missing=tuple(sorted(missing)), unexpected=tuple(sorted(found - expected)),
                      encoder_prefix=prefix)


PREVIEW_FORMAT = 1
"""Part of every remembered preview's key: bump it when :func:`preview` decides differently."""

_LISTS = ("missing", "unexpected", "mismatched")


def _preview_file(config: dict[str, Any], head: Head, keys: set[str]) -> Path:
    from importlib.metadata import version

    from kdreg import __version__
    from kdreg.paths import cache_dir

    identity = {"format": PREVIEW_FORMAT, "kdreg": __version__, "transformers": version("transformers"),
                "config": config, "head": [head.kind, head.num_labels], "keys": sorted(keys)}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return cache_dir() / "previews" / f"{digest[:32]}.json"


def _read_remembered(file: Path) -> LoadReport | None:
    """The report stored in ``file``; None when absent, unreadable or not exactly a report's fields."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or set(data) != {*_LISTS, "encoder_prefix"}:
        return None
    lists = [data[name] for name in _LISTS]
    if not all(isinstance(v, list) and all(isinstance(k, str) for k in v) for v in lists):
        return None
    if not isinstance(data["encoder_prefix"], str):
        return None
    return LoadReport(*(tuple(v) for v in lists), encoder_prefix=data["encoder_prefix"])


def remembered_preview(config: dict[str, Any] | None, load_config: Callable[[], Any], head: Head,
                       keys: set[str]) -> LoadReport:
    """:func:`preview`, read back from kdreg's cache when this checkpoint was previewed before.

    ``config`` is the checkpoint's ``config.json`` as stored (None: not on disk, nothing is
    remembered); ``load_config`` gives transformers' configuration when it must be built.
    An entry that is not exactly a report is previewed again and replaced; a cache that
    cannot be read or written only costs the preview.
    """
    file = _preview_file(config, head, keys) if config is not None else None
    remembered = _read_remembered(file) if file is not None else None
    if remembered is not None:
        return remembered
    report = preview(load_config(), head, keys)
    if file is not None:
        from kdreg.execution.recording import write_atomically

        try:
            write_atomically(file, asdict(report))  # whole or absent, whoever reads it
        except OSError:
            pass
    return report
