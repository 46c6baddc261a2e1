"""What to read from the store: the filters of `query`, `report`, `export` and the Python API.

A :class:`Filters` value is built from user input by :func:`build_filters`, which is where
input is judged: text that is not valid UTF-8 (undecodable bytes on the command line),
absurdly long values, unknown stages or statuses, non-integer seeds and malformed dates
become one :class:`ConfigError` line naming the option. What passes is only ever used as
bound parameters (:mod:`kdreg.store.queries`), so quotes, ``%``, ``_`` or ``;`` are plain
characters that match nothing unless a stored name has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from kdreg.errors import ConfigError

STAGES = ("teacher", "none", "finetune", "pretrain", "both")
RUN_STATUSES = ("pending", "running", "succeeded", "failed", "interrupted")
"""The schema's values (``kdreg.store.schema``; a test keeps them equal), without importing the ORM."""

DEFAULT_METRIC = "accuracy"
DEFAULT_SPLIT = "test"
MAX_VALUE_LENGTH = 1000
"""Longest filter value accepted (the longest stored text, a ``*_spec``, is 1000 characters)."""


@dataclass(frozen=True)
class LanguageColumn:
    """A language the user asked for: its normalised code (the column) and the codes as typed."""

    code: str
    typed: tuple[str, ...]


@dataclass(frozen=True)
class Filters:
    """What to select: tuples are OR-ed within, fields AND-ed across; empty means no filter."""

    langs: tuple[str, ...] = ()
    teacher: tuple[str, ...] = ()
    student: tuple[str, ...] = ()
    loss: tuple[str, ...] = ()
    benchmark: tuple[str, ...] = ()
    corpus: tuple[str, ...] = ()
    stage: tuple[str, ...] = ()
    seed: tuple[int, ...] = ()
    status: tuple[str, ...] = ()
    metric: tuple[str, ...] = ()
    split: tuple[str, ...] = ()
    grid: tuple[int, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    keep_unset: bool = False
    """Keep runs a student/loss/corpus filter does not apply to (NULL there): the teacher's own
    row and the no-KD baseline stay in a report filtered by ``--student`` or ``--loss``."""
    language_columns: tuple[LanguageColumn, ...] = field(default=(), compare=False)

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.metric or (DEFAULT_METRIC,)

    @property
    def splits(self) -> tuple[str, ...]:
        return self.split or (DEFAULT_SPLIT,)


# --------------------------------------------------------------------------- building filters
def check_text(label: str, value: str) -> str:
    """``value`` stripped, if valid UTF-8 text of sensible length; else a ConfigError naming ``label``."""
    text = str(value).strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{label} value {text[:40]!r} is not valid UTF-8 text (undecodable bytes); "
            "type the name as it appears in `kdreg query`."
        ) from None
    if len(text) > MAX_VALUE_LENGTH:
        raise ConfigError(
            f"{label} value is {len(text)} characters long; no stored name is longer than {MAX_VALUE_LENGTH}."
        )
    return text


def _text_values(option: str, values: str | Iterable[str] | None) -> tuple[str, ...]:
    """Validated filter values, duplicates and empty ones dropped."""
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else list(values)
    out: list[str] = []
    for value in items:
        text = check_text(f"--{option}", value)
        if text and text not in out:
            out.append(text)
    return tuple(out)


def _int_values(option: str, values: int | str | Iterable[int | str] | None) -> tuple[int, ...]:
    if values is None:
        return ()
    items = [values] if isinstance(values, (int, str)) else list(values)
    out: list[int] = []
    for value in items:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"--{option} value {str(value)[:40]!r} is not an integer.") from None
        if not -(2**63) <= number < 2**63:
            raise ConfigError(f"--{option} value {str(value)[:40]} is out of range.")
        if number not in out:
            out.append(number)
    return tuple(out)


def _choices(option: str, values: tuple[str, ...], allowed: Sequence[str]) -> tuple[str, ...]:
    for value in values:
        if value not in allowed:
            raise ConfigError(f"Unknown --{option} {value[:40]!r}; use one of: {', '.join(allowed)}.")
    return values


def _day_bound(day: date, end: bool) -> datetime:
    """Midnight starting ``day``, or, as an upper bound, ending it (9999-12-31 has no end)."""
    if not end:
        return datetime.combine(day, time())
    return datetime.max if day == date.max else datetime.combine(day + timedelta(days=1), time())


def parse_time(text: str | datetime | date | None, *, end: bool = False) -> datetime | None:
    """An ISO date or date-time as naive UTC (how the store compares ``created_at``).

    A bare date used as an upper bound (``end``) means the end of that day, so
    ``--until 2025-03-01`` includes runs created on March 1st.
    """
    if text is None or text == "":
        return None
    if isinstance(text, datetime):
        moment = text
    elif isinstance(text, date):
        moment = _day_bound(text, end)
    else:
        raw = str(text).strip()
        try:
            if len(raw) == 10:
                moment = _day_bound(date.fromisoformat(raw), end)
            else:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"Not an ISO date or time: {raw[:40]!r}; write e.g. 2025-03-01 or 2025-03-01T14:30."
            ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


TWO_LETTER_CHANGES = frozenset({"bh", "in", "iw", "ji", "jw", "mo", "sh", "tl", "tw"})
"""The only ISO 639-1 codes :func:`kdreg.languages.normalize_language` changes (deprecated ones)."""


def normalized(code: str) -> str:
    """:func:`~kdreg.languages.normalize_language`, answering the common two-letter case itself.

    ``--lang de`` is the query people type most; loading langcodes' tables for it would
    cost a tenth of the query's time. A test checks this equals ``normalize_language`` for
    all 676 two-letter codes.
    """
    text = code.strip()
    if len(text) == 2 and text.isascii() and text.isalpha() and text.lower() not in TWO_LETTER_CHANGES:
        return text.lower()
    from kdreg.languages import normalize_language

    return normalize_language(code)


RESERVED_NAMES = frozenset(
    {
        "run",
        "hash",
        "teacher",
        "student",
        "stage",
        "loss",
        "benchmark",
        "corpus",
        "seed",
        "status",
        "created",
        "metric",
        "split",
        "source_lang",
        "source",
        "zero_shot",
        "targets",
        "runs",
        "seeds",
    }
)
"""Column names of query output; a language column may not take one of them."""


def language_columns(langs: Iterable[str]) -> tuple[LanguageColumn, ...]:
    """Group the typed language codes by their normalised form (``de`` and ``deu`` are one column)."""
    columns: dict[str, list[str]] = {}
    for typed in langs:
        code = normalized(typed)
        if code in RESERVED_NAMES:
            raise ConfigError(
                f"--lang {typed[:40]!r} is not a language code; write e.g. de, deu or deu_Latn."
            )
        columns.setdefault(code, []).append(typed)
    return tuple(LanguageColumn(code, tuple(typed)) for code, typed in columns.items())


def build_filters(
    *,
    lang: str | Iterable[str] | None = None,
    teacher: str | Iterable[str] | None = None,
    student: str | Iterable[str] | None = None,
    loss: str | Iterable[str] | None = None,
    benchmark: str | Iterable[str] | None = None,
    corpus: str | Iterable[str] | None = None,
    stage: str | Iterable[str] | None = None,
    seed: int | Iterable[int] | None = None,
    status: str | Iterable[str] | None = None,
    metric: str | Iterable[str] | None = None,
    split: str | Iterable[str] | None = None,
    grid: int | Iterable[int] | None = None,
    since: str | datetime | date | None = None,
    until: str | datetime | date | None = None,
    keep_unset: bool = False,
) -> Filters:
    """Filters from user input (CLI options or Python keyword arguments), validated.

    Raises :class:`ConfigError` with the option's name for undecodable text, unknown stages
    or statuses, non-integer seeds and malformed dates.
    """
    langs = _text_values("lang", lang)
    start, stop = parse_time(since), parse_time(until, end=True)
    if start is not None and stop is not None and start >= stop:
        raise ConfigError("--since is not before --until; nothing can match.")
    return Filters(
        langs=langs,
        teacher=_text_values("teacher", teacher),
        student=_text_values("student", student),
        loss=_text_values("loss", loss),
        benchmark=_text_values("benchmark", benchmark),
        corpus=_text_values("corpus", corpus),
        stage=_choices("stage", _text_values("stage", stage), STAGES),
        seed=_int_values("seed", seed),
        status=_choices("status", _text_values("status", status), RUN_STATUSES),
        metric=_text_values("metric", metric),
        split=_text_values("split", split),
        grid=_int_values("grid", grid),
        since=start,
        until=stop,
        keep_unset=keep_unset,
        language_columns=language_columns(langs),
    )
