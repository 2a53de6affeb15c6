"""k3s: our own units and config files, started with our own timeout (Type=notify can block forever)."""

from __future__ import annotations

import logging
import secrets
import shutil
from dataclasses import replace

from pydantic import SecretStr

from agent.errors import CommandFailed, CommandTimeout
from agent.fsio import atomic_write
from agent.model.desired import DesiredKube
from agent.model.fleet import JoinTokens
from agent.paths import Paths
from agent.runtime.base import Activation, NodeReadiness
from agent.runtime.killall import Killall
from agent.runtime.kubectl import node_readiness
from agent.runtime.layout import K3S, K3S_AGENT_TOKEN, K3S_CONTAINERD_CONFIG, K3S_REMOVES, K3S_SERVER_TOKEN, SYSTEMD
from agent.runtime.mounts import Mounts
from agent.runtime.render import Facts, Rendered, k3s_unit_name, render_k3s
from agent.runtime.systemd import Systemd
from agent.sysexec import Runner

log = logging.getLogger(__name__)


class K3s:
    distribution = "k3s"

    def __init__(self, paths: Paths, runner: Runner, *, network: bool | None = None) -> None:
        """``network``: killall may clean the host's links and iptables (default: only for root ``/``)."""
        self.paths = paths
        self.runner = runner
        self.systemd = Systemd(runner)
        self.mounts = Mounts(paths)
        self.killall = Killall(paths, runner, network=network, mounts=self.mounts)

    @property
    def binary(self) -> str:
        return str(self.paths.under(K3S.binary))

    def render(self, d: DesiredKube, facts: Facts) -> Rendered:
        if d.role == "server" and d.cluster_init and not facts.agent_token:
            facts = replace(facts, agent_token=self._agent_password())
        return render_k3s(d, facts)

    def _agent_password(self) -> str:
        """The password of the cluster's agent token: made once on the first server, kept 0600."""
        path = self.paths.state_dir / "runtime" / "k3s-agent-token"
        try:
            kept = path.read_text().strip()
        except FileNotFoundError:
            kept = ""
        if kept:
            return kept
        password = secrets.token_hex(16)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, (password + "\n").encode(), mode=0o600)
        return password

    async def activate(self, d: DesiredKube, r: Rendered, *, apply: bool, unit_changed: bool) -> Activation:
        if unit_changed or apply:
            await self.systemd.daemon_reload()
        if apply:
            await self.systemd.enable(r.unit)
        state = await self.systemd.show(r.unit)
        try:
            if apply and state.starting:
                await self.systemd.restart(r.unit, d.start_timeout)
                return Activation("restarted")
            if not state.starting:
                await self.systemd.start(r.unit, d.start_timeout)
                return Activation("started")
        except CommandTimeout:
            return Activation("timeout", f"{r.unit} did not report READY within {d.start_timeout:g}s")
        except CommandFailed as exc:
            return Activation("failed", exc.stderr_tail or str(exc))
        return Activation("unchanged")

    async def healthy(self, d: DesiredKube, unit: str) -> tuple[bool, str]:
        return True, ""  # Type=notify: "active" already means k3s reported READY

    async def node_ready(self, d: DesiredKube, node: str) -> NodeReadiness:
        argv = [self.binary, "kubectl"]
        if d.role != "server":
            argv += ["--kubeconfig", K3S.kubelet_kubeconfig]
        return await node_readiness(self.runner, [*argv, "get", "node", node, "-o", "json"])

    async def join_tokens(self, d: DesiredKube) -> JoinTokens | None:
        if d.role != "server":
            return None
        try:
            server = self.paths.under(K3S_SERVER_TOKEN).read_text().strip()
            agent = self.paths.under(K3S_AGENT_TOKEN).read_text().strip()
        except FileNotFoundError:
            return None
        return JoinTokens(server=SecretStr(server), agent=SecretStr(agent)) if server else None

    def gpu_configured(self) -> bool:
        """k3s found the NVIDIA runtime at its last start (it writes it into containerd's config)."""
        try:
            return "nvidia" in self.paths.under(K3S_CONTAINERD_CONFIG).read_text()
        except FileNotFoundError:
            return False

    def units(self) -> list[str]:
        return self.killall.units()

    async def stop(self) -> None:
        """What k3s-killall.sh does (stopping the unit alone leaves pods running): agent.runtime.killall."""
        await self.killall.run()

    async def uninstall(self) -> None:
        """As k3s-uninstall.sh: killall, drop our units and env files; stop there if another k3s*
        unit remains; else remove config, data and binary. /etc/rancher/node is kept. A mount left
        below a directory to remove (one killall could not unmount, or one killall does not touch)
        raises RuntimeRemoveError naming it, before anything is deleted."""
        await self.stop()
        ours = [u for u in (k3s_unit_name("server"), k3s_unit_name("agent")) if u in self.units()]
        others = [u for u in self.units() if u not in ours]
        if not others:
            self.mounts.refuse_if_mounted(K3S_REMOVES)
        for unit in ours:
            await self.systemd.disable(unit)
            for suffix in (".service", ".service.env"):
                self.paths.under(f"{SYSTEMD}/{unit}{suffix}").unlink(missing_ok=True)
        await self.systemd.daemon_reload()
        if others:
            log.info("k3s uninstall: %s remain; keeping the k3s binary and data", ", ".join(others))
            return
        for directory in K3S_REMOVES:
            shutil.rmtree(self.paths.under(directory), ignore_errors=True)
        self.paths.under(K3S.binary).unlink(missing_ok=True)
