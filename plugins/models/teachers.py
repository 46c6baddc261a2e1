"""Built-in teachers: any Hugging Face model (``hf``) and the paper's four encoders as presets.

``hf:path=...`` takes a hub id or a local folder; the presets fix the id and keep only
``revision``. What identifies a teacher's weights in a run's config is its plugin name
and parameters (which the pipeline records): for a preset the id is fixed by the
plugin's version, for ``hf`` it is ``path`` (plus ``revision`` to pin a hub commit).

Besides the contract's ``load``, these teachers offer ``load_config()`` and
``load_tokenizer()``, which read no weights; a student that only needs the teacher's
geometry and vocabulary (``small``) uses them when a teacher has them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from kdreg.errors import ParameterError
from kdreg.plugins.spec import Head, LoadedModel, LoadReport, Teacher
from kdreg_plugins.models.loading import (
    ModelSource,
    check_available,
    load_config,
    load_pretrained,
    load_tokenizer,
    stored_config,
)

MAX_PATH_LENGTH = 1000
"""Longest ``hf:path`` (the store keeps a plugin's spec in 1,000 characters; hub ids have at most 96)."""
REVISION_HELP = "hub branch, tag or commit (pins the weights; ignored for a local folder)"


@dataclass(frozen=True)
class HFParams:
    """A model by hub id or local folder."""

    path: str = field(metadata={"help": "Hugging Face model id or local folder written by save_pretrained"})
    revision: str | None = field(default=None, metadata={"help": REVISION_HELP})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "run model code shipped with the repository"}
    )

    def __post_init__(self) -> None:
        if not self.path.strip():  # an empty path would quietly mean the current folder
            raise ParameterError(
                "hf:path is empty; give a Hugging Face model id (hf:path=namespace/name) or a local "
                "folder written by save_pretrained (hf:path=/models/my-model)."
            )
        if len(self.path) > MAX_PATH_LENGTH:
            raise ParameterError(
                f"hf:path is {len(self.path):,} characters ({self.path[:40]!r}...); a hub id or folder has "
                f"at most {MAX_PATH_LENGTH:,}."
            )
        # A local folder is recorded by its absolute path, so `hf:path=my-model` typed in two
        # folders is two configs; a hub id (no such folder here) stays as written.
        local = Path(self.path).expanduser()
        try:
            is_folder = local.is_dir()
        except OSError as exc:  # e.g. a part longer than the file system allows
            raise ParameterError(
                f"hf:path {self.path[:60]!r} is not a usable path ({exc.strerror or exc}); give a hub id "
                "(namespace/name) or an existing folder."
            ) from None
        if is_folder:
            object.__setattr__(self, "path", os.path.abspath(local))


@dataclass(frozen=True)
class HFTeacherParams(HFParams):
    """A teacher by hub id or local folder; KD from a head its checkpoint lacks only when asked for."""

    allow_new_head: bool = field(default=False, metadata={
        "help": "distil in pretraining even when the checkpoint has no masked-LM head (it would be random)"})


@dataclass(frozen=True)
class PresetParams:
    """A fixed hub model; only the revision may be chosen."""

    revision: str | None = field(default=None, metadata={"help": REVISION_HELP})


class HFTeacher(Teacher):
    """Any Hugging Face encoder as teacher, by hub id or local folder (hf:path=/models/my-teacher)."""

    summary: ClassVar[str] = "Any Hugging Face encoder as teacher, by hub id or local folder (hf:path=...)."
    Params: ClassVar[type] = HFTeacherParams
    plugin_name: ClassVar[str] = "hf"

    def source(self) -> ModelSource:
        """Where the weights come from."""
        return ModelSource(
            location=self.params.path,
            role="teacher",
            plugin=self.plugin_name,
            revision=self.params.revision,
            trust_remote_code=self.params.trust_remote_code,
        )

    def check(self) -> None:
        """Fail before a grid starts when the model is neither cached nor reachable."""
        check_available(self.source())

    def load(self, head: Head) -> LoadedModel:
        return load_pretrained(self.source(), head)

    def preview_load(self, head: Head) -> LoadReport | None:
        """What loading would report, from the checkpoint's tensor names (safetensors on disk only)."""
        from kdreg_plugins.models.preview import checkpoint_folder, checkpoint_keys, remembered_preview

        source = self.source()
        folder = checkpoint_folder(source.local_path, source.location, source.revision)
        keys = checkpoint_keys(folder) if folder is not None else None
        stored = self.stored_config()
        if keys is None or (stored is not None and "auto_map" in stored):
            return None  # no safetensors, or the model's own code decides its weights: checked at load
        return remembered_preview(stored, self.load_config, head, keys)

    def load_config(self) -> Any:
        """The model's configuration (no weights read)."""
        return load_config(self.source())

    def stored_config(self) -> dict[str, Any] | None:
        """Its ``config.json`` as a dict when on disk (no transformers import): planning reads its layers."""
        return stored_config(self.source())

    def load_tokenizer(self) -> Any:
        """The model's tokenizer (no weights read)."""
        return load_tokenizer(self.source())


class _PresetTeacher(HFTeacher):
    """A teacher whose hub id is fixed by the plugin."""

    Params: ClassVar[type] = PresetParams
    model_id: ClassVar[str] = ""

    def source(self) -> ModelSource:
        return ModelSource(location=self.model_id, role="teacher", plugin=self.plugin_name,
                           revision=self.params.revision)


class BertLarge(_PresetTeacher):
    """BERT Large, cased, English only (google-bert/bert-large-cased; 24 layers, 1024 wide)."""

    summary: ClassVar[str] = "BERT Large cased, English (google-bert/bert-large-cased; 24 layers × 1024)."
    plugin_name: ClassVar[str] = "bert-large"
    model_id: ClassVar[str] = "google-bert/bert-large-cased"


class MBert(_PresetTeacher):
    """Multilingual BERT, cased, 104 languages (google-bert/bert-base-multilingual-cased; 12 × 768)."""

    summary: ClassVar[str] = "Multilingual BERT, 104 languages (google-bert/bert-base-multilingual-cased)."
    plugin_name: ClassVar[str] = "mbert"
    model_id: ClassVar[str] = "google-bert/bert-base-multilingual-cased"


class XLMRBase(_PresetTeacher):
    """XLM-RoBERTa base, 100 languages (FacebookAI/xlm-roberta-base; 12 layers × 768)."""

    summary: ClassVar[str] = "XLM-RoBERTa base, 100 languages (FacebookAI/xlm-roberta-base; 12 × 768)."
    plugin_name: ClassVar[str] = "xlmr-base"
    model_id: ClassVar[str] = "FacebookAI/xlm-roberta-base"


class XLMRLarge(_PresetTeacher):
    """XLM-RoBERTa large, 100 languages (FacebookAI/xlm-roberta-large; 24 layers × 1024)."""

    summary: ClassVar[str] = "XLM-RoBERTa large, 100 languages (FacebookAI/xlm-roberta-large; 24 × 1024)."
    plugin_name: ClassVar[str] = "xlmr-large"
    model_id: ClassVar[str] = "FacebookAI/xlm-roberta-large"
