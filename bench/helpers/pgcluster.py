"""A throwaway PostgreSQL 15 cluster (tests, bench): initdb + pg_ctl in a temp dir, unix socket only.

initdb and postgres refuse to run as root, so the cluster is made and run as ``nobody`` (setpriv)
in a directory chowned to it; ``listen_addresses=''`` keeps it off every network, clients reach it
through the socket in ``<dir>/sock``. ``stop()`` signals the postmaster by the PID it wrote and waits
for it to exit; ``start()`` again serves the same data (a database outage and its end).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "nobody"
SUPERUSER = "edge"


def available() -> bool:
    return (BIN / "initdb").exists() and (BIN / "pg_ctl").exists()


class PgCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="edge-pg-"))
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.log = self.dir / "postgres.log"
        pw = pwd.getpwnam(USER)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.sock.mkdir()
        for p in (self.dir, self.sock):
            os.chown(p, self.uid, self.gid)
        self.dir.chmod(0o755)  # clients (root) and the server (nobody) both reach the socket
        self._as_user(
            [str(BIN / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync"]
        )
        conf = self.data / "postgresql.conf"
        with conf.open("a") as f:
            f.write(f"listen_addresses = ''\nunix_socket_directories = '{self.sock}'\n")
            f.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n")
        self.pid = 0

    def _as_user(self, argv: list[str]) -> None:
        cmd = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", *argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.dir)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {proc.stderr or proc.stdout}")

    def start(self) -> None:
        self._as_user([str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"])
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster, by its PID), waiting until it is gone."""
        if not self.pid:
            return
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            self.pid = 0
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        self.pid = 0

    def url(self, db: str = "postgres") -> str:
        return f"postgresql:///{db}?host={self.sock}&user={SUPERUSER}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
