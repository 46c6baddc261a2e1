"""``synthetic`` teacher: a small multilingual BERT pretrained by kdreg's own code, in two sizes.

It plays mBERT's part (``size=base``) and BERT Large's (``size=large``) in the offline
default study. Its weights come from masked-LM pretraining on the synthetic corpus
(:mod:`kdreg_plugins.synthetic.pretraining`); the key of a teacher hashes everything
that changes them: the world, the corpus, the geometry, the training settings and
:data:`CODE_VERSION`.

The two default teachers ship with kdreg, pretrained (``pretrained/<key>/``, made by
``python -m kdreg_plugins.synthetic.ship``), so the default study starts at once; any
other teacher (another world, geometry or schedule) is pretrained on first use and saved
under ``<kdreg cache>/synthetic/<key>``. Training happens in a temporary folder that is
renamed into place, under a file lock, so two processes never train it twice and a
crash never leaves half a model behind. Weights are stored in float16 (rounded once,
after training; shipped and locally pretrained alike) and loaded as float32 by path,
like any hub model (``from_pretrained``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kdreg import progress
from kdreg.plugins.spec import Head, LoadedModel, LoadReport, Teacher
from kdreg_plugins.synthetic.corpus import CorpusParams
from kdreg_plugins.synthetic.pretraining import MLMSettings
from kdreg_plugins.synthetic.world import World, WorldConfig, world_config

CODE_VERSION = "synthetic-teacher-3"
"""Bump when the world generator, tokenizer, pretraining loop or storage changes the weights (3: float16)."""
SHIPPED = Path(__file__).with_name("pretrained")
"""The default teachers, pretrained, inside the package (read-only)."""
COMPLETE = "kdreg-complete.json"
MAX_POSITIONS = 64


@dataclass(frozen=True)
class Size:
    """A teacher capacity: geometry and the pretraining that suits it."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    steps: int
    learning_rate: float


SIZES: dict[str, Size] = {
    "base": Size(layers=4, hidden=128, heads=4, intermediate=512, steps=4000, learning_rate=2e-3),
    "large": Size(layers=6, hidden=192, heads=4, intermediate=768, steps=4000, learning_rate=1e-3),
}
"""The two teachers of the default study (mBERT's and BERT Large's parts); see docs/synthetic.md."""
SIZED = ("layers", "hidden", "heads", "intermediate", "steps", "learning_rate")
"""Parameters that default to the chosen size's value."""


def _by_size(help_text: str) -> Any:
    return field(default=None, metadata={"help": f"{help_text} (default: the size's)"})


@dataclass(frozen=True)
class TeacherParams(CorpusParams):
    """The world and corpus it is pretrained on, its size (geometry and pretraining) and its pretraining."""

    size: Literal["base", "large"] = field(
        default="base", metadata={"help": "base: 4 layers × 128, large: 6 × 192 (each its own pretraining)"})
    layers: int | None = _by_size("transformer layers")
    hidden: int | None = _by_size("hidden size")
    heads: int | None = _by_size("attention heads")
    intermediate: int | None = _by_size("feed-forward size")
    steps: int | None = _by_size("masked-LM pretraining steps")
    batch_size: int = field(default=32, metadata={"help": "pretraining batch size"})
    learning_rate: float | None = _by_size("peak pretraining learning rate")
    mlm_probability: float = field(default=0.3, metadata={"help": "share of tokens masked in pretraining"})
    pretrain_dropout: float = field(
        default=0.0, metadata={"help": "dropout while pretraining (fine-tuning always uses BERT's 0.1)"}
    )
    pretrain_seed: int = field(default=0, metadata={"help": "seed of initialisation, masking, batch order"})

    def derived_defaults(self) -> dict[str, Any]:
        """What the size sets when a parameter is not given (so ``synthetic:size=large`` stays that short)."""
        preset = SIZES[self.size]
        return {name: getattr(preset, name) for name in SIZED}

    def __post_init__(self) -> None:
        super().__post_init__()
        preset = SIZES[self.size]
        for name in SIZED:  # recorded resolved, so a run's config says exactly which teacher it had
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(preset, name))
        if min(self.layers, self.hidden, self.heads, self.intermediate, self.steps,  # type: ignore[type-var]
               self.batch_size) < 1:
            raise ValueError("layers, hidden, heads, intermediate, steps and batch_size must be at least 1")
        if self.hidden % self.heads:  # type: ignore[operator]
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
        import hashlib  # here: `kdreg plugins` imports this module, and hashlib costs it 2.5 ms

        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def path(self) -> Path:
        """Where the pretrained teacher is saved when it is not shipped (or will be, on first use)."""
        from kdreg.paths import cache_dir

        return cache_dir() / "synthetic" / self.cache_key()

    def shipped_path(self) -> Path:
        """Where kdreg ships this teacher pretrained, if it is one of the default ones."""
        return SHIPPED / self.cache_key()

    # --------------------------------------------------------------- loading
    def load_tokenizer(self) -> Any:
        """The world's tokenizer, built without pretraining anything (the saved one is identical)."""
        from kdreg_plugins.synthetic.tokenizer import build_tokenizer

        return build_tokenizer(World(world_config(self.params)).vocabulary, model_max_length=MAX_POSITIONS)

    def stored_config(self) -> dict[str, Any]:
        """What planning asks of the configuration (its layers), without importing transformers."""
        return {"num_hidden_layers": self.params.layers}

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
        import torch
        from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

        kwargs = {"output_loading_info": True, "dtype": torch.float32}  # stored in float16, trained in 32
        with quiet_transformers():  # the report is kept with the run rather than printed
            tokenizer = AutoTokenizer.from_pretrained(folder)
            if head.kind == "mlm":
                model, info = AutoModelForMaskedLM.from_pretrained(folder, **kwargs)
            else:
                model, info = AutoModelForSequenceClassification.from_pretrained(
                    folder, num_labels=head.num_labels, **kwargs)
        report = LoadReport.from_loading_info(model, info)
        return LoadedModel(model=model, tokenizer=tokenizer, load_report=report)

    def first_use(self) -> str | None:
        """Pretraining, when this world's teacher is neither shipped nor in the cache yet."""
        if (self.shipped_path() / COMPLETE).exists() or (self.path() / COMPLETE).exists():
            return None
        steps = self.params.steps or 0
        took = "; minutes on a few CPU cores" if steps >= 1000 else ""
        return (f"pretrained before its first use ({steps:,} masked-LM steps{took}) and cached: "
                "kdreg ships only the default study's teachers")

    def ensure_pretrained(self) -> Path:
        """The folder of the pretrained teacher: shipped, cached, or pretrained now if no process has yet."""
        from filelock import FileLock

        if (self.shipped_path() / COMPLETE).exists():
            return self.shipped_path()
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
        # Saved with BERT's usual dropout, which fine-tuning then uses, in float16 (half the bytes).
        model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.1
        with quiet_transformers():
            model.to(torch.float16).save_pretrained(folder)
            tokenizer.save_pretrained(folder)
        final = sum(losses[-50:]) / len(losses[-50:])
        summary = {"summary": f"synthetic teacher pretrained with masked LM ({len(losses)} steps)",
                   "key": self.cache_key(), "code": CODE_VERSION, "seconds": round(clock.seconds(), 1),
                   "steps": len(losses), "final_mlm_loss": round(final, 4), "params": dataclasses.asdict(p)}
        (folder / COMPLETE).write_text(json.dumps(summary, indent=2) + "\n")
        progress.log(f"synthetic teacher pretrained in {clock.seconds():.0f} s ({len(losses)} steps, "
                     f"final masked-LM loss {final:.2f}); cached in {self.path()}")
