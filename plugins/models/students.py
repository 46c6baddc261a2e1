"""Built-in students: a Hugging Face model of its own, or one derived from the teacher.

* ``hf`` / ``distilmbert`` load pre-trained weights and their own tokenizer, like a teacher.
* ``layers`` keeps ``k`` of the teacher's layers (DistilBERT's initialisation, Sanh et
  al. 2019): embeddings, kept layers and head are copied from the teacher, and the
  student shares the teacher's tokenizer, so every KD loss applies.
* ``small`` is the teacher's architecture at a smaller, randomly initialised geometry
  (TinyBERT's 4 × 312 by default, Jiao et al. 2020) over the teacher's vocabulary, so
  logit-level KD during pretraining works.

Which teacher layers ``layers`` keeps: student layer ``i`` (of ``k``) starts from teacher
layer ``floor(i * L / k)`` (of ``L``): evenly spaced from the bottom, which is "every other
layer" (0, 2, 4, ...) when ``k = L / 2`` as the DistilBERT paper describes, ``0, 3, 6, 9``
for 4 of 12, and the whole teacher when ``k = L``. (DistilBERT's released extraction script
took ``0, 2, 4, 7, 9, 11``; the even spread is the rule the paper states, and it is defined
for every ``k``.)

The pipeline seeds torch before ``build``, so the random parts (``small``'s weights, a
new classification head) are reproducible without any seed here.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kdreg.errors import IncompatiblePluginsError, ParameterError
from kdreg.plugins.spec import Head, LoadedModel, Student, Teacher
from kdreg_plugins.models.loading import (
    ModelSource,
    check_available,
    load_pretrained,
    load_tokenizer,
    model_from_config,
)
from kdreg_plugins.models.teachers import HFParams, PresetParams

MAX_LAYERS = 1024
"""The most transformer layers a student may have; no public encoder has more than 48."""
SMALL_LIMITS = {"layers": MAX_LAYERS, "hidden": 65_536, "heads": 1024, "intermediate": 262_144}
"""Upper bounds of the small student's geometry: far beyond any encoder, but refused before a grid
writes anything rather than failing (or exhausting memory) in the run."""
_LAYER_LIST_NAMES = ("layer", "layers")
"""Names of the encoder's layer list (BERT/XLM-R ``encoder.layer``, DistilBERT ``transformer.layer``)."""


class HFStudent(Student):
    """Any Hugging Face encoder as student with its own tokenizer, by hub id or local folder (hf:path=...)."""

    summary: ClassVar[str] = "Any Hugging Face encoder as student, own tokenizer, by hub id or local folder."
    Params: ClassVar[type] = HFParams
    plugin_name: ClassVar[str] = "hf"

    def source(self) -> ModelSource:
        """Where the weights come from."""
        return ModelSource(
            location=self.params.path,
            role="student",
            plugin=self.plugin_name,
            revision=self.params.revision,
            trust_remote_code=self.params.trust_remote_code,
        )

    def check(self) -> None:
        """Fail before a grid starts when the model is neither cached nor reachable."""
        check_available(self.source())

    def build(self, teacher: Teacher, head: Head) -> LoadedModel:
        return load_pretrained(self.source(), head)

    def load_tokenizer(self) -> Any:
        """The student's own tokenizer (no weights read): the preflight compares it with the teacher's."""
        return load_tokenizer(self.source())


class DistilMBert(HFStudent):
    """Multilingual DistilBERT (distilbert/distilbert-base-multilingual-cased; 6 layers × 768)."""

    summary: ClassVar[str] = "Multilingual DistilBERT (distilbert/distilbert-base-multilingual-cased)."
    Params: ClassVar[type] = PresetParams
    plugin_name: ClassVar[str] = "distilmbert"
    model_id: ClassVar[str] = "distilbert/distilbert-base-multilingual-cased"

    def source(self) -> ModelSource:
        return ModelSource(location=self.model_id, role="student", plugin=self.plugin_name,
                           revision=self.params.revision)


# ------------------------------------------------------------------ layers
def spread(total: int, keep: int) -> list[int]:
    """Teacher layers that initialise a ``keep``-layer student: ``floor(i * total / keep)``."""
    return [i * total // keep for i in range(keep)]


_LAYER_KEYS = ("num_hidden_layers", "n_layers", "num_layers")


def layer_count(config: Any) -> int:
    """Transformer layers of a config (``num_hidden_layers``; DistilBERT maps it to ``n_layers``)."""
    for name in _LAYER_KEYS:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise IncompatiblePluginsError(
        f"Cannot tell how many layers a {type(config).__name__} has; students 'layers' and 'small' need a "
        "BERT-like encoder (use the hf student instead)."
    )


def teacher_layer_count(teacher: Teacher) -> int | None:
    """The teacher's layers, told without importing transformers when its plugin can.

    A teacher with ``stored_config()`` (its ``config.json`` as a dict, read from disk) answers
    from it — planning a grid then needs no model library; otherwise, or when the file names
    its layers otherwise (GPT-2's ``n_layer``), its ``load_config()``. None when it has neither.
    """
    stored_config = getattr(teacher, "stored_config", None)
    stored = stored_config() if callable(stored_config) else None
    if isinstance(stored, dict):
        for name in _LAYER_KEYS:
            if isinstance(stored.get(name), int) and not isinstance(stored.get(name), bool):
                return int(stored[name])
    load_config = getattr(teacher, "load_config", None)
    return layer_count(load_config()) if callable(load_config) else None


def _set_layer_count(config: Any, count: int, kept: Sequence[int]) -> None:
    total = layer_count(config)
    for name in _LAYER_KEYS:
        if isinstance(getattr(config, name, None), int):
            setattr(config, name, count)
    layer_types = getattr(config, "layer_types", None)  # per-layer settings in some newer configs
    if isinstance(layer_types, list) and len(layer_types) == total:
        config.layer_types = [layer_types[i] for i in kept]


def layer_list_name(model: Any, count: int) -> str:
    """Qualified name of the encoder's layer list: the outermost ModuleList 'layer(s)' of ``count`` blocks."""
    import torch

    for name, module in model.named_modules():
        if (isinstance(module, torch.nn.ModuleList) and len(module) == count
                and name.rsplit(".", 1)[-1] in _LAYER_LIST_NAMES):
            return name
    raise IncompatiblePluginsError(
        f"The layers student cannot find the {count} transformer layers of {type(model).__name__} "
        "(it looks for a list named 'layer' or 'layers'); use the small or hf student with this teacher."
    )


def _kept_state(state: dict[str, Any], prefix: str, kept: Sequence[int]) -> dict[str, Any]:
    """The teacher's state dict with layer ``kept[j]`` renamed to layer ``j`` and the other layers dropped."""
    position = {teacher_index: student_index for student_index, teacher_index in enumerate(kept)}
    out: dict[str, Any] = {}
    start = prefix + "."
    for key, tensor in state.items():
        if not key.startswith(start):
            out[key] = tensor
            continue
        index, _, rest = key[len(start):].partition(".")
        if int(index) in position:
            out[f"{start}{position[int(index)]}.{rest}"] = tensor
    return out


@dataclass(frozen=True)
class LayersParams:
    """How many teacher layers the student keeps."""

    k: int | None = field(
        default=None, metadata={"help": "layers kept (default: half the teacher's, at least 1)"}
    )

    def __post_init__(self) -> None:
        if self.k is not None and not 1 <= self.k <= MAX_LAYERS:
            raise ParameterError(
                f"layers:k must be 1 to {MAX_LAYERS} (and at most the teacher's layer count), got {self.k}."
            )


class LayersStudent(Student):
    """k of the teacher's layers, DistilBERT-style: embeddings, evenly spaced layers and head copied."""

    summary: ClassVar[str] = "k of the teacher's layers, DistilBERT-style (every other one), its tokenizer."
    Params: ClassVar[type] = LayersParams

    def check_teacher(self, teacher: Teacher) -> None:
        """Refuse k beyond the teacher's depth before anything runs (from its config, no weights)."""
        total = teacher_layer_count(teacher)
        if total is not None:
            self._kept_count(total)

    def _kept_count(self, total: int) -> int:
        k = self.params.k if self.params.k is not None else max(1, total // 2)
        if not 1 <= k <= total:
            raise ParameterError(
                f"layers:k={k} is out of range: the teacher has {total} layers, so 1 <= k <= {total}."
            )
        return k

    def build(self, teacher: Teacher, head: Head) -> LoadedModel:
        loaded = teacher.load(head)
        source = loaded.model
        total = layer_count(source.config)
        k = self._kept_count(total)
        kept = spread(total, k)
        prefix = layer_list_name(source, total)
        config = copy.deepcopy(source.config)
        _set_layer_count(config, k, kept)
        student = type(source)(config)
        # strict: every student weight must come from the teacher, or the architecture is not what we think.
        student.load_state_dict(_kept_state(source.state_dict(), prefix, kept), strict=True)
        student.train(source.training)
        # The teacher's loading report describes where these weights came from (a head it lacked, say).
        return LoadedModel(model=student, tokenizer=loaded.tokenizer, load_report=loaded.load_report)


# ------------------------------------------------------------------- small
@dataclass(frozen=True)
class SmallParams:
    """The student's geometry (TinyBERT-4 by default)."""

    layers: int = field(default=4, metadata={"help": "transformer layers"})
    hidden: int = field(default=312, metadata={"help": "hidden size (a multiple of heads)"})
    heads: int = field(default=12, metadata={"help": "attention heads"})
    intermediate: int = field(default=1200, metadata={"help": "feed-forward size"})

    def __post_init__(self) -> None:
        for name, most in SMALL_LIMITS.items():
            if not 1 <= getattr(self, name) <= most:
                raise ParameterError(f"small:{name} must be 1 to {most:,}, got {getattr(self, name)}.")
        if self.hidden % self.heads:
            raise ParameterError(
                f"small:hidden={self.hidden} must be a multiple of heads={self.heads} "
                f"(e.g. hidden={self.hidden - self.hidden % self.heads or self.heads})."
            )


def _small_config(teacher_config: Any, p: SmallParams) -> Any:
    """The teacher's config with the student's geometry; vocabulary and everything else kept."""
    config = copy.deepcopy(teacher_config)
    total = layer_count(config)
    _set_layer_count(config, p.layers, spread(total, p.layers))
    config.hidden_size = p.hidden  # DistilBERT's config maps these to dim / n_heads
    config.num_attention_heads = p.heads
    if isinstance(getattr(config, "intermediate_size", None), int):
        config.intermediate_size = p.intermediate
    elif isinstance(getattr(config, "hidden_dim", None), int):  # DistilBERT's name for it
        config.hidden_dim = p.intermediate
    if isinstance(getattr(config, "head_dim", None), int):
        config.head_dim = p.hidden // p.heads
    return config


class SmallStudent(Student):
    """The teacher's architecture at a small random geometry (TinyBERT 4 × 312), the teacher's vocabulary."""

    summary: ClassVar[str] = "Random small model of the teacher's family (TinyBERT 4×312); teacher's vocab."
    Params: ClassVar[type] = SmallParams

    def check_teacher(self, teacher: Teacher) -> None:
        """Refuse a teacher whose architecture has no layer count to shrink (from its config, no weights)."""
        teacher_layer_count(teacher)

    def build(self, teacher: Teacher, head: Head) -> LoadedModel:
        describe = (getattr(teacher, "load_config", None), getattr(teacher, "load_tokenizer", None))
        if callable(describe[0]) and callable(describe[1]):
            teacher_config, tokenizer = describe[0](), describe[1]()  # no teacher weights needed
        else:
            loaded = teacher.load(head)
            teacher_config, tokenizer = loaded.model.config, loaded.tokenizer
        config = _small_config(teacher_config, self.params)
        trust = bool(getattr(getattr(teacher, "params", None), "trust_remote_code", False))
        model = model_from_config(config, head, trust_remote_code=trust)
        return LoadedModel(model=model, tokenizer=tokenizer)
