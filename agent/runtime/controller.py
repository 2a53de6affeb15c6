"""RuntimeController: plan, install, configure, start, join and check k3s or k0s.

Inputs: ctx.config, ctx.assignment, ctx.inventory (hardware labels). The
reconcile is the only place with side effects; each step is idempotent and
what was last applied is kept in the state section "runtime", so a SIGKILL at
any step converges on the next start and a second pass writes and restarts
nothing. Outputs: conditions Installed/Configured/Running/NodeReady, the
"kubernetes" status section, and (on servers) ctx.join_tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping

from agent.context import AgentContext
from agent.errors import ConfigError, RuntimeInstallError
from agent.fsio import atomic_write, remove_stale_temps
from agent.inventory.labels import node_labels
from agent.model.conditions import ConditionStatus
from agent.model.desired import DesiredKube
from agent.model.state import RuntimeState
from agent.nodename import node_name
from agent.planner import plan
from agent.runtime.base import Activation, Runtime
from agent.runtime.diagnose import diagnose, mask
from agent.runtime.installer import IMAGES_DIR, Installed, Installer, UpgradeRefused
from agent.runtime.k0s import K0s
from agent.runtime.k3s import K3s
from agent.runtime.render import REGISTRATION_ONLY, SYSTEMD, Facts, Rendered
from agent.runtime.report import CONDITIONS, KubeStatus
from agent.runtime.systemd import Systemd, UnitState

log = logging.getLogger("agent.runtime")

SECTION = "runtime"
NVIDIA_TOOLKIT = "/usr/local/nvidia/toolkit/nvidia-container-runtime"


def token_forms(desired: DesiredKube) -> list[str]:
    """The join token as given and its bare password (k3s logs may show either)."""
    token = desired.token.get_secret_value()
    return [token, token.rpartition(":")[2]]


FAST_POLL = 1.0


class RuntimeController:
    name = "runtime"

    def __init__(self, ctx: AgentContext, *, poll_interval: float = 10.0) -> None:
        self.ctx = ctx
        self.poll_interval = poll_interval
        self.installer = Installer(ctx.paths, ctx.runner)
        self.systemd = Systemd(ctx.runner)
        self._since = time.monotonic()  # last activation (or this daemon's start)
        self.runtimes: dict[str, Runtime] = {
            "k3s": K3s(ctx.paths, ctx.runner),
            "k0s": K0s(ctx.paths, ctx.runner),
        }

    def recover(self) -> None:
        """After a crash: drop temp files a killed install left (the old files are intact)."""
        for directory in ("/usr/local/bin", *IMAGES_DIR.values()):
            remove_stale_temps(self.ctx.paths.under(directory))

    async def run(self) -> None:
        self.recover()
        while True:
            await self.reconcile()
            await self._wait_for_change()

    def _poll_delay(self) -> float:
        """Poll every second while a requested node is not Ready yet (a box should report Ready within
        a second of its node getting there), at the regular interval once it is or nothing is asked."""
        ready = self.ctx.board.condition("NodeReady")
        waiting = ready is not None and ready.status != "True" and ready.reason != "NotRequested"
        return min(self.poll_interval, FAST_POLL) if waiting else self.poll_interval

    async def _wait_for_change(self) -> None:
        """Until config, assignment or inventory move, or the readiness poll is due."""
        watches = (self.ctx.config, self.ctx.assignment, self.ctx.inventory)
        tasks = [asyncio.ensure_future(w.wait_newer(w.version)) for w in watches]
        try:
            await asyncio.wait(tasks, timeout=self._poll_delay(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            # gather, not `suppress(CancelledError): await t`: that would also swallow a cancellation of
            # this controller arriving meanwhile, and the controller would go on forever (seen under load)
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- one pass --------------------------------------------------------------------------

    async def reconcile(self) -> None:
        desired = self._plan()
        if desired is None:
            return
        rt = self.runtimes[desired.distribution]
        await self._retire_other(desired)
        try:
            installed = await self.installer.ensure(desired)
        except RuntimeInstallError as exc:
            reason = "UpgradeRefused" if isinstance(exc, UpgradeRefused) else "InstallFailed"
            self._cond("Installed", "False", reason, str(exc))
            if not self.ctx.store.load_section(SECTION, RuntimeState).unit:  # else the old binary keeps running
                for ctype in ("Configured", "Running", "NodeReady"):
                    self._cond(ctype, "False", "NotInstalled", f"{desired.distribution} is not installed yet")
            self._publish(desired, None, None, None)
            return
        self._cond(
            "Installed",
            "True",
            "Installed",
            f"{desired.distribution} {installed.version} from {installed.source}",
        )
        try:
            name = node_name(self.ctx.paths, desired.node_name)
        except ConfigError as exc:
            self._cond("Configured", "False", "InvalidNodeName", str(exc))
            return
        facts = Facts(node_name=name, nvidia_runtime=self._nvidia_runtime())
        rendered = rt.render(desired, facts)
        written = await self._write(rendered)
        unit_changed = any(p.startswith(SYSTEMD) for p in written)
        self._cond("Configured", "True", "Configured", f"{len(rendered.files)} files rendered for {rendered.unit}")
        progress = self.ctx.store.load_section(SECTION, RuntimeState)
        key = self._applied_key(rendered, installed, facts)
        # labels and taints count only until the node first registers (k3s and k0s ignore them after)
        bare = desired.model_copy(update={"node_labels": {}, "node_taints": ()})
        core = self._applied_key(rt.render(bare, facts), installed, facts)
        registered = progress.registered
        put_back = [p for p in written if not (registered and p in REGISTRATION_ONLY)]
        apply = progress.applied_core != core or bool(put_back)
        apply |= not registered and progress.applied != key
        if apply:
            self.ctx.store.save_section(SECTION, progress.model_copy(update={"step": "activating", "pending": key}))
            log.info("applying %s configuration (%s)", desired.distribution, rendered.unit)
        activation = await rt.activate(desired, rendered, apply=apply, unit_changed=unit_changed)
        if activation.outcome != "unchanged":
            self._since = time.monotonic()
            log.info(
                "%s: %s %s",
                rendered.unit,
                activation.outcome,
                mask(activation.detail, [*token_forms(desired), *rendered.secrets]),
            )
        if apply:
            self.ctx.store.save_section(
                SECTION,
                RuntimeState(
                    applied=key,
                    applied_core=core,
                    registered=registered,
                    step="applied",
                    distribution=desired.distribution,
                    unit=rendered.unit,
                    binary_sha256=installed.sha256,
                    version=installed.version,
                ),
            )
        await self._observe(desired, rt, rendered, installed, facts, activation)

    def _plan(self) -> DesiredKube | None:
        inv = self.ctx.inventory.value
        hardware: Mapping[str, str] = {} if inv is None else node_labels(inv)
        try:
            desired = plan(self.ctx.config.value, self.ctx.assignment.value, hardware)
        except ConfigError as exc:
            self._cond("Configured", "False", "InvalidConfig", str(exc))
            return None
        if desired is None:
            for ctype in CONDITIONS:
                self.ctx.board.set_condition(
                    ctype,
                    "Unknown",
                    "NotRequested",
                    "no Kubernetes distribution configured or assigned",
                    severity="info",
                )
            self.ctx.board.set_section("kubernetes", KubeStatus())
        return desired

    async def _retire_other(self, desired: DesiredKube) -> None:
        """Switching distribution: stop and uninstall the old one by its own rules first."""
        old = self.ctx.store.load_section(SECTION, RuntimeState).distribution
        if old and old != desired.distribution and old in self.runtimes:
            log.info("switching from %s to %s: uninstalling %s", old, desired.distribution, old)
            await self.runtimes[old].uninstall()
            self.ctx.store.save_section(SECTION, RuntimeState())

    async def _write(self, rendered: Rendered) -> list[str]:
        """Write every rendered file (no-op when unchanged); stop and drop the other role's unit.
        Returns the box paths written or removed."""
        written: list[str] = []
        for path in rendered.remove:
            target = self.ctx.paths.under(path)
            if not target.exists():
                continue
            if path.endswith(".service"):
                other = target.name.removesuffix(".service")
                await self.systemd.stop(other)
                await self.systemd.disable(other)
            target.unlink()
            written.append(path)
        for f in rendered.files:
            changed = atomic_write(self.ctx.paths.under(f.path), f.data, mode=f.mode)
            if changed:
                log.info("wrote %s", f.path)  # never the content: some hold tokens
                written.append(f.path)
        return written

    @staticmethod
    def _applied_key(rendered: Rendered, installed: Installed, facts: Facts) -> str:
        raw = f"{rendered.digest}\0{installed.sha256}\0{facts.nvidia_runtime}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def _nvidia_runtime(self) -> str:
        """Box path of nvidia-container-runtime when the toolkit is installed, else ""."""
        found = self.ctx.runner.which("nvidia-container-runtime")
        toolkit = self.ctx.paths.under(NVIDIA_TOOLKIT)
        if not found and toolkit.is_file():
            found = str(toolkit)
        if not found:
            return ""
        root = str(self.ctx.paths.root).rstrip("/")
        return found[len(root) :] if root and found.startswith(root + "/") else found

    # --- observation ----------------------------------------------------------------------

    async def _observe(
        self,
        desired: DesiredKube,
        rt: Runtime,
        rendered: Rendered,
        installed: Installed,
        facts: Facts,
        activation: Activation,
    ) -> None:
        state = await self.systemd.show(rendered.unit)
        secrets = [*token_forms(desired), *rendered.secrets]
        why = None
        ok, problem = await rt.healthy(desired, rendered.unit) if state.running else (False, "")
        if ok:
            self._cond("Running", "True", "Running", f"{rendered.unit} is active (pid {state.main_pid})")
        else:
            why = diagnose(await self.systemd.journal(rendered.unit), secrets)
            if why:
                reason, detail = why.reason, why.message
            elif activation.outcome in ("failed", "timeout"):
                reason = "StartFailed" if activation.outcome == "failed" else "StartTimeout"
                detail = activation.detail
            elif state.running:
                reason, detail = "NotResponding", problem
            else:
                reason = "Starting" if state.starting else "NotRunning"
                detail = "no error in its log yet"
            detail = mask(detail, secrets)  # stderr tails can echo the token (k3s prints its flags)
            self._cond("Running", "False", reason, f"{rendered.unit} is {state.active} ({state.sub}): {detail}")
        ready_reason = ""
        ready = False
        if ok:
            node = await rt.node_ready(desired, facts.node_name)
            ready = node.status == "True"
            ready_reason = node.reason
            if node.kubelet_version:  # a Node object was read back
                self._mark_registered()
            self._cond(
                "NodeReady", node.status, node.reason, self._late(desired, ready, node.message or facts.node_name)
            )
        else:
            ready_reason = why.reason if why else "NotRunning"
            self._cond(
                "NodeReady", "False", ready_reason, self._late(desired, False, f"{rendered.unit} is not running")
            )
        if ok and desired.role == "server":
            tokens = await rt.join_tokens(desired)
            if tokens is not None:
                self.ctx.join_tokens.set(tokens)
        self._publish(desired, installed, state, facts, ready=ready, ready_reason=ready_reason, unit=rendered.unit)

    def _mark_registered(self) -> None:
        """The node object exists: from now on label/taint changes need no restart."""
        progress = self.ctx.store.load_section(SECTION, RuntimeState)
        if progress != RuntimeState() and not progress.registered:
            self.ctx.store.save_section(SECTION, progress.model_copy(update={"registered": True}))

    def _late(self, desired: DesiredKube, ready: bool, message: str) -> str:
        """Past ready_timeout, say so: nothing sits "in progress" forever without saying why."""
        waited = time.monotonic() - self._since
        if ready or waited <= desired.ready_timeout:
            return message
        return f"{message} (not Ready {waited:.0f}s after start, past ready_timeout {desired.ready_timeout:g}s)"

    def _publish(
        self,
        desired: DesiredKube,
        installed: Installed | None,
        state: UnitState | None,
        facts: Facts | None,
        *,
        ready: bool = False,
        ready_reason: str = "",
        unit: str = "",
    ) -> None:
        gpu_configured = False
        rt = self.runtimes[desired.distribution]
        if facts and facts.nvidia_runtime:
            gpu_configured = rt.gpu_configured()
        version = installed.version if installed else "(not installed)"
        node = facts.node_name if facts else desired.node_name
        summary = f"{desired.distribution} {version} {desired.role} node {node or '?'}: " + (
            "Ready" if ready else (ready_reason or "not running")
        )
        self.ctx.board.set_section(
            "kubernetes",
            KubeStatus(
                summary=summary,
                distribution=desired.distribution,
                origin=desired.origin,
                cluster=desired.cluster,
                version=installed.version if installed else "",
                role=desired.role,
                server_url=desired.server_url or ("https://127.0.0.1:6443" if desired.role == "server" else ""),
                node_name=facts.node_name if facts else desired.node_name,
                unit=unit,
                active_state=state.active if state else "",
                sub_state=state.sub if state else "",
                service_restarts=state.restarts if state else 0,
                ready=ready,
                ready_reason=ready_reason,
                gpu_runtime=facts.nvidia_runtime if facts else "",
                gpu_configured=gpu_configured,
                install_source=installed.source if installed else "",
                binary_sha256=installed.sha256 if installed else "",
            ),
        )

    def _cond(self, ctype: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.ctx.board.set_condition(ctype, status, reason, message)

    # --- operations the lead may expose -----------------------------------------------------

    async def stop(self) -> None:
        """Stop the runtime by its own rules (k3s-killall.sh / `k0s stop`)."""
        dist = self.ctx.store.load_section(SECTION, RuntimeState).distribution
        if dist in self.runtimes:
            await self.runtimes[dist].stop()

    async def uninstall(self) -> None:
        """Uninstall/reset by the distribution's rules; /etc/rancher/node is kept."""
        dist = self.ctx.store.load_section(SECTION, RuntimeState).distribution
        if dist in self.runtimes:
            await self.runtimes[dist].uninstall()
        self.ctx.store.save_section(SECTION, RuntimeState())
