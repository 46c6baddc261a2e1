"""The kdreg plugin contract: the one module a plugin author reads.

A plugin is a **class** registered in its package's ``pyproject.toml`` under one of
six entry-point groups; the entry-point name is the plugin's name::

    [project.entry-points."kdreg.losses"]
    my-loss = "my_package.losses:MyLoss"

kdreg instantiates it as ``MyLoss(params)``, where ``params`` is an instance of the
class's ``Params`` dataclass built from the command line: ``--loss my-loss:temperature=4``
becomes ``MyLoss(MyLoss.Params(temperature=4.0))``. Field types (``int``, ``float``,
``bool``, ``str``, ``pathlib.Path``, ``Literal[...]``, and ``X | None`` of those) are
parsed and validated by kdreg; ``field(metadata={"help": "..."})`` documents a field.
A plugin's one-line ``summary`` (or the first line of its docstring) is what
``kdreg plugins`` shows.

Subclassing the base classes below is recommended (they provide ``__init__``,
``params`` and defaults for the optional members) but not required: the registry
checks the *members*, so any class that has them is a valid plugin.

torch and transformers are only imported for type checking here, so importing
this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from kdreg.plugins.load_report import LoadReport

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from kdreg.execution.graph import Task, TaskGraph
    from kdreg.execution.worker import TaskEvent
    from kdreg.records import TaskOutcome

KINDS: dict[str, str] = {
    "teacher": "kdreg.teachers",
    "student": "kdreg.students",
    "loss": "kdreg.losses",
    "benchmark": "kdreg.benchmarks",
    "corpus": "kdreg.corpora",
    "executor": "kdreg.executors",
}
"""Plugin kind → entry-point group."""

Split = Literal["train", "validation", "test"]
Output = Literal["logits", "hidden_states", "attentions", "queries", "keys", "values"]


# --------------------------------------------------------------------- values
@dataclass(frozen=True)
class Head:
    """What the pipeline needs a model to compute on top of its encoder."""

    kind: Literal["mlm", "classification"]
    num_labels: int = 0


@dataclass
class LoadedModel:
    """A model ready to train or evaluate, with the tokenizer that feeds it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    load_report: LoadReport | None = None
    """What loading the weights reported (missing, unused, re-shaped weights); None: built, not loaded."""


@dataclass(frozen=True)
class Example:
    """One labelled example: a text (or a text pair, e.g. premise/hypothesis) and a label index."""

    text: str
    label: int
    text_pair: str | None = None


@dataclass(frozen=True)
class Score:
    """One extra number a benchmark computes itself (see ``Benchmark.extra_scores``)."""

    language: str
    metric: str
    value: float
    split: str = "test"


@dataclass
class ModelOutputs:
    """A forward pass as a loss sees it; outputs the loss did not declare in ``needs`` are None.

    ``hidden_states`` holds the embedding output then every layer ([batch, tokens, width]);
    ``attentions`` holds every layer's attention probabilities ([batch, heads, tokens, tokens]);
    ``queries``, ``keys`` and ``values`` hold every layer's self-attention projections, split
    into the model's heads ([batch, heads, tokens, head_dim]; before scaling, after the bias).
    """

    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    queries: tuple[torch.Tensor, ...] | None = None
    keys: tuple[torch.Tensor, ...] | None = None
    values: tuple[torch.Tensor, ...] | None = None


@dataclass
class LossBatch:
    """What a loss gets besides the outputs.

    In fine-tuning ``labels`` are class indices ([batch]); in pretraining they are the
    masked-LM targets ([batch, tokens], -100 where nothing is predicted).
    """

    labels: torch.Tensor
    attention_mask: torch.Tensor
    stage: Literal["pretrain", "finetune"]


@dataclass(frozen=True)
class ModelGeometry:
    """What a loss may check before training: sizes of the teacher or the student."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int


@dataclass(frozen=True)
class NoParams:
    """The parameters of a plugin that declares none."""


@dataclass(frozen=True)
class CheckSetup:
    """How the conformance checks (``kdreg plugins check``, ``kdreg.testing``) should exercise a plugin.

    The checks run a plugin on tiny real inputs; a behaviour check the plugin refuses is a
    failure, since its code never ran. A plugin whose defaults do not fit the tiny inputs
    says here what does, or why a check cannot apply to it.
    """

    params: str | Mapping[str, Any] | None = None
    """Parameters to check with when none are given ('heads=2' or a mapping); None: the defaults."""
    teacher: ModelGeometry | None = None
    """Loss checks: the teacher's sizes (default vocabulary 40, width 16, 4 layers, 2 heads)."""
    student: ModelGeometry | None = None
    """Loss checks: the student's sizes (default the teacher's, with 2 layers)."""
    skips: Mapping[str, str] = field(default_factory=dict)
    """Check name → why it cannot apply, e.g. {'loss: pretrain': 'class labels only'}: a declared refusal."""


# ---------------------------------------------------------------- base class
class Plugin:
    """Common to every kind: declared parameters and a one-line summary."""

    Params: ClassVar[type] = NoParams
    """A (frozen) dataclass of typed parameters with defaults."""
    summary: ClassVar[str] = ""
    """One line shown by ``kdreg plugins``; the docstring's first line when empty."""
    check_setup: ClassVar[CheckSetup | None] = None
    """What kdreg's conformance checks should use or skip (see CheckSetup); None: the defaults."""

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def check(self) -> None:
        """Fail fast (e.g. ModelUnavailableError, DataError) before a grid writes anything; cheap."""
        return None


# --------------------------------------------------------------------- kinds
class Teacher(Plugin):
    """A pre-trained model to distil from (``kdreg.teachers``).

    Optional members kdreg uses when a teacher has them: ``load_tokenizer()`` and
    ``load_config()`` (read no weights: a ``small`` student and the vocabulary check use
    them), ``preview_load(head)`` and ``first_use()``.
    """

    def load(self, head: Head) -> LoadedModel:
        """Load the pre-trained weights with the requested head (a new head is randomly initialised).

        Set ``LoadedModel.load_report`` (``LoadReport.from_loading_info``) when loading with
        transformers: kdreg keeps it with the run and refuses KD from a head that was never trained.
        """
        raise NotImplementedError

    def preview_load(self, head: Head) -> LoadReport | None:
        """What ``load(head)`` would report, told cheaply without loading weights; None when unknown.

        The preflight uses it to refuse, before anything trains, KD from a masked-LM head the
        checkpoint lacks.
        """
        return None

    def first_use(self) -> str | None:
        """What the first ``load`` will do beyond loading, if it is long; None when it is ready.

        A teacher that is built on first use (the synthetic teachers of a world kdreg does not
        ship are pretrained, for minutes) says so here: ``kdreg run`` prints it before the grid
        starts and a dry run under its plan, so nobody waits without knowing why. Cheap: no
        weights read, nothing built.
        """
        return None


class Student(Plugin):
    """The model being trained (``kdreg.students``); it may be derived from the teacher.

    A student with a tokenizer of its own may offer ``load_tokenizer()`` (reading no
    weights): the preflight then refuses KD during pretraining from a teacher with another
    vocabulary before any teacher is trained.
    """

    def check_teacher(self, teacher: Teacher) -> None:
        """Fail fast when this student cannot be built for ``teacher`` (e.g. more layers than it has).

        Called by the preflight, before a grid writes anything; must be cheap (the teacher's
        ``load_config()`` when it has one, never its weights).
        """
        return None

    def build(self, teacher: Teacher, head: Head) -> LoadedModel:
        """Build the student's initial weights and tokenizer for this teacher and head."""
        raise NotImplementedError


class Loss(Plugin):
    """A training objective for the student (``kdreg.losses``)."""

    needs: ClassVar[frozenset[str]] = frozenset({"logits"})
    """Model outputs read: any of 'logits', 'hidden_states', 'attentions', 'queries', 'keys', 'values';
    only those are computed (queries/keys/values through forward hooks on the attention projections)."""
    uses_teacher: ClassVar[bool] = True
    """False for hard-label losses, so no teacher forward pass is spent on them."""

    def prepare(
        self, teacher: ModelGeometry | None, student: ModelGeometry, stage: str
    ) -> torch.nn.Module | None:
        """Check the pair fits (raise IncompatiblePluginsError); return trainable parts, e.g. a projection."""
        return None

    def compute(self, student: ModelOutputs, teacher: ModelOutputs | None, batch: LossBatch) -> torch.Tensor:
        """The scalar to minimise; gradients must reach the student only."""
        raise NotImplementedError


class Benchmark(Plugin):
    """A labelled task for zero-shot cross-lingual transfer (``kdreg.benchmarks``)."""

    metrics: ClassVar[tuple[str, ...]] = ("accuracy",)
    """Metrics recorded per language and split: 'accuracy' and/or 'macro_f1'."""
    eval_splits: ClassVar[tuple[str, ...]] = ("validation", "test")
    """Splits evaluated in every language."""

    def languages(self) -> Sequence[str]:
        """Every language code, in the benchmark's own spelling (e.g. 'de' or 'deu_Latn')."""
        raise NotImplementedError

    def source_language(self) -> str:
        """The language whose train split is used for fine-tuning (the others are zero-shot)."""
        raise NotImplementedError

    def labels(self) -> Sequence[str]:
        """Label names; an Example's label is an index into this list."""
        raise NotImplementedError

    def examples(self, language: str, split: str) -> Sequence[Example]:
        """The examples of one language and split ('train', 'validation' or 'test')."""
        raise NotImplementedError

    def normalize_language(self, code: str) -> str:
        """The ISO 639-1 form of a language code, so `kdreg query --lang de` finds it."""
        from kdreg.languages import normalize_language

        return normalize_language(code)

    def extra_scores(self, model: LoadedModel) -> Sequence[Score]:
        """Optional diagnostics beyond the metrics, computed on the final student."""
        return ()

    def chance_level(self, metric: str) -> float | None:
        """Optional: the expected score of guessing at random on ``metric`` (None: unknown).

        Accuracy of uniform guessing is 1 / number of labels whatever the label balance.
        Tables show it as a row and plots as a line; asked without loading any data.
        """
        return None


class Corpus(Plugin):
    """Unlabeled multilingual text for distillation during pretraining (``kdreg.corpora``)."""

    def languages(self) -> Sequence[str]:
        """Every language the corpus has text in."""
        raise NotImplementedError

    def texts(self, language: str) -> Iterator[str]:
        """Lines (sentences or paragraphs) of one language, in a deterministic order."""
        raise NotImplementedError

    def sizes(self) -> Mapping[str, int] | None:
        """Lines per language for the α-smoothed language sampling; None samples languages uniformly."""
        return None


class Monitor(Protocol):
    """What an executor tells kdreg about a grid's tasks (kdreg passes one to ``Executor.execute``)."""

    def event(self, event: TaskEvent) -> None:
        """Forward a task's event (started, training step, log line) from wherever it runs, if you can."""

    def finished(self, task: Task, outcome: TaskOutcome) -> None:
        """A task ended with ``outcome`` (what ``graph.call(task)()`` returned); may raise to stop."""

    def submitted(self, task: Task, external_id: str | None = None, log_path: str | None = None) -> None:
        """An engine accepted the task and will run it later (its job id and log file, when it has them)."""

    def lost(self, task: Task) -> Task | None:
        """The process running ``task`` died; returns the task to submit again, or None when it is settled."""


class Executor(Plugin):
    """Where a grid's tasks run (``kdreg.executors``): this process, local workers, a cluster engine.

    kdreg builds the grid's task graph (runs, and the artifacts they need) and records it in
    the store; the executor gets every task done. Each task records its own outcome in the
    store, so an executor only moves work and reports back.
    """

    remote_recording: ClassVar[str | None] = None
    """None: tasks run on this machine. For tasks on other machines, how they record when the
    store is an SQLite file (which only this machine may write): 'journal' (files in
    ``shared_folder()``, recorded by ``kdreg status``/``collect``) or 'return' (the outcome
    returned to ``monitor.finished``, recorded there)."""

    def shared_folder(self) -> Path | None:
        """A folder every node sees (for 'journal' recording); None when there is none."""
        return None

    def alive(self, external_ids: list[str]) -> set[str]:
        """Of the engine's jobs given (``monitor.submitted`` ids), those that may still run."""
        return set(external_ids)

    def states(self, external_ids: list[str]) -> dict[str, str]:
        """The engine's state of each job it still knows (shown by ``kdreg status``)."""
        return {}

    def warm_up(self) -> None:
        """Start now what takes long to start (a pool of workers, a connection); optional.

        kdreg calls it once it knows the grid will run, before it plans the grid, so the
        start overlaps the planning. It must return at once; ``execute`` may still find
        nothing started (a grid with nothing to run never gets there).
        """

    def execute(self, graph: TaskGraph, monitor: Monitor) -> None:
        """Run every task of ``graph`` once, each only after the tasks in its ``depends_on`` have finished.

        ``graph.tasks`` is in dependency order; ``graph.call(task)`` is a picklable zero-argument
        callable that executes the task wherever it is called and returns its TaskOutcome. Tell
        ``monitor.finished(task, outcome)`` for each; a task whose dependency failed still runs
        (it records the failure with its reason). Return when all have finished — or, for an
        engine that runs them on after kdreg exits, once all are submitted (``monitor.submitted``).
        On KeyboardInterrupt or an exception from the monitor, stop the workers (their tasks are
        marked interrupted) and re-raise.
        """
        raise NotImplementedError


BASES: dict[str, type[Plugin]] = {
    "teacher": Teacher,
    "student": Student,
    "loss": Loss,
    "benchmark": Benchmark,
    "corpus": Corpus,
    "executor": Executor,
}
"""Plugin kind → its base class (the contract the registry checks)."""

REQUIRED: dict[str, tuple[str, ...]] = {
    "teacher": ("load",),
    "student": ("build",),
    "loss": ("needs", "compute"),
    "benchmark": ("languages", "source_language", "labels", "examples"),
    "corpus": ("languages", "texts"),
    "executor": ("execute",),
}
"""Members a plugin of each kind must define itself (the others have defaults in the base class)."""
