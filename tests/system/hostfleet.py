"""The fleet side of the system tests: an edge-registrar on the host, reachable from the boxes.

The registrar listens on an address of a veth pair this module creates (``e2e-reg0``,
10.231.255.1/32), never on the host's own interfaces; each box routes 10.231.255.0/24
through the host end of its nspawn veth.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGISTRAR_NET = "10.231.255.0/24"
REGISTRAR_ADDR = "10.231.255.1"
VETH = "e2e-reg0"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def add_registrar_address() -> None:
    remove_registrar_address()
    subprocess.run(["ip", "link", "add", VETH, "type", "veth", "peer", "name", f"{VETH}p"], check=True)
    subprocess.run(["ip", "addr", "add", f"{REGISTRAR_ADDR}/32", "dev", VETH], check=True)
    for dev in (VETH, f"{VETH}p"):
        subprocess.run(["ip", "link", "set", dev, "up"], check=True)


def remove_registrar_address() -> None:
    subprocess.run(["ip", "link", "del", VETH], capture_output=True, check=False)


@dataclass
class HostRegistrar:
    state_dir: Path
    repo: Path
    servers: int = 1
    distribution: str = "k3s"
    port: int = 0
    pin: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.state_dir.parent / "registrar.log"

    @property
    def url(self) -> str:
        return f"https://{REGISTRAR_ADDR}:{self.port}"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "agent.registrar", "--state-dir", str(self.state_dir), *args]
        env = {**os.environ, "PYTHONPATH": str(self.repo)}
        res = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=self.repo, timeout=60, check=False)
        if check and res.returncode != 0:
            raise AssertionError(f"edge-registrar {' '.join(args)} exited {res.returncode}: {res.stderr}")
        return res

    def start(self) -> None:
        self.pin = self.cli("init").stdout.strip().splitlines()[-1]
        assert self.pin.startswith("sha256:"), self.pin
        self.port = free_port(REGISTRAR_ADDR)
        argv = [
            sys.executable, "-m", "agent.registrar", "--state-dir", str(self.state_dir), "serve",
            "--listen", f"{REGISTRAR_ADDR}:{self.port}", "--servers", str(self.servers),
            "--distribution", self.distribution,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(self.repo)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.repo)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((REGISTRAR_ADDR, self.port), timeout=0.5).close()
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

    def token(self, *, ttl: str = "1h", uses: int = 10, site: str = "", labels: tuple[str, ...] = ()) -> str:
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
        doc = json.loads(self.cli("nodes", "list", "-o", "json").stdout)
        nodes = doc.get("nodes", doc) if isinstance(doc, dict) else doc
        assert isinstance(nodes, list), doc
        return nodes

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return "(no registrar log)"


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
