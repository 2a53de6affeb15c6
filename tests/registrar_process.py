"""An edge-registrar run from this checkout, the fleet side the slow tiers' boxes enroll with.

``init`` makes the fleet CA (its pin is what a seed carries), ``serve`` listens until :meth:`stop`.
The system tier (tests/system/hostfleet.py, nspawn boxes behind a veth) and the VM tier
(tests/vm/vmregistrar.py, QEMU guests behind a guestfwd) say where it listens and how their boxes
reach it; everything else about running it is here, once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.processes import stop_process, stopped_on_failure

START_TIMEOUT = 30.0


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def seed_toml(url: str, pin: str, token: str, *, site: str = "", labels: dict[str, str] | None = None) -> str:
    """A first-boot seed, the document a builder puts on /boot or passes as a credential."""
    lines = ["[fleet]"]
    if url:
        lines.append(f'url = "{url}"')
    if pin:
        lines.append(f'ca_pin = "{pin}"')
    if token:
        lines.append(f'bootstrap_token = "{token}"')
    if site:
        lines.append(f'site = "{site}"')
    if labels:
        lines.append("[fleet.labels]")
        lines.extend(f'"{k}" = "{v}"' for k, v in labels.items())
    return "\n".join(lines) + "\n"


class RegistrarProcess:
    """``python -m agent.registrar`` on ``listen`` (a free port picked now), its log beside ``state_dir``.

    As a context manager it is started on entry and stopped on exit (also when it fails to start)."""

    def __init__(self, state_dir: Path, repo: Path, listen: str) -> None:
        self.state_dir, self.repo, self.listen = state_dir, repo, listen
        self.log = state_dir.parent / "registrar.log"
        self.port = free_port(listen)
        self.pin = ""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where a box reaches it (here: where it listens)."""
        return f"https://{self.listen}:{self.port}"

    def serve_args(self) -> list[str]:
        """What ``serve`` is told besides ``--listen``."""
        return []

    def _argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "agent.registrar", "--state-dir", str(self.state_dir), *args]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.repo)}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``edge-registrar ARGS`` on the same state; a non-zero exit raises unless ``check`` is false."""
        res = subprocess.run(
            self._argv(*args), capture_output=True, text=True, env=self._env(), cwd=self.repo, timeout=60, check=False
        )
        if check and res.returncode != 0:
            raise AssertionError(f"edge-registrar {' '.join(args)} exited {res.returncode}: {res.stderr}")
        return res

    def start(self) -> None:
        """``init`` (the pin), then ``serve`` until it accepts connections."""
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        self.pin = self.cli("init").stdout.strip().splitlines()[-1]
        assert self.pin.startswith("sha256:"), self.pin
        argv = self._argv("serve", "--listen", f"{self.listen}:{self.port}", *self.serve_args())
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self._env(), cwd=self.repo)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection((self.listen, self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"edge-registrar did not start:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=10)

    def __enter__(self) -> Self:
        with stopped_on_failure(self.stop):
            self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def token(self, *, ttl: str = "1h", uses: int = 10, site: str = "", labels: tuple[str, ...] = ()) -> str:
        """A new bootstrap token."""
        args = ["token", "create", "--ttl", ttl, "--uses", str(uses)]
        if site:
            args += ["--site", site]
        for lab in labels:
            args += ["--label", lab]
        return self.cli(*args).stdout.strip().splitlines()[-1]

    def uses_left(self, token: str) -> int:
        """How often ``token`` may still be used (tokens are ``<id>.<secret>``; only the id is listed)."""
        token_id = token.partition(".")[0]
        doc = json.loads(self.cli("token", "list", "-o", "json").stdout)
        found = [t["uses_left"] for t in doc["tokens"] if t["token_id"] == token_id]
        assert len(found) == 1, f"token {token_id} not listed: {doc}"
        return int(found[0])

    def nodes(self) -> list[dict[str, Any]]:
        """The enrolled nodes, as ``nodes list -o json`` lists them."""
        doc = json.loads(self.cli("nodes", "list", "-o", "json").stdout)
        nodes = doc.get("nodes", doc) if isinstance(doc, dict) else doc
        assert isinstance(nodes, list), doc
        return nodes

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return "(no registrar log)"
