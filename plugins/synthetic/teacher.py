"""``synthetic`` teacher: a small multilingual BERT that kdreg pretrains itself, once per machine.

It plays mBERT's part in the offline default study. On first use it is pretrained
with masked-LM on the synthetic corpus (:mod:`kdreg_plugins.synthetic.pretraining`)
and saved under ``<kdreg cache>/synthetic/<key>``, where the key hashes everything
that changes its weights: the world, the corpus, the model geometry, the training
settings and :data:`CODE_VERSION`. Training happens in a temporary folder that is
renamed into place, under a file lock, so two processes never train it twice and a
crash never leaves half a model behind. Later loads read the saved weights like any
hub model (``from_pretrained`` by path).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdreg import progress
from kdreg.plugins.spec import Head, LoadedModel, LoadReport, Teacher
from kdreg_plugins.synthetic.corpus import CorpusParams
from kdreg_plugins.synthetic.pretraining import MLMSettings
from kdreg_plugins.synthetic.world import World, WorldConfig, world_config

CODE_VERSION = "synthetic-teacher-2"
"""Bump when the world generator, tokenizer or pretraining loop changes the weights."""
COMPLETE = "kdreg-complete.json"
MAX_POSITIONS = 64


@dataclass(frozen=True)
class TeacherParams(CorpusParams):
    """The world and corpus it is pretrained on, its geometry and its pretraining."""

    layers: int = field(default=4, metadata={"help": "transformer layers"})
    hidden: int = field(default=128, metadata={"help": "hidden size"})
    heads: int = field(default=4, metadata={"help": "attention heads"})
    intermediate: int = field(default=512, metadata={"help": "feed-forward size"})
    steps: int = field(default=2000, metadata={"help": "masked-LM pretraining steps"})
    batch_size: int = field(default=32, metadata={"help": "pretraining batch size"})
    learning_rate: float = field(default=2e-3, metadata={"help": "peak pretraining learning rate"})
    mlm_probability: float = field(default=0.3, metadata={"help": "share of tokens masked in pretraining"})
    pretrain_dropout: float = field(
        default=0.0, metadata={"help": "dropout while pretraining (fine-tuning always uses BERT's 0.1)"}
    )
    pretrain_seed: int = field(default=0, metadata={"help": "seed of initialisation, masking, batch order"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.layers, self.hidden, self.heads, self.intermediate, self.steps, self.batch_size) < 1:
            raise ValueError("layers, hidden, heads, intermediate, steps and batch_size must be at least 1")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if not (0.0 < self.mlm_probability < 1.0 and 0.0 <= self.pretrain_dropout < 1.0):
            raise ValueError("mlm_probability must be within (0, 1) and pretrain_dropout within [0, 1)")


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No progress bars or load reports from transformers for a few small local files."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _subset(params: Any, cls: type) -> dict[str, Any]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(cls)}


class SyntheticTeacher(Teacher):
    """A small multilingual BERT that kdreg pretrains on the synthetic corpus (offline, cached)."""

    Params = TeacherParams
    params: TeacherParams

    # ------------------------------------------------------------- identity
    def settings(self) -> MLMSettings:
        p = self.params
        return MLMSettings(steps=p.steps, batch_size=p.batch_size, learning_rate=p.learning_rate,
                           mlm_probability=p.mlm_probability, dropout=p.pretrain_dropout,
                           max_length=MAX_POSITIONS, seed=p.pretrain_seed)

    def model_config(self) -> dict[str, Any]:
        p = self.params
        return {"layers": p.layers, "hidden": p.hidden, "heads": p.heads, "intermediate": p.intermediate,
                "max_positions": MAX_POSITIONS}

    def cache_key(self) -> str:
        """Hash of everything that changes the pretrained weights."""
        identity = {
            "world": _subset(self.params, WorldConfig),
            "corpus": _subset(self.params, CorpusParams),
            "model": self.model_config(),
            "training": dataclasses.asdict(self.settings()),
            "code": CODE_VERSION,
        }
        text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def path(self) -> Path:
        """Where the pretrained teacher is (or will be) saved."""
        from kdreg.paths import cache_dir

        return cache_dir() / "synthetic" / self.cache_key()

    # --------------------------------------------------------------- loading
    def load_tokenizer(self) -> Any:
        """The world's tokenizer, built without pretraining anything (the saved one is identical)."""
        from kdreg_plugins.synthetic.tokenizer import build_tokenizer

        return build_tokenizer(World(world_config(self.params)).vocabulary, model_max_length=MAX_POSITIONS)

    def load_config(self) -> Any:
        """The teacher's BertConfig, without pretraining anything."""
        from transformers import BertConfig

        p = self.params
        return BertConfig(
            vocab_size=len(self.load_tokenizer()), hidden_size=p.hidden, num_hidden_layers=p.layers,
            num_attention_heads=p.heads, intermediate_size=p.intermediate,
            max_position_embeddings=MAX_POSITIONS, pad_token_id=0,
        )

    def load(self, head: Head) -> LoadedModel:
        folder = self.ensure_pretrained()
        from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

        with quiet_transformers():  # the report is kept with the run rather than printed
            tokenizer = AutoTokenizer.from_pretrained(folder)
            if head.kind == "mlm":
                model, info = AutoModelForMaskedLM.from_pretrained(folder, output_loading_info=True)
            else:
                model, info = AutoModelForSequenceClassification.from_pretrained(
                    folder, num_labels=head.num_labels, output_loading_info=True)
        report = LoadReport.from_loading_info(model, info)
        return LoadedModel(model=model, tokenizer=tokenizer, load_report=report)

    def ensure_pretrained(self) -> Path:
        """The folder of the pretrained teacher, pretraining it first if no process has yet."""
        from filelock import FileLock

        target = self.path()
        if (target / COMPLETE).exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if (target / COMPLETE).exists():  # another process finished it while we waited
                return target
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
            try:
                self._pretrain_into(staging)
                if target.exists():  # leftover of a crash before the marker was written
                    shutil.rmtree(target)
                staging.rename(target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return target

    def _pretrain_into(self, folder: Path) -> None:
        import torch
        from transformers import BertForMaskedLM

        from kdreg_plugins.synthetic.pretraining import Stopwatch, pretrain_mlm

        progress.log("pretraining the synthetic teacher (first use, cached afterwards)…")
        clock = Stopwatch()
        p = self.params
        world = World(world_config(p))
        tokenizer = self.load_tokenizer()
        texts = [t for language in world.languages
                 for t in world.corpus_documents(language, p.documents, p.switch_documents, p.switch_words)]
        settings = self.settings()
        torch.manual_seed(settings.seed)
        config = self.load_config()
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = settings.dropout
        model = BertForMaskedLM(config)
        # Denormal floats in the first steps made CPU steps up to 10x slower; flushing them
        # to zero changes no result that matters and is undone afterwards.
        torch.set_flush_denormal(True)
        try:
            losses = pretrain_mlm(model, tokenizer, texts, settings, on_step=lambda step, loss: progress.step(
                "teacher_pretrain", step, settings.steps, loss))
        finally:
            torch.set_flush_denormal(False)
        # Saved with BERT's usual dropout, which fine-tuning then uses.
        model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.1
        with quiet_transformers():
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
        final = sum(losses[-50:]) / len(losses[-50:])
        summary = {"summary": f"synthetic teacher pretrained with masked LM ({len(losses)} steps)",
                   "key": self.cache_key(), "code": CODE_VERSION, "seconds": round(clock.seconds(), 1),
                   "steps": len(losses), "final_mlm_loss": round(final, 4), "params": dataclasses.asdict(p)}
        (folder / COMPLETE).write_text(json.dumps(summary, indent=2) + "\n")
        progress.log(f"synthetic teacher pretrained in {clock.seconds():.0f} s ({len(losses)} steps, "
                     f"final masked-LM loss {final:.2f}); cached in {self.path()}")
