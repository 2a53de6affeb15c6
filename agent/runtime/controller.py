"""RuntimeController: install, configure, start, join and check k3s or k0s.

Reads: ctx.desired (the planner's decision: distribution, role, join wiring,
node name, labels, taints, GPU runtime, node addresses, local storage paths),
condition StoragePrepared (the storage controller's first pass is in) and its
own state section "runtime". Writes: the k3s/k0s files and units, the state
section "runtime", conditions Installed/Configured/Running/NodeReady/NodeAddress,
the "kubernetes" and "network" status sections, the agent's own labels on its
Node (agent.runtime.nodelabels, after registration), and (on servers)
ctx.join_tokens. While the chosen NIC has no address yet nothing is configured
or started (NodeAddressPending, with a deadline): never a silent fall back to
the default-route interface. Each step is idempotent and what was last
applied is kept in state, so a SIGKILL at any step converges on the next start
and a second pass writes and restarts nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from pathlib import PurePosixPath

from agent.context import AgentContext
from agent.errors import RuntimeInstallError, UpgradeRefused
from agent.fsio import atomic_write, remove_stale_temps
from agent.model.conditions import ConditionStatus
from agent.model.desired import Desired, DesiredKube
from agent.model.network import NetworkPending
from agent.model.state import RuntimeState
from agent.network.condition import address_condition
from agent.network.confirm import confirm
from agent.network.status import network_status
from agent.runtime.base import Activation, NodeReadiness, Runtime
from agent.runtime.diagnose import diagnose, mask
from agent.runtime.installer import Installed, Installer
from agent.runtime.k0s import K0s
from agent.runtime.k3s import K3s
from agent.runtime.layout import LAYOUTS, SYSTEMD
from agent.runtime.nodelabels import NodeLabeler, kubectl_argv, sync_nvidia_runtimeclass
from agent.runtime.render import REGISTRATION_ONLY, Facts, Rendered, unit_name
from agent.runtime.report import CONDITIONS, KubeStatus
from agent.runtime.systemd import Systemd, UnitState
from agent.watch import any_newer

log = logging.getLogger("agent.runtime")

SECTION = "runtime"


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
        for directory in sorted(
            {str(PurePosixPath(d.binary).parent) for d in LAYOUTS.values()} | {d.images for d in LAYOUTS.values()}
        ):
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
        """Until the desired state moves, or the readiness poll is due."""
        await any_newer((self.ctx.desired,), self._poll_delay())

    # --- one pass --------------------------------------------------------------------------

    async def reconcile(self) -> None:
        desired = self._plan()
        if desired is None:
            return
        rt = self.runtimes[desired.distribution]
        await self._retire_other(desired)
        try:
            installed = await self.installer.ensure(desired)
        except (RuntimeInstallError, UpgradeRefused) as exc:
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
        # installing can take a while (binary, images): act on the newest plan, e.g. the hardware
        # labels of a first scan that finished meanwhile, so the node does not restart to get them
        newest = self.ctx.desired.value
        if newest.kube is not None and not newest.refused and newest.kube.distribution == desired.distribution:
            desired = newest.kube
        if self._waiting(newest, desired):
            self._publish(desired, installed, await self.systemd.show(unit_name(desired)), None)
            return
        gpu = desired.gpu.binary if desired.gpu.nvidia else ""
        facts = Facts(node_name=desired.node_name, nvidia_runtime=gpu)
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
        planned = self.ctx.desired.value
        if planned.refused:
            self._cond("Configured", "False", planned.refused_reason or "InvalidConfig", planned.refused)
            return None
        desired = planned.kube
        if desired is None:
            for ctype in CONDITIONS:
                self.ctx.board.set_condition(
                    ctype,
                    "Unknown",
                    "NotRequested",
                    "no Kubernetes distribution configured or assigned",
                    severity="info",
                )
            self.ctx.board.set_section(KubeStatus())
        return desired

    def _waiting(self, planned: Desired, desired: DesiredKube) -> bool:
        """Publish the address choice; True while configuring must wait (address, first storage pass)."""
        c = address_condition(planned.network, datetime.now(UTC))
        self.ctx.board.set_condition(c.type, c.status, c.reason, c.message, severity=c.severity)
        self.ctx.board.set_section(network_status(planned.network))
        if isinstance(planned.network, NetworkPending):
            self._cond("Configured", "False", "NodeAddressPending", c.message)
            return True
        storage = self.ctx.board.condition("StoragePrepared")
        if desired.local_storage_paths and storage is None:
            self._cond("Configured", "False", "StoragePending", "waiting for the first storage pass")
            return True
        return False

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
                await self._node_checks(desired, node)
            self._cond(
                "NodeReady", node.status, node.reason, self._late(desired, ready, node.message or facts.node_name)
            )
        else:
            ready_reason = why.reason if why else "NotRunning"
            self._cond(
                "NodeReady", "False", ready_reason, self._late(desired, False, f"{rendered.unit} is not running")
            )
        if ok and desired.role == "server":
            if sync_nvidia_runtimeclass(self.ctx.paths, desired):  # k0s only; k3s creates its own
                log.info("nvidia RuntimeClass %s", "written" if desired.gpu.nvidia else "removed")
            tokens = await rt.join_tokens(desired)
            if tokens is not None:
                self.ctx.join_tokens.set(tokens)
        self._publish(desired, installed, state, facts, ready=ready, ready_reason=ready_reason, unit=rendered.unit)

    async def _node_checks(self, desired: DesiredKube, node: NodeReadiness) -> None:
        """On the registered Node: the chosen addresses show (k3s honours node-ip only as it says),
        and the agent's own labels are the planner's (a hotplug changes them after registration)."""
        if desired.network is not None and node.raw:
            shown, message = confirm(desired.network, node.raw)
            if not shown:
                self.ctx.board.set_condition("NodeAddress", "False", "NotOnNode", message)
        labeler = self._labeler(desired)
        labeler.adopt(desired.node_labels)  # the NFD labels it registered with (or sets now) are its own
        synced = await labeler.reconcile(desired.node_labels, node.raw)
        if not synced.ok:
            log.warning("node labels: %s", synced.message)
        elif synced.set or synced.removed:
            log.info("node labels: set %s, removed %s", sorted(synced.set), list(synced.removed))

    def _labeler(self, desired: DesiredKube) -> NodeLabeler:
        argv = kubectl_argv(desired.distribution, self.runtimes[desired.distribution].binary)
        return NodeLabeler(self.ctx.runner, argv, desired.node_name, self.ctx.paths.state_dir / "node-labels.json")

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
            KubeStatus(
                summary=summary,
                distribution=desired.distribution,
                origin=desired.origin,
                cluster=desired.cluster,
                version=installed.version if installed else "",
                role=desired.role,
                server_url=desired.server_url or ("https://127.0.0.1:6443" if desired.role == "server" else ""),
                node_name=facts.node_name if facts else desired.node_name,
                node_name_source=desired.node_name_source,
                unit=unit,
                active_state=state.active if state else "",
                sub_state=state.sub if state else "",
                service_restarts=state.restarts if state else 0,
                ready=ready,
                ready_reason=ready_reason,
                gpu_runtime=facts.nvidia_runtime if facts else "",
                gpu_configured=gpu_configured,
                gpu_reason=desired.gpu.reason,
                node_labels=desired.node_labels,
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
