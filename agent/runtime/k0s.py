"""k0s: `k0s install` writes its own unit (Type=simple, start returns at once), so we poll."""

from __future__ import annotations

import json
import logging
import shutil

from pydantic import SecretStr

from agent.errors import CommandFailed, CommandTimeout, ExecError, RuntimeRemoveError
from agent.fsio import atomic_write_json
from agent.model.desired import DesiredKube
from agent.model.fleet import JoinTokens
from agent.paths import Paths
from agent.runtime.base import Activation, NodeReadiness, Outcome
from agent.runtime.kubectl import node_readiness
from agent.runtime.layout import K0S, K0S_NVIDIA, K0S_REMOVES, K0S_TOKEN, SYSTEMD
from agent.runtime.mounts import Mounts
from agent.runtime.render import Facts, Rendered, render_k0s
from agent.runtime.systemd import Systemd
from agent.sysexec import Runner

CMD_TIMEOUT = 120.0
NOT_RUNNING = ("already stopped", "has not been installed as a service")  # `k0s stop`: nothing to stop

log = logging.getLogger(__name__)


class K0s:
    distribution = "k0s"

    def __init__(self, paths: Paths, runner: Runner) -> None:
        self.paths = paths
        self.runner = runner
        self.systemd = Systemd(runner)
        self.mounts = Mounts(paths)

    @property
    def binary(self) -> str:
        return str(self.paths.under(K0S.binary))

    def render(self, d: DesiredKube, facts: Facts) -> Rendered:
        return render_k0s(d, facts)

    async def _k0s(self, *args: str, timeout: float = CMD_TIMEOUT, check: bool = True) -> str:
        result = await self.runner.run([self.binary, *args], timeout=timeout, check=check)
        return result.stdout

    async def activate(self, d: DesiredKube, r: Rendered, *, apply: bool, unit_changed: bool) -> Activation:
        unit_file = self.paths.under(f"{SYSTEMD}/{r.unit}.service")
        state = await self.systemd.show(r.unit)
        install = [self.binary, *r.install_argv[1:]]
        outcome: Outcome
        try:
            if not unit_file.exists():
                await self.runner.run(install, timeout=CMD_TIMEOUT)
                outcome = "started"
            elif apply:
                if state.starting:
                    await self._k0s("stop")  # config changes need stop, then start
                await self.runner.run([*install, "--force"], timeout=CMD_TIMEOUT)
                outcome = "restarted"
            elif state.starting:
                return Activation("unchanged")
            else:
                outcome = "started"
            if not (await self.systemd.show(r.unit)).starting:
                await self._k0s("start", timeout=d.start_timeout)
        except CommandTimeout:
            return Activation("timeout", f"k0s did not start within {d.start_timeout:g}s")
        except CommandFailed as exc:
            return Activation("failed", exc.stderr_tail or str(exc))
        return Activation(outcome)

    async def healthy(self, d: DesiredKube, unit: str) -> tuple[bool, str]:
        """`k0s status -o json` answers over the status socket only when the process is up."""
        try:
            doc = json.loads(await self._k0s("status", "-o", "json", timeout=20.0))
        except ExecError as exc:
            return False, str(exc)
        except ValueError:
            return False, "k0s status printed no JSON"
        conn = doc.get("WorkerToAPIConnectionStatus") or {}
        if doc.get("Workloads") and conn.get("Success") is False and conn.get("Message"):
            return False, f"worker cannot reach the API: {conn['Message']}"
        return True, ""

    async def node_ready(self, d: DesiredKube, node: str) -> NodeReadiness:
        argv = [self.binary, "kubectl"]
        if d.role != "server":
            argv += ["--kubeconfig", K0S.kubelet_kubeconfig]
        return await node_readiness(self.runner, [*argv, "get", "node", node, "-o", "json"])

    async def join_tokens(self, d: DesiredKube) -> JoinTokens | None:
        """Created once with `k0s token create` (they never expire) and kept 0600."""
        if d.role != "server" or d.single:
            return None
        path = self.paths.state_dir / "runtime" / "k0s-join-tokens.json"
        try:
            doc = json.loads(path.read_text())
            return JoinTokens(server=SecretStr(doc["controller"]), agent=SecretStr(doc["worker"]))
        except (FileNotFoundError, ValueError, KeyError):
            pass
        try:
            controller = (await self._k0s("token", "create", "--role=controller")).strip()
            worker = (await self._k0s("token", "create", "--role=worker")).strip()
        except ExecError:
            return None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_json(path, {"controller": controller, "worker": worker}, mode=0o600)
        return JoinTokens(server=SecretStr(controller), agent=SecretStr(worker))

    def gpu_configured(self) -> bool:
        return self.paths.under(K0S_NVIDIA).is_file()

    async def stop(self) -> None:
        """`k0s stop` (contract B3). "already stopped" and "has not been installed as a service"
        mean nothing runs; any other refusal (not root, ...) raises RuntimeRemoveError."""
        if not self.paths.under(K0S.binary).exists():
            return
        try:
            await self._k0s("stop")
        except CommandFailed as exc:
            if not any(s in exc.stderr for s in NOT_RUNNING):
                raise RuntimeRemoveError(f"k0s stop failed: {exc.stderr_tail or exc}") from exc

    async def uninstall(self) -> None:
        """`k0s stop`, then `k0s reset` (contract B5: it needs k0s stopped, removes the unit, the
        containers, the mounts and the data dir, and keeps the binary), then our /etc/k0s files.
        A refused reset, or a mount reset left under its directories, raises RuntimeRemoveError
        and our files stay, so the uninstall can be run again."""
        await self.stop()
        if self.paths.under(K0S.binary).exists():
            try:
                await self._k0s("reset", timeout=600.0)
            except CommandFailed as exc:
                raise RuntimeRemoveError(
                    f"k0s reset failed: {exc.stderr_tail or exc}; /etc/k0s and the agent's k0s state are kept"
                ) from exc
            log.warning("k0s reset done; k0s recommends a reboot to finish the cleanup")
        left = [p for d in K0S_REMOVES for p in self.mounts.below(d)]
        if left:
            raise RuntimeRemoveError(
                f"k0s reset left {left[0]} mounted; unmount it, then uninstall again "
                "(/etc/k0s and the agent's k0s state are kept)"
            )
        for path in (K0S.config, K0S_TOKEN, K0S_NVIDIA):
            self.paths.under(path).unlink(missing_ok=True)
        shutil.rmtree(self.paths.state_dir / "runtime", ignore_errors=True)
