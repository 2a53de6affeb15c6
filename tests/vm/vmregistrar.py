"""The fleet side of the VM tier: an edge-registrar the guests reach, and nothing else."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from qemu import REGISTRAR_GUEST_ADDR, REGISTRAR_GUEST_PORT


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Registrar:
    """An edge-registrar on 127.0.0.1 (or ``listen``); QEMU guests reach it as https://10.0.2.100:8443 (guestfwd)."""

    def __init__(
        self, state_dir: Path, repo: Path, *, listen: str = "127.0.0.1", reached_as: str = REGISTRAR_GUEST_ADDR
    ) -> None:
        self.state_dir, self.repo, self.listen = state_dir, repo, listen
        self.log = state_dir.parent / "registrar.log"
        self.port = free_port(listen)
        self.pin = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.reached_as = reached_as
        # guests behind QEMU's guestfwd reach it at a fixed port; anything else at the port it listens on
        port = REGISTRAR_GUEST_PORT if reached_as == REGISTRAR_GUEST_ADDR else self.port
        self.url = f"https://{reached_as}:{port}"

    def cli(self, *args: str) -> str:
        argv = [sys.executable, "-m", "agent.registrar", "--state-dir", str(self.state_dir), *args]
        env = {**os.environ, "PYTHONPATH": str(self.repo)}
        res = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=self.repo, timeout=60, check=False)
        if res.returncode != 0:
            raise AssertionError(f"edge-registrar {' '.join(args)} exited {res.returncode}: {res.stderr}")
        return res.stdout

    def start(self) -> None:
        self.pin = self.cli("init").strip().splitlines()[-1]
        argv = [
            sys.executable, "-m", "agent.registrar", "--state-dir", str(self.state_dir), "serve",
            "--listen", f"{self.listen}:{self.port}", "--san", self.reached_as, "--servers", "1",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(self.repo)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.repo)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((self.listen, self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"edge-registrar did not start:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def token(self, site: str) -> str:
        return self.cli("token", "create", "--ttl", "1h", "--uses", "2", "--site", site).strip().splitlines()[-1]

    def seed(self, site: str) -> str:
        return (
            f'[fleet]\nurl = "{self.url}"\nca_pin = "{self.pin}"\n'
            f'bootstrap_token = "{self.token(site)}"\nsite = "{site}"\n'
        )

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return "(no registrar log)"
