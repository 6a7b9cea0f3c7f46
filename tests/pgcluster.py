"""A private PostgreSQL cluster for tests that restart or stop the server (tests/test_faults.py).

``initdb`` and ``pg_ctl`` from /usr/lib/postgresql/*/bin, run as the ``postgres`` OS user (through
``runuser`` when the tests run as root), in a temporary folder of its own, on a free loopback port, with
trust authentication. The shared server on 5432 is never touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

OS_USER = "postgres"
BIN_GLOB = "/usr/lib/postgresql/*/bin"


def binaries() -> Path | None:
    """The newest installed server's bin folder that has initdb and pg_ctl."""
    found = [Path(p) for p in glob.glob(BIN_GLOB) if (Path(p) / "initdb").exists() and (Path(p) / "pg_ctl").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0) if found else None


def unavailable_reason() -> str | None:
    """Why a private cluster cannot be started here, or None when it can."""
    if binaries() is None:
        return f"no PostgreSQL server binaries (initdb, pg_ctl) under {BIN_GLOB}"
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        return f"no '{OS_USER}' OS user to run the private cluster as"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != OS_USER:
        return f"the private cluster runs as '{OS_USER}': the tests must run as root or as that user"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing (needed to start the cluster as the postgres user)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """One cluster: ``start``, ``restart``, ``stop``, ``destroy``; ``url(db)`` for SQLAlchemy."""

    def __init__(self) -> None:
        self.bin = binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="tracker-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        if os.geteuid() == 0:
            entry = pwd.getpwnam(OS_USER)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._pg_ctl_or_initdb("initdb", "-D", str(self.data), "-A", "trust", "-U", OS_USER, "-E", "UTF8",
                               "--locale=C.UTF-8", "--no-sync")

    def _pg_ctl_or_initdb(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OS_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.folder,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                               f"{self.server_log()}")
        return done

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> None:
        # fsync off: the tests restart the server cleanly (-m fast) or kill its clients, never the machine.
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=50")
        self._pg_ctl_or_initdb("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
                               "start")

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m fast``: every session is ended (its open transaction rolled back), then the
        server comes back on the same port with the same options."""
        # -l again: without it the new server would write to (and hold open) our pipe.
        self._pg_ctl_or_initdb("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t", "60",
                               "restart")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl_or_initdb("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{OS_USER}@127.0.0.1:{self.port}/{database}"

    @contextlib.contextmanager
    def admin(self) -> Iterator[Engine]:
        engine = create_engine(self.url().replace("postgresql://", "postgresql+psycopg://"),
                               isolation_level="AUTOCOMMIT")
        try:
            yield engine
        finally:
            engine.dispose()

    def create_database(self, name: str, template: str | None = None) -> str:
        with self.admin() as engine, engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as engine, engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def start_time(self) -> object:
        with self.admin() as engine, engine.connect() as conn:
            return conn.scalar(text("SELECT pg_postmaster_start_time()"))


def wait_until(predicate, timeout: float = 15.0, step: float = 0.05) -> bool:
    """Poll (never one long sleep) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
