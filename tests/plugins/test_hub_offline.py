"""An unreachable Hugging Face Hub: found out once, in seconds, and every missing item said in one line.

Nothing here reaches a network: the "Hub" is a local port that accepts connections and
never answers (a firewall that drops packets, a dead proxy) or refuses them (no route),
set through ``HF_ENDPOINT``; ``HF_HUB_OFFLINE=1`` is the other way to be offline.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdreg import hub

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def online_env(tmp_path: Path, endpoint: str | None = None, **extra: str) -> dict[str, str]:
    """The test's environment without offline mode, an empty Hugging Face cache, the given Hub."""
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES}
    env.update({"HF_HOME": str(tmp_path / "hf"), "KDREG_HUB_TIMEOUT": "1", **extra})
    if endpoint is not None:
        env["HF_ENDPOINT"] = endpoint
    return env


def kdreg(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kdreg", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    return proc, time.monotonic() - started


def assert_one_line_naming_everything(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    line = lines[0]
    for item in ("teacher 'bert-large' (google-bert/bert-large-cased)", "benchmark 'xnli' (facebook/xnli",
                 "corpus 'wikipedia' (wikimedia/wikipedia", "--teacher hf:path=DIR", "xnli:path=DIR",
                 "wikipedia:path=DIR"):
        assert item in line, line
    assert "Retrying" not in proc.stderr
    return line


def test_a_hub_that_never_answers_is_one_line_in_seconds(tmp_path: Path, silent_port: int,
                                                         kdreg_home: Path) -> None:
    proc, seconds = kdreg("run", "--teacher", "bert-large",
                          env=online_env(tmp_path, f"http://127.0.0.1:{silent_port}"))
    line = assert_one_line_naming_everything(proc)
    assert "unreachable" in line and f"127.0.0.1:{silent_port}" in line
    assert seconds < 25, f"took {seconds:.1f} s"  # was 31-43 s of retries before the first item alone
    assert not (kdreg_home / "kdreg.db").exists()


def test_offline_mode_is_immediate(tmp_path: Path, kdreg_home: Path) -> None:
    proc, _ = kdreg("run", "--teacher", "bert-large", env=online_env(tmp_path, HF_HUB_OFFLINE="1"))
    assert "not used (HF_HUB_OFFLINE=1)" in assert_one_line_naming_everything(proc)


def test_dry_run_shows_the_plan_offline_and_marks_what_is_missing(tmp_path: Path, closed_port: int,
                                                                  kdreg_home: Path) -> None:
    proc, _ = kdreg("run", "--teacher", "bert-large", "--dry-run", "--format", "json",
                    env=online_env(tmp_path, f"http://127.0.0.1:{closed_port}"))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert {(u["kind"], u["spec"]) for u in plan["unavailable"]} == {
        ("teacher", "bert-large"), ("benchmark", "xnli"), ("corpus", "wikipedia")}
    marks = {run["stage"]: run["unavailable"] for run in plan["runs"]}
    assert marks["none"] == "teacher benchmark" and marks["both"] == "teacher benchmark corpus"
    table, _ = kdreg("run", "--teacher", "bert-large", "--dry-run",
                     env=online_env(tmp_path, HF_HUB_OFFLINE="1"))
    assert table.returncode == 0 and "not available here" in table.stdout and "5 to run" in table.stdout
    assert not (kdreg_home / "kdreg.db").exists()


@pytest.fixture
def undecided(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if nothing had asked the Hub yet and no offline mode were set."""
    import huggingface_hub.constants

    monkeypatch.setattr(hub, "_state", hub._State())
    for name in OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("KDREG_HUB_TIMEOUT", "1")


@pytest.mark.usefixtures("undecided")
def test_a_silent_hub_is_given_up_on_by_the_deadline_and_the_process_goes_offline(
        monkeypatch: pytest.MonkeyPatch, silent_port: int) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent_port}")
    started = time.monotonic()
    assert hub.hub_online() is False
    assert time.monotonic() - started < 2.5
    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.HF_HUB_OFFLINE is True
    started = time.monotonic()
    assert hub.hub_online() is False and time.monotonic() - started < 0.1  # asked once per process
    assert hub.offline_reason().startswith("the Hugging Face Hub is unreachable (http://127.0.0.1:")


@pytest.mark.usefixtures("undecided")
def test_a_hub_that_answers_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # the standard library's name
            self.send_response(404)  # any answer means the Hub is there
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        assert hub.hub_online() is True and "HF_HUB_OFFLINE" not in os.environ
    finally:
        server.shutdown()


@pytest.mark.usefixtures("undecided")
def test_a_bad_timeout_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from kdreg.errors import ConfigError

    monkeypatch.setenv("KDREG_HUB_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="KDREG_HUB_TIMEOUT='soon'"):
        hub.hub_online()
