"""Scratch boxes for end-to-end runtime tests: a --root tree, stand-in programs on the
runner's PATH, an air-gap bundle holding the stand-in k3s/k0s, and a shared fake cluster."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.context import AgentContext
from agent.model.conditions import Condition
from agent.model.config import AgentConfig, AgentSection, KubernetesSection
from agent.model.inventory import Gpu, Inventory
from agent.paths import Paths
from agent.planning import PlannerController
from agent.runtime.controller import RuntimeController
from agent.state import StateStore
from agent.status import StatusBoard
from agent.sysexec import ProcessRunner
from agent.watch import Watch

STANDINS = Path(__file__).resolve().parent.parent / "standins"
BIN = STANDINS / "bin"
DIST = STANDINS / "dist" / "kube-standin"
AIRGAP = "/usr/lib/edge-agent/airgap"


class PlannedRuntime(RuntimeController):
    """The runtime controller with the planner's pass before each reconcile: in the daemon the
    planner controller publishes ctx.desired on its own; here one test drives both in step."""

    def __init__(self, ctx: AgentContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.planner = PlannerController(ctx)

    async def reconcile(self) -> None:
        self.planner.plan_once()
        await super().reconcile()


def standin_binary(version: str | None = None, distribution: str = "k3s") -> bytes:
    """The stand-in, optionally claiming another version (a different 'release')."""
    text = DIST.read_text()
    if version:
        var = "K3S_VERSION" if distribution == "k3s" else "K0S_VERSION"
        lines = [f'{var} = "{version}"' if line.startswith(f"{var} = ") else line for line in text.splitlines()]
        text = "\n".join(lines) + "\n"
    return text.encode()


SHIM_PID = "run/k3s/containerd/standin-shim.pid"


def kill_pod_shims(root: Path) -> None:
    """The stand-in k3s leaves a 'pod' (a shim process) running after its unit stops, as k3s does;
    a test that does not uninstall ends it here."""
    try:
        pid = int((root / SHIM_PID).read_text().strip() or 0)
    except (OSError, ValueError):
        return
    if pid > 1:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def write_bundle(root: Path, distribution: str, binary: bytes, *, sums: dict[str, str] | None = None) -> Path:
    """An air-gap bundle as the image ships it: binary, sha256sum file, image tarball."""
    d = root / AIRGAP.lstrip("/") / distribution
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / distribution).write_bytes(binary)
    (d / distribution).chmod(0o755)
    image = "k3s-airgap-images-amd64.tar.zst" if distribution == "k3s" else "k0s-airgap-bundle-v1-linux-amd64.tar"
    (d / image).write_bytes(b"stand-in image tarball for " + distribution.encode())
    listed = {
        distribution: hashlib.sha256(binary).hexdigest(),
        image: hashlib.sha256((d / image).read_bytes()).hexdigest(),
    }
    listed.update(sums or {})
    (d / "sha256sum.txt").write_text("".join(f"{h}  {n}\n" for n, h in listed.items()))
    return d


@dataclass
class Box:
    name: str
    root: Path
    address: str
    cluster: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.ctx = AgentContext(
            paths=Paths(self.root),
            runner=self.runner(),
            board=StatusBoard(),
            store=StateStore(self.root / "var/lib/edge-agent/state.json"),
            config=Watch(AgentConfig()),
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            "LC_ALL": "C",
            "EDGE_STANDIN_ROOT": str(self.root),
            "EDGE_STANDIN_CLUSTER": str(self.cluster),
            "EDGE_STANDIN_ADDRESS": self.address,
            "EDGE_STANDIN_READY_DELAY": "0.2",
            "EDGE_STANDIN_K0S_BOOTSTRAP_TRIES": "1",
            **self.extra_env,
        }

    @property
    def path(self) -> str:
        return ":".join(
            [
                str(BIN),
                str(self.root / "usr/local/bin"),
                str(self.root / "usr/bin"),
                os.path.dirname(sys.executable),
                "/usr/bin",
                "/bin",
            ]
        )

    def runner(self) -> ProcessRunner:
        return ProcessRunner(path=self.path, base_env=self.env)

    def config(self, node_name: str | None = None, **kube: Any) -> AgentConfig:
        kube.setdefault("start_timeout", 5.0)
        return AgentConfig(
            agent=AgentSection(node_name=node_name or self.name),
            kubernetes=KubernetesSection.model_validate(kube),
        )

    def set_config(self, node_name: str | None = None, **kube: Any) -> None:
        """Before the loop starts (Watch.set needs one running, so assign directly)."""
        self.ctx.config = Watch(self.config(node_name, **kube))

    def add_nvidia_gpu(self) -> None:
        """The inventory shows one NVIDIA compute GPU (what the planner needs to wire its runtime)."""
        gpu = Gpu(kind="pci", name="NVIDIA A2", vendor_id="10de", device_id="25b6", driver="nvidia")
        self.ctx.inventory.set(Inventory(scanned_at=datetime.now(UTC), gpus=(gpu,)))

    def add_nvidia_toolkit(self) -> None:
        exe = self.root / "usr/bin/nvidia-container-runtime"
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)

    def bundle(self, distribution: str, version: str | None = None) -> Path:
        return write_bundle(self.root, distribution, standin_binary(version, distribution))

    def controller(self) -> RuntimeController:
        return PlannedRuntime(self.ctx, poll_interval=0.2)

    def cond(self, ctype: str) -> Condition:
        c = self.ctx.board.condition(ctype)
        assert c is not None, f"no {ctype} condition"
        return c

    def section(self) -> dict[str, Any]:
        return dict(self.ctx.board.sections()["kubernetes"])

    def calls(self) -> list[dict[str, Any]]:
        log = self.root / "var/log/standin-calls.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def journal(self, unit: str) -> str:
        p = self.root / "var/log/standin-journal" / f"{unit}.log"
        return p.read_text() if p.exists() else ""

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a program as the agent would (same PATH and environment)."""
        return subprocess.run(
            list(argv), capture_output=True, text=True, check=check, env={"PATH": self.path, **self.env}
        )

    def stop_all(self) -> None:
        state = self.root / "run/standin-systemd"
        if state.is_dir():
            for f in state.glob("*.service.json"):
                self.run("systemctl", "stop", f.name.removesuffix(".json"), check=False)
        kill_pod_shims(self.root)

    async def converge(
        self, ctl: RuntimeController, until: Callable[[], bool] | None = None, timeout: float = 15.0
    ) -> None:
        """Reconcile until ``until`` holds (default: NodeReady=True)."""

        def ready() -> bool:
            c = self.ctx.board.condition("NodeReady")
            return c is not None and c.status == "True"

        check = until or ready
        deadline = time.monotonic() + timeout
        while True:
            await ctl.reconcile()
            if check():
                return
            if time.monotonic() > deadline:
                conds = {c.type: (c.status, c.reason, c.message) for c in self.ctx.board.conditions()}
                raise AssertionError(f"{self.name} did not converge: {conds}")
            await asyncio.sleep(0.15)


def mtimes(root: Path, paths: list[str]) -> dict[str, int]:
    return {p: (root / p.lstrip("/")).stat().st_mtime_ns for p in paths}


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Whether ``pid`` is gone within 5 s (``proc``: our child, reaped first)."""
    if proc is not None:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            return False
    for _ in range(100):
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False
