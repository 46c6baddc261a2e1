"""Loading Hugging Face Hub datasets, for benchmarks and corpora alike.

Everything goes through ``datasets.load_dataset(source, name=config)``, where
``source`` is the hub id (``facebook/xnli``) or a local folder laid out like that
hub repository: its ``README.md`` with the ``configs:`` metadata and the data files
(what ``hf download --repo-type dataset facebook/xnli --local-dir X`` produces).
A local copy therefore takes exactly the code path the hub data takes, which is
also how the tests exercise it without a network.

``datasets`` is imported inside the functions: listing plugins must stay cheap.
Failures become one-line :class:`~kdreg.errors.DataError`\\ s that say what to do
(most often: the data is not cached and the hub is unreachable, so pass ``path=``).
Before the first hub request, :func:`kdreg.hub.hub_online` asks the Hub once, in seconds;
when it does not answer, datasets reads its cache in offline mode instead of retrying.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kdreg.errors import DataError
from kdreg.hub import hub_online

_OFFLINE_HINTS = ("offline", "couldn't reach", "connection", "timed out", "name resolution", "unreachable")


def load_hub(
    dataset: str,
    config: str,
    *,
    plugin: str,
    path: Path | None = None,
    split: str | None = None,
    streaming: bool = False,
    revision: str | None = None,
) -> Any:
    """``datasets.load_dataset`` of one config, from the hub or from a local copy of the repository.

    Returns a ``DatasetDict`` (or one split when ``split`` is given; an iterable dataset
    when ``streaming``). Every failure is a DataError naming the dataset, the config and
    what to do; ``plugin`` is the plugin name used in that advice (``xnli:path=...``).
    """
    import datasets

    source = str(path) if path is not None else dataset
    if path is not None and not Path(path).exists():
        raise DataError(
            f"{plugin}: local copy {path} does not exist; pass {plugin}:path=<folder> of a copy of {dataset}."
        )
    if path is None:
        hub_online()  # asked once per process: offline, datasets reads its cache without retrying
    kwargs: dict[str, Any] = {"name": config, "split": split, "streaming": streaming}
    if revision and path is None:
        kwargs["revision"] = revision
    try:
        return datasets.load_dataset(source, **kwargs)
    except Exception as exc:  # datasets raises many kinds; each becomes one actionable line
        raise hub_error(
            exc, dataset=dataset, config=config, plugin=plugin, local=path, streaming=streaming
        ) from exc


def hub_error(
    exc: BaseException, *, dataset: str, config: str, plugin: str, local: Path | None, streaming: bool = False
) -> DataError:
    """The DataError for a failed load (or a failed read of a streamed dataset)."""
    text = " ".join(str(exc).split())
    where = f"{local} (local copy of {dataset})" if local is not None else dataset
    match = re.search(r"BuilderConfig '([^']*)' not found\. Available: (\[.*?\])", text)
    if match:
        return DataError(
            f"{plugin}: {where} has no config {match.group(1)!r} (available: {match.group(2)[:300]}); "
            f"choose {plugin}:languages=... among them."
        )
    if local is None and (isinstance(exc, ConnectionError) or any(h in text.lower() for h in _OFFLINE_HINTS)):
        state = (
            "is streamed from the Hugging Face Hub, which is unreachable; connect"
            if streaming
            else "is not cached and the Hugging Face Hub is unreachable; run once with network access"
        )
        return DataError(
            f"{plugin}: dataset {dataset} (config {config}) {state}, "
            f"or pass {plugin}:path=<local copy of the {dataset} repository>.",
            missing=f"{plugin!r} ({dataset}, config {config})", instead=f"{plugin}:path=DIR",
        )
    return DataError(f"{plugin}: cannot load {where}, config {config}: {type(exc).__name__}: {text[:300]}")


def split_info_sizes(
    dataset: str, configs: Sequence[str], *, plugin: str, path: Path | None = None, split: str = "train"
) -> dict[str, int | None]:
    """Rows per config in ``split`` from the dataset's metadata (nothing is downloaded but metadata)."""
    import datasets

    source = str(path) if path is not None else dataset
    if path is None:
        hub_online()
    sizes: dict[str, int | None] = {}
    for config in configs:
        try:
            info = datasets.load_dataset_builder(source, name=config).info
        except Exception as exc:
            raise hub_error(exc, dataset=dataset, config=config, plugin=plugin, local=path) from exc
        splits = info.splits or {}
        sizes[config] = splits[split].num_examples if split in splits else None
    return sizes


# ------------------------------------------------------------------ small shared helpers
def parse_language_list(text: str | None) -> tuple[str, ...] | None:
    """``de+fr+en`` (or ``de;fr``, ``de fr``, ``de/fr``) → ('de', 'fr', 'en'); None stays None.

    Commas cannot separate them: they separate a plugin's parameters on the command line.
    """
    if text is None or not text.strip():
        return None
    return tuple(dict.fromkeys(part for part in re.split(r"[+;/\s]+", text.strip()) if part))


def choose_languages(
    plugin: str, available: Sequence[str], wanted: Sequence[str] | None, source: str | None = None
) -> tuple[str, ...]:
    """``wanted`` (in order, the source first) checked against ``available``; all of them when None."""
    if wanted is None:
        chosen = list(available)
    else:
        unknown = [code for code in wanted if code not in available]
        if unknown:
            raise DataError(
                f"{plugin}: unknown language(s) {', '.join(unknown)}; available: {' '.join(available)}."
            )
        chosen = list(wanted)
    if source is not None:
        if source not in available:
            raise DataError(f"{plugin}: source language {source!r} is not among {' '.join(available)}.")
        chosen = [source, *(code for code in chosen if code != source)]
    return tuple(chosen)


def subsample_indices(total: int, limit: int | None, seed: int) -> list[int] | None:
    """Sorted indices of a deterministic random subset of ``limit`` rows; None when all are kept.

    The draw depends on ``total`` and ``seed`` only, so parallel splits (the same size in
    every language) keep the same rows in every language.
    """
    if limit is None or limit >= total:
        return None
    if limit < 0:
        raise DataError(f"A maximum number of examples must be >= 0, got {limit}.")
    return sorted(random.Random(seed).sample(range(total), limit))
