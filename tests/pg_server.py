"""A throwaway PostgreSQL server for tests: the ``cluster`` fixture (import it into a test module).

A cluster is made in a temporary folder (``initdb``), started on a free localhost port
plus a Unix socket in that folder, and stopped at the end of the module. PostgreSQL
refuses to run as root, so under root the cluster belongs to the ``postgres`` system
user. Without the binaries (Debian: ``apt-get install postgresql``) the tests that use it
skip with the reason. The server runs in Asia/Kolkata (UTC+05:30, no daylight saving), as
a team's server in its own time zone would, so any confusion between naive and aware
times shows up.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_TIME_ZONE = "Asia/Kolkata"
USER = "kdreg"


def _postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<ver>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    for folder in sorted(debian, key=lambda p: int(p.split("/")[-2]), reverse=True):  # newest first
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    """A running throwaway server: TCP on 127.0.0.1:port and a Unix socket in ``socket_dir``."""

    port: int
    socket_dir: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def socket_url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A running throwaway PostgreSQL server for the tests of one module."""
    pytest.importorskip(  # ImportError too: psycopg present but without a libpq to use
        "psycopg", reason="psycopg is not installed (pip install 'kdreg[postgres]')", exc_type=ImportError
    )
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
    as_user: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        runuser = shutil.which("runuser")
        as_user = [runuser, "-u", "postgres", "--"] if runuser else []
        if not as_user:
            pytest.skip("running as root without runuser to start the server as 'postgres'")
    # Not under pytest's tmp folder: that one is private to this user (0700), the server's user
    # could not reach it.
    root = Path(tempfile.mkdtemp(prefix="kdreg-pg-"))
    try:
        if owner is not None:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        data, log = root / "data", root / "server.log"
        init = subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust",
             "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"],
            capture_output=True, text=True, timeout=60,
        )
        if init.returncode != 0:
            pytest.fail(f"initdb failed: {init.stderr[-2000:]}")
        port = _free_port()
        options = (f"-h 127.0.0.1 -p {port} -k {root} -F -c full_page_writes=off -c synchronous_commit=off "
                   f"-c timezone={SERVER_TIME_ZONE} -c max_connections=40")
        start = subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30",
             "-o", options, "start"],
            capture_output=True, text=True, timeout=60,
        )
        if start.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"pg_ctl start failed: {start.stdout}{start.stderr}{server_log[-2000:]}")
        try:
            yield Cluster(port, root)
        finally:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)
