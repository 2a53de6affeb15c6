"""Several real ``edge-registrar serve`` processes on one database (tests/registrar, bench/fleet_bench.py):
one fleet CA (the files copied to every replica's state directory, as an operator would), each replica on
its own loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def registrar(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``edge-registrar --state-dir STATE ARGS...``, which must exit 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "agent.registrar", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise AssertionError(f"edge-registrar {' '.join(args)}: {proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ReplicaSet:
    def __init__(self, work: Path, database: str, count: int, *serve_args: str) -> None:
        self.work = work
        self.database = database
        self.dirs = [work / f"replica-{i}" for i in range(count)]
        registrar(self.dirs[0], "--database", database, "init")
        for d in self.dirs[1:]:
            d.mkdir(mode=0o700)
            for name in ("ca.pem", "ca.key"):
                shutil.copy2(self.dirs[0] / name, d / name)
        self.ports = [free_port() for _ in self.dirs]
        self.serve_args = list(serve_args)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.log_level = "warning"

    @property
    def ca_pem(self) -> Path:
        return self.dirs[0] / "ca.pem"

    @property
    def urls(self) -> list[str]:
        return [f"https://127.0.0.1:{p}" for p in self.ports]

    def cli(self, *args: str) -> str:
        return registrar(self.dirs[0], "--database", self.database, *args).stdout

    def start(self) -> ReplicaSet:
        for i, d in enumerate(self.dirs):
            log = (self.work / f"replica-{i}.log").open("ab")
            self.procs[i] = subprocess.Popen(
                [sys.executable, "-m", "agent.registrar", "--state-dir", str(d), "--database", self.database,
                 "--log-level", self.log_level, "serve", "--listen", f"127.0.0.1:{self.ports[i]}", *self.serve_args],
                stderr=log,
            )  # fmt: skip
        for i, port in enumerate(self.ports):
            self._wait(i, port)
        return self

    def _wait(self, i: int, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            proc = self.procs[i]
            assert proc is not None
            if proc.poll() is not None:
                raise AssertionError(f"replica {i} exited {proc.returncode}: {self.log(i)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"replica {i} does not listen on {port}: {self.log(i)}")

    def log(self, i: int) -> str:
        path = self.work / f"replica-{i}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
