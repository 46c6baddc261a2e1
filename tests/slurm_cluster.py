"""A real single-node Slurm cluster for tests: the ``slurm`` fixture (registered in conftest.py).

Debian's ``slurm-wlm`` and ``munge`` packages give the daemons; the fixture starts a
munged with its own key and socket, a slurmctld and a slurmd on 127.0.0.1 (free ports,
config, state and logs in a temporary folder, ``SLURM_CONF`` pointing at it), waits until
the node takes jobs, and stops all three at the end. Without root, the binaries or
submitit, the tests that use it skip with the reason (``.ci/run`` installs the packages).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CONF = """\
ClusterName=kdregtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName=kdregnode NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=kdregnode Default=YES MaxTime=INFINITE State=UP
"""


@dataclass(frozen=True)
class Slurm:
    """A running test cluster: its config file and folder."""

    conf: Path
    root: Path

    def squeue(self) -> str:
        return subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i %T %E"], capture_output=True,
                              text=True, timeout=30).stdout

    def job(self, job_id: str) -> str:
        return subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True,
                              timeout=30).stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "a test Slurm cluster needs root (the daemons run as root here)"
    missing = [b for b in (*DAEMONS, "sbatch", "squeue", "scontrol", "mungekey") if shutil.which(b) is None]
    if missing:
        return f"Slurm/munge binaries missing ({', '.join(missing)}): apt-get install slurm-wlm munge"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed (pip install 'kdreg[slurm]')"
    return None


@pytest.fixture(scope="session")
def slurm() -> Iterator[Slurm]:
    """A single-node Slurm cluster on this machine, for the whole test session."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    with start_slurm() as cluster:
        yield cluster


def _until_no_jobs(seconds: float = 15.0) -> None:
    """Wait (a while at most) until the cluster lists no job, or cannot be asked."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            listed = subprocess.run(["squeue", "-h"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return
        if listed.returncode != 0 or not listed.stdout.strip():
            return
        time.sleep(0.5)


@contextmanager
def start_slurm() -> Iterator[Slurm]:
    """Start munged, slurmctld and slurmd on this machine (as root); stop them on leaving."""
    root = Path(tempfile.mkdtemp(prefix="kdreg-slurm-"))
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    conf = root / "slurm.conf"
    conf.write_text(CONF.format(root=root, ctld_port=_free_port(), d_port=_free_port(),
                                cpus=os.cpu_count() or 2))
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    started: list[Path] = []
    try:
        subprocess.run(["mungekey", "--create", "--keyfile", str(root / "munge.key")], check=True,
                       capture_output=True, timeout=30)
        os.chmod(root / "munge.key", 0o600)
        subprocess.run(["munged", "--force", "--socket", str(root / "munge.socket"), "--key-file",
                        str(root / "munge.key"), "--pid-file", str(root / "munged.pid"), "--log-file",
                        str(root / "munged.log"), "--seed-file", str(root / "munged.seed")],
                       check=True, capture_output=True, timeout=30)
        started.append(root / "munged.pid")
        subprocess.run(["slurmctld", "-f", str(conf)], check=True, capture_output=True, timeout=30)
        started.append(root / "slurmctld.pid")
        subprocess.run(["slurmd", "-f", str(conf), "-N", "kdregnode"], check=True, capture_output=True,
                       timeout=30)
        started.append(root / "slurmd.pid")
        deadline = time.monotonic() + 60
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                                           timeout=30).stdout:
            if time.monotonic() > deadline:
                logs = "".join((root / f).read_text() for f in ("slurmctld.log", "slurmd.log")
                               if (root / f).exists())
                raise RuntimeError(f"the test Slurm node never became idle: {logs[-2000:]}")
            time.sleep(0.5)
        yield Slurm(conf, root)
    finally:
        subprocess.run(["scancel", "--full", "-u", "root"], capture_output=True, timeout=30)
        _until_no_jobs()  # let each job's slurmstepd end before slurmd goes (else it stays, orphaned)
        for pid_file in reversed(started):
            try:
                os.kill(int(pid_file.read_text().strip()), 15)
            except (OSError, ValueError):
                pass
        time.sleep(1)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        shutil.rmtree(root, ignore_errors=True)
