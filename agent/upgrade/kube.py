"""Upgrade k3s or k0s from a staged bundle: skew check, binary swap, node-Ready gate, restore.

The bundle carries the binary under its own name (``k3s`` or ``k0s``). Before
anything changes: this box must run that distribution, the installed binary's
version and the cluster's server versions are read, and the skew rules
(agent.upgrade.skew) must allow the step. The switch keeps a copy of the
running binary in ``versions/<kind>/<old version>/``, renames the new binary
over the old one (temp file + fsync + rename, after probing that it runs and
is the version the manifest says), and restarts the service: k3s with
``systemctl restart --no-block`` (its Type=notify start can block forever),
k0s with ``k0s stop`` / ``k0s start`` (contract B5). The health gate is this
node ``Ready`` with the new kubelet version; otherwise the old binary goes
back, the service restarts, and the node must be Ready on the old version
again (else the upgrade is ``failed`` and says so).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from agent.context import AgentContext
from agent.errors import (
    AgentError,
    AlreadyCurrent,
    AlreadyInstalled,
    ExecError,
    RuntimeInstallError,
    SkewError,
    UpgradeRefused,
)
from agent.fsio import atomic_symlink, copy_atomic
from agent.paths import Paths
from agent.runtime.layout import LAYOUTS
from agent.runtime.render import k0s_unit_name, k3s_unit_name
from agent.runtime.version import parse_version
from agent.upgrade.manifest import Manifest
from agent.upgrade.skew import KubeVersion, check_upgrade

# kubeconfigs to read nodes with: a server's admin file, else the kubelet's own (RBAC system:node may list nodes)
SERVER_ROLES = ("control-plane", "master", "etcd")
PROBE_TIMEOUT = 30.0
POLL = 1.0
CURRENT_LINK = "current"


def committed_binary(paths: Paths, kind: str) -> Path | None:
    """The k3s/k0s binary the last committed upgrade installed (versions/<kind>/current/<kind>), if any.

    The runtime's installer should prefer it over an older air-gap binary, so it
    does not undo an upgrade."""
    candidate = paths.versions_dir / kind / CURRENT_LINK / kind
    return candidate if candidate.is_file() else None


def same_kube(kubelet: str, version: str) -> bool:
    """kubelet v1.36.3+k0s matches k0s v1.36.3+k0s.1; k3s kubelets carry the full k3s version."""
    try:
        return KubeVersion.parse(kubelet).kube == KubeVersion.parse(version).kube
    except ValueError:
        return False


def node_ready(node: dict[str, Any]) -> tuple[bool, str]:
    conds = node.get("status", {}).get("conditions", [])
    ready = next((c for c in conds if c.get("type") == "Ready"), None)
    kubelet = str(node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""))
    if ready is None:
        return False, f"no Ready condition (kubelet {kubelet})"
    return ready.get("status") == "True", f"Ready={ready.get('status')} ({ready.get('reason', '')}) kubelet {kubelet}"


class KubeInstaller:
    def __init__(self, ctx: AgentContext, kind: str) -> None:
        self.ctx = ctx
        self.kind = kind
        self.binary = ctx.paths.under(LAYOUTS[kind].binary)
        self._previous: str = ""
        self._placed = False

    # -- facts ------------------------------------------------------------------------
    # every fact about the node comes from the planner (ctx.desired), as the runtime's do
    def distribution(self) -> str:
        kube = self.ctx.desired.value.kube
        return kube.distribution if kube is not None else ""

    def role(self) -> str:
        kube = self.ctx.desired.value.kube
        return kube.role if kube is not None else ""

    def unit(self) -> str:
        return k3s_unit_name(self.role()) if self.kind == "k3s" else k0s_unit_name(self.role())

    def node_name(self) -> str:
        """This box's node, named as the runtime named it (the planner decides it for both)."""
        kube = self.ctx.desired.value.kube
        return kube.node_name if kube is not None else ""

    async def binary_version(self, binary: Path) -> str:
        argv = [str(binary), "--version"] if self.kind == "k3s" else [str(binary), "version"]
        try:
            out = await self.ctx.runner.run(argv, timeout=PROBE_TIMEOUT)
        except ExecError as exc:
            raise RuntimeInstallError(f"{binary} does not run: {exc}") from exc
        return parse_version(self.kind, out.stdout)

    async def kubectl_json(self, *args: str) -> dict[str, Any]:
        errors = []
        for box_path in [LAYOUTS[self.kind].kubeconfig(self.role())]:
            cfg = self.ctx.paths.under(box_path)
            if not cfg.exists():
                errors.append(f"{cfg} missing")
                continue
            # programs get box paths (under --root the stand-ins map them, as the runtime's do)
            argv = [str(self.binary), "kubectl", "--kubeconfig", box_path, *args, "-o", "json"]
            try:
                out = await self.ctx.runner.run(argv, timeout=30)
                doc = json.loads(out.stdout)
                if isinstance(doc, dict):
                    return doc
                errors.append("kubectl printed no object")
            except (ExecError, ValueError) as exc:
                errors.append(str(exc))
        raise RuntimeInstallError(f"cannot read nodes: {'; '.join(errors)}")

    async def server_versions(self) -> list[KubeVersion]:
        doc = await self.kubectl_json("get", "nodes")
        me = self.node_name()
        out = []
        for item in doc.get("items", []):
            labels = item.get("metadata", {}).get("labels", {})
            name = item.get("metadata", {}).get("name", "")
            if name == me or not any(f"node-role.kubernetes.io/{r}" in labels for r in SERVER_ROLES):
                continue
            kubelet = item.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")
            try:
                out.append(KubeVersion.parse(kubelet))
            except ValueError:
                continue
        return out

    def _payload(self, staged: Path) -> Path:
        return staged / self.kind

    # -- the KindInstaller protocol ------------------------------------------------------
    async def preflight(self, manifest: Manifest, force: bool) -> str:
        self._placed = False
        dist = self.distribution()
        if dist != self.kind:
            raise UpgradeRefused(f"this box runs {dist or 'no Kubernetes'}, not {self.kind}")
        if manifest.entry(self.kind) is None:
            raise UpgradeRefused(f"{self.kind} bundle {manifest.version} has no file named {self.kind!r}")
        if not self.binary.exists():
            raise UpgradeRefused(f"{self.kind} is not installed at {self.binary}; the runtime installs it first")
        current_text = await self.binary_version(self.binary)
        try:
            current, new = KubeVersion.parse(current_text), KubeVersion.parse(manifest.version)
            servers: list[KubeVersion] = []
            try:
                servers = await self.server_versions()
            except RuntimeInstallError:
                if self.role() == "agent":
                    servers = []  # check_upgrade refuses with a clear reason
            check_upgrade(current, new, role=self.role(), servers=servers)
        except AlreadyInstalled as exc:
            raise AlreadyCurrent(f"{self.kind} {manifest.version}: {exc}") from exc
        except (SkewError, ValueError) as exc:
            raise UpgradeRefused(f"{self.kind} {current_text} -> {manifest.version} refused: {exc}") from exc
        self._previous = current_text
        return current_text

    async def install(self, staged: Path, manifest: Manifest) -> None:
        new = self._payload(staged)
        got = await self.binary_version(new)
        if got != manifest.version:
            raise RuntimeInstallError(f"the bundle's {self.kind} reports {got}, its manifest says {manifest.version}")
        backup = self.ctx.paths.versions_dir / self.kind / self._previous / self.kind
        if not backup.exists():
            await asyncio.to_thread(copy_atomic, self.binary, backup)
        await self._swap(new)

    async def _swap(self, new: Path) -> None:
        if self.kind == "k0s":
            await self.ctx.runner.run([str(self.binary), "stop"], timeout=120, check=False)
        await asyncio.to_thread(copy_atomic, new, self.binary)
        self._placed = True
        if self.kind == "k0s":
            await self.ctx.runner.run([str(self.binary), "start"], timeout=120)
        else:
            await self.ctx.runner.run(["systemctl", "restart", "--no-block", self.unit()], timeout=60)

    async def healthy(self, manifest: Manifest, timeout: float) -> None:
        await self._wait_ready(manifest.version, timeout)
        # record what is now installed, for the runtime to keep (see committed_binary)
        await asyncio.to_thread(
            atomic_symlink, manifest.version, self.ctx.paths.versions_dir / self.kind / CURRENT_LINK
        )

    async def _wait_ready(self, version: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        last = "not checked yet"
        name = self.node_name()
        while time.monotonic() < end:
            try:
                node = await self.kubectl_json("get", "node", name)
                ok, last = node_ready(node)
                kubelet = str(node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""))
                if ok and same_kube(kubelet, version):
                    return
            except AgentError as exc:
                last = str(exc)
            await asyncio.sleep(POLL)
        raise RuntimeInstallError(f"node {name} was not Ready on {version} within {timeout:g}s (last: {last})")

    def adopt(self, previous: str) -> None:
        self._previous, self._placed = previous, True

    async def restore(self, manifest: Manifest) -> None:
        if not self._placed:
            return
        backup = self.ctx.paths.versions_dir / self.kind / self._previous / self.kind
        if not backup.exists():
            raise RuntimeInstallError(f"no copy of {self.kind} {self._previous} at {backup}")
        await self._swap(backup)
        self._placed = False
        await self._wait_ready(self._previous, self.ctx.desired.value.upgrade.health_deadline)
