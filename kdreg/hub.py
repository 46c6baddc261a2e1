"""Whether the Hugging Face Hub can be used, decided once per process in seconds.

Offline, huggingface_hub retries every request it makes (``Retrying in 8s [Retry 5/5]``)
and transformers and datasets each make several, so a grid that names a hub model took
half a minute or more to say that it cannot load it — and the same again for every
model a run loads from the local cache. Instead, before the first request a plugin
makes, :func:`hub_online` asks the Hub once, with a short deadline and no retries:

* ``HF_HUB_OFFLINE=1`` (or ``TRANSFORMERS_OFFLINE`` / ``HF_DATASETS_OFFLINE``) answers
  at once: offline, nothing is asked;
* an answer of any kind (even an error status) means the Hub is there;
* no answer within :data:`PROBE_SECONDS` (``KDREG_HUB_TIMEOUT`` changes it; no route, no
  name resolution, a firewall) means it is not: this process then switches
  huggingface_hub, transformers and datasets to their offline mode, so they read their
  caches without asking, and the tasks it starts inherit ``HF_HUB_OFFLINE=1``.

Models and datasets in the local cache keep working either way; what is missing is
reported by the plugins' ``check()`` (see :func:`kdreg.execution.plan.preflight`, which
gathers every such error of a grid into one message). The huggingface_hub imports are
inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

PROBE_SECONDS = 5.0
"""How long the one request may take before the Hub counts as unreachable (``KDREG_HUB_TIMEOUT``)."""
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = ("1", "true", "yes", "on")


@dataclass
class _State:
    reason: str | None = None
    """Why the Hub is not used (None: not decided yet, or online)."""
    decided: bool = False


_state = _State()
_lock = threading.Lock()


def offline_requested() -> str | None:
    """The variable that asks for offline mode (``HF_HUB_OFFLINE=1``), or None."""
    for name in OFFLINE_VARIABLES:
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return f"{name}={os.environ[name].strip()}"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and getattr(constants, "HF_HUB_OFFLINE", False):
        return "huggingface_hub's offline mode"
    return None


def endpoint() -> str:
    """The Hub's address (``HF_ENDPOINT``, default https://huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def probe_seconds() -> float:
    """The probe's deadline: ``KDREG_HUB_TIMEOUT`` seconds, or :data:`PROBE_SECONDS`."""
    text = os.environ.get("KDREG_HUB_TIMEOUT", "").strip()
    if not text:
        return PROBE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 600:
        from kdreg.errors import ConfigError

        raise ConfigError(f"KDREG_HUB_TIMEOUT={text[:30]!r} is not a number of seconds from 0 to 600 "
                          f"(default {PROBE_SECONDS:g}).")
    return seconds


def _probe(url: str, seconds: float) -> str | None:
    """None when ``url`` answers within ``seconds``, else why not (one short phrase).

    The request runs in a daemon thread: name resolution takes no timeout and can hang
    far longer than the request's own deadline, and nothing must wait on it.
    """
    outcome: list[str | None] = []

    def ask() -> None:
        try:
            from huggingface_hub.utils import get_session

            get_session().head(url, timeout=seconds, follow_redirects=False)
            outcome.append(None)
        except Exception as exc:  # any failure to get an answer means: unreachable
            text = " ".join(str(exc).split())[:120] or type(exc).__name__
            outcome.append(text)

    thread = threading.Thread(target=ask, name="kdreg-hub-probe", daemon=True)
    thread.start()
    thread.join(seconds + 1.0)
    if not outcome:
        return f"no answer from {url} within {seconds:g} s"
    return outcome[0]


def go_offline(reason: str) -> None:
    """Switch this process and the tasks it starts to the libraries' offline mode (cache only)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    hub_constants = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True  # read at every request (is_offline_mode)
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = True
        datasets_config.HF_DATASETS_OFFLINE = True
    _state.reason, _state.decided = reason, True


def hub_online() -> bool:
    """Whether the Hub can be used; the first call asks it (at most :func:`probe_seconds`).

    When it cannot, the process is in offline mode afterwards (:func:`go_offline`), so
    the libraries read their caches at once instead of retrying.
    """
    requested = offline_requested()
    if requested is not None:
        if not _state.decided:
            go_offline(requested)
        return False
    with _lock:
        if not _state.decided:
            reason = _probe(endpoint(), probe_seconds())
            if reason is None:
                _state.reason, _state.decided = None, True
            else:
                go_offline(f"{endpoint()}: {reason}")
    return _state.reason is None


def offline_reason() -> str:
    """Why this process does not use the Hub, as a sentence's subject and verb.

    ``the Hugging Face Hub is not used (HF_HUB_OFFLINE=1)`` or ``the Hugging Face Hub is
    unreachable (https://huggingface.co: [Errno -2] Name or service not known)``.
    """
    requested = offline_requested()
    if _state.reason is not None and _state.reason != requested:
        return f"the Hugging Face Hub is unreachable ({_state.reason})"
    if requested is not None:
        return f"the Hugging Face Hub is not used ({requested})"
    return "the Hugging Face Hub is unreachable"
