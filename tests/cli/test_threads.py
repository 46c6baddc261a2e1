"""kdreg's thread policy: passive waiting before torch loads, and a thread count the user chooses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tiny_world import invoke

PROBE = """
import os, sys
from kdreg.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
import torch
print(os.environ.get("OMP_WAIT_POLICY"), os.environ.get("GOMP_SPINCOUNT"), torch.get_num_threads())
"""


def test_the_cli_makes_torch_threads_wait_passively_unless_the_user_chose(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", PROBE, "--help"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.stdout.strip().splitlines()[-1].startswith("PASSIVE 3000 ")  # a brief spin, then sleep
    mine = subprocess.run([sys.executable, "-c", PROBE, "--help"], capture_output=True, text=True,
                          env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, timeout=120)
    assert mine.stdout.strip().splitlines()[-1].startswith("ACTIVE None ")  # the user's choice stands
    spin = subprocess.run([sys.executable, "-c", PROBE, "--help"], capture_output=True, text=True,
                          env={**env, "GOMP_SPINCOUNT": "0"}, timeout=120)
    assert spin.stdout.strip().splitlines()[-1].startswith("None 0 ")


def test_threads_option_and_variable(world: dict[str, str], kdreg_home: Path,
                                     monkeypatch) -> None:  # type: ignore[no-untyped-def]
    base = ["run", "--teacher", world["teacher"], "--student", "layers:k=1", "--benchmark",
            world["benchmark"], "--stage", "none", "--config", world["grid"]]
    assert "--threads must be from 1 to 1024" in invoke(*base, "--threads", "0").output
    monkeypatch.setenv("KDREG_THREADS", "many")
    refused = invoke(*base)
    assert refused.exit_code == 1 and "KDREG_THREADS='many'" in refused.output
    monkeypatch.delenv("KDREG_THREADS")
    import torch

    before = torch.get_num_threads()
    try:
        done = invoke(*base, "--threads", "1")
        assert done.exit_code == 0, done.output
        with sqlite3.connect(kdreg_home / "kdreg.db") as db:
            [(environment,)] = db.execute("SELECT environment FROM runs").fetchall()
        assert json.loads(environment)["device"].startswith("cpu (1 threads")
    finally:
        torch.set_num_threads(before)
