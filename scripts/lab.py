"""A fleet on loopback: a real edge-registrar and one real agentd on a scratch root, seeded the way an
image builder seeds a box. Used by `make demo` and by the benchmarks that need an enrolled agent."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FleetLab:
    def __init__(
        self,
        scratch: Path,
        site: str = "demo-lab",
        agentd: list[str] | None = None,
        agentd_env: dict[str, str] | None = None,
    ) -> None:
        self.scratch = scratch
        self.root = scratch / "root"
        self.state = scratch / "registrar"
        self.site = site
        self.agentd_cmd = agentd or [sys.executable, "-m", "agent.daemon"]
        self.agentd_env = agentd_env
        self.port = free_port()
        self.api_port = free_port()
        self.pin = ""
        self.registrar_proc: subprocess.Popen[bytes] | None = None
        self.agent_proc: subprocess.Popen[bytes] | None = None

    def registrar(self, *args: str) -> str:
        cmd = [sys.executable, "-m", "agent.registrar.cli", "--state-dir", str(self.state), *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()

    def start_registrar(self) -> None:
        for d in (self.root, self.state):
            if d.exists():
                shutil.rmtree(d)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.pin = self.registrar("init").split()[-1]
        self.registrar_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent.registrar.cli",
                "--state-dir",
                str(self.state),
                "serve",
                "--listen",
                f"127.0.0.1:{self.port}",
            ],
            stderr=(self.scratch / "registrar.log").open("w"),
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise SystemExit(f"the registrar did not listen on 127.0.0.1:{self.port}; see {self.scratch}/registrar.log")

    def seed_box(self) -> None:
        """A fresh box: machine id, a one-time token in the boot-partition seed, remote API on loopback."""
        (self.root / "etc/edge-agent").mkdir(parents=True)
        (self.root / "boot").mkdir()
        machine_id = Path("/etc/machine-id")
        text = machine_id.read_text() if machine_id.is_file() else uuid.uuid4().hex + "\n"
        (self.root / "etc/machine-id").write_text(text)
        token = self.registrar("token", "create", "--ttl", "1h", "--uses", "1", "--site", self.site).split()[-1]
        (self.root / "boot/edge-agent.toml").write_text(
            f'[fleet]\nurl = "https://127.0.0.1:{self.port}"\nca_pin = "{self.pin}"\n'
            f'bootstrap_token = "{token}"\nsite = "{self.site}"\n'
        )
        (self.root / "etc/edge-agent/agent.toml").write_text(f'[api]\nremote_listen = "127.0.0.1:{self.api_port}"\n')

    def start_agent(self) -> None:
        self.agent_proc = subprocess.Popen(
            [*self.agentd_cmd, "run", "--root", str(self.root), "--log-format", "text"],
            stderr=(self.scratch / "agentd.log").open("w"),
            env=self.agentd_env,
        )

    def conditions(self) -> dict[str, str]:
        cmd = [sys.executable, "-m", "agent.cli.agentctl", "--root", str(self.root), "status", "-o", "json"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        try:
            return {c["type"]: c["status"] for c in json.loads(out)["conditions"]}
        except (ValueError, KeyError):
            return {}

    def wait_for(self, *types: str, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            conds = self.conditions()
            if all(conds.get(t) == "True" for t in types):
                return True
            time.sleep(0.3)
        return False

    def client_cert(self, role: str, name: str) -> Path:
        out = self.scratch / f"client-{name}"
        self.registrar("cert", "issue", "--role", role, "--name", name, "--out", str(out))
        return out

    def stop(self) -> float:
        """Stop both; returns how long agentd took to exit after SIGTERM."""
        took = 0.0
        if self.registrar_proc:
            self.registrar_proc.send_signal(signal.SIGTERM)
        if self.agent_proc:
            t0 = time.monotonic()
            self.agent_proc.send_signal(signal.SIGTERM)
            self.agent_proc.wait(10)
            took = time.monotonic() - t0
        if self.registrar_proc:
            self.registrar_proc.wait(10)
        return took
