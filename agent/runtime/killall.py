"""What ``k3s-killall.sh`` does, done by the agent.

The agent never runs install.sh, so the script never exists on a box it installed,
and stopping a k3s unit (``KillMode=process``) leaves the pods running. This is the
script's work (contract A6), every program run through the subprocess seam:

1. ``systemctl stop`` every ``k3s*.service``;
2. ``kill -9`` the containerd-shim process trees (``ps``; shims run from
   ``/var/lib/rancher/k3s/data/<hash>/bin/containerd-shim*``);
3. ``umount`` everything under ``/run/k3s``, ``/var/lib/kubelet/pods``,
   ``/var/lib/kubelet/plugins`` and ``/run/netns/cni-*`` (deepest first, as listed
   by the mount table), removing each mount point once it is unmounted;
4. ``ip link delete`` the links enslaved to ``cni0``, then ``cni0``, ``flannel*``
   and ``kube-ipvs0``; strip ``KUBE-``, ``CNI-`` and flannel rules with
   ``iptables-save | ... | iptables-restore`` (and ip6tables) when those exist;
5. remove ``/var/lib/cni``. Cluster data is kept.

Like the script it carries on past a failed step; what failed is in the returned
notes. Step 4 touches the host's network, so it runs only for the real root (``/``)
unless the caller says the network namespace is the box's (``network=True``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import ExecError
from agent.paths import Paths
from agent.runtime.layout import K3S_DATA, SYSTEMD
from agent.runtime.mounts import Mounts, within
from agent.runtime.systemd import Systemd
from agent.sysexec import Runner

log = logging.getLogger(__name__)

DATA_BIN = f"{K3S_DATA}/data"
UNMOUNT_UNDER = ("/run/k3s", "/var/lib/kubelet/pods", "/var/lib/kubelet/plugins")
CNI_NETNS = "/run/netns/cni-"
CNI_STATE = "/var/lib/cni"
BRIDGE = "cni0"
_LINK = re.compile(r"^(cni0|flannel.*|kube-ipvs0)$")
_RULE = re.compile(r"KUBE-|CNI-|flannel", re.IGNORECASE)
TIMEOUT = 30.0


@dataclass
class KillallReport:
    stopped: list[str] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    rules_removed: int = 0
    notes: list[str] = field(default_factory=list)  # what could not be done, and why


def strip_rules(saved: str) -> tuple[str, int]:
    """iptables-save output without KUBE-/CNI-/flannel lines (chains and rules), and how many went."""
    kept = [line for line in saved.splitlines() if not _RULE.search(line)]
    return "".join(f"{line}\n" for line in kept), len(saved.splitlines()) - len(kept)


class Killall:
    def __init__(
        self, paths: Paths, runner: Runner, *, network: bool | None = None, mounts: Mounts | None = None
    ) -> None:
        self.paths = paths
        self.runner = runner
        self.systemd = Systemd(runner)
        self.network = paths.root == Path("/") if network is None else network
        self.mounts = mounts or Mounts(paths)

    def units(self) -> list[str]:
        d = self.paths.under(SYSTEMD)
        return sorted(p.name.removesuffix(".service") for p in d.glob("k3s*.service")) if d.is_dir() else []

    async def run(self) -> KillallReport:
        report = KillallReport()
        for unit in self.units():
            try:
                await self.systemd.stop(unit)
                report.stopped.append(unit)
            except ExecError as exc:
                report.notes.append(f"systemctl stop {unit}: {exc}")
        await self._kill_shims(report)
        await self._unmount(report)
        if self.network:
            await self._links(report)
            for save, restore in (("iptables-save", "iptables-restore"), ("ip6tables-save", "ip6tables-restore")):
                await self._rules(save, restore, report)
        self._remove(CNI_STATE, report)
        for note in report.notes:
            log.warning("k3s killall: %s", note)
        return report

    # -- processes -------------------------------------------------------------------
    async def _kill_shims(self, report: KillallReport) -> None:
        try:
            ps = await self.runner.run(["ps", "-e", "-o", "pid=,ppid=,args="], timeout=TIMEOUT)
        except ExecError as exc:
            report.notes.append(f"cannot list processes: {exc}")
            return
        shim = re.compile(re.escape(str(self.paths.under(DATA_BIN))) + r"/[^/\s]+/bin/containerd-shim")
        children: dict[int, list[int]] = {}
        shims: list[int] = []
        for line in ps.stdout.splitlines():
            parts = line.split(None, 2)
            if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
                continue
            pid, ppid = int(parts[0]), int(parts[1])
            children.setdefault(ppid, []).append(pid)
            if len(parts) == 3 and shim.search(parts[2]):
                shims.append(pid)
        tree: list[int] = []
        todo = list(shims)
        while todo:
            pid = todo.pop()
            if pid not in tree and pid > 1 and pid != os.getpid():
                tree.append(pid)
                todo += children.get(pid, [])
        if not tree:
            return
        result = await self.runner.run(["kill", "-9", *map(str, sorted(tree))], timeout=TIMEOUT, check=False)
        if result.returncode != 0:  # some may have exited meanwhile
            report.notes.append(f"kill -9: {result.stderr.strip()}")
        report.killed = sorted(tree)

    # -- mounts ----------------------------------------------------------------------
    def targets(self) -> list[str]:
        """The mount points killall unmounts, each list deepest first."""
        points = [p for d in UNMOUNT_UNDER for p in self.mounts.below(d)]
        netns = (p for p in self.mounts.points() if p.startswith(CNI_NETNS))
        return points + sorted(netns, key=lambda p: p.count("/"), reverse=True)

    async def _unmount(self, report: KillallReport) -> None:
        try:
            targets = self.targets()
        except OSError as exc:
            report.notes.append(f"cannot read the mount table: {exc}")
            return
        if targets and not self.runner.which("umount"):
            report.notes.append(f"no umount program: {', '.join(targets)} stay mounted")
            return
        for point in targets:
            result = await self.runner.run(["umount", "-f", str(self.paths.under(point))], timeout=TIMEOUT, check=False)
            if result.returncode != 0:
                report.notes.append(f"umount {point}: {result.stderr.strip() or f'exit {result.returncode}'}")
                continue
            report.unmounted.append(point)
            self._remove(point, report)

    def _remove(self, box_path: str, report: KillallReport) -> None:
        """rm -rf, but never through a mount."""
        try:
            left = [p for p in self.mounts.points() if within(p, box_path)]
        except OSError as exc:
            report.notes.append(f"not removing {box_path}: cannot read the mount table: {exc}")
            return
        if left:
            report.notes.append(f"not removing {box_path}: {left[0]} is mounted")
            return
        path = self.paths.under(box_path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    # -- network ---------------------------------------------------------------------
    async def _links(self, report: KillallReport) -> None:
        try:
            shown = await self.runner.run(["ip", "-j", "link", "show"], timeout=TIMEOUT)
            links = json.loads(shown.stdout or "[]")
        except (ExecError, ValueError) as exc:
            report.notes.append(f"cannot list network links: {exc}")
            return
        names = [str(link.get("ifname", "")) for link in links if isinstance(link, dict)]
        enslaved = [str(x.get("ifname", "")) for x in links if isinstance(x, dict) and x.get("master") == BRIDGE]
        for name in [*enslaved, *(n for n in names if _LINK.match(n) and n not in enslaved)]:
            result = await self.runner.run(["ip", "link", "delete", name], timeout=TIMEOUT, check=False)
            if result.returncode == 0:
                report.links.append(name)
            else:
                report.notes.append(f"ip link delete {name}: {result.stderr.strip()}")

    async def _rules(self, save: str, restore: str, report: KillallReport) -> None:
        if not (self.runner.which(save) and self.runner.which(restore)):
            return
        try:
            saved = (await self.runner.run([save], timeout=TIMEOUT)).stdout
            kept, removed = strip_rules(saved)
            if removed:
                await self.runner.run([restore], timeout=TIMEOUT, stdin=kept.encode())
        except ExecError as exc:
            report.notes.append(f"{save} | {restore}: {exc}")
            return
        report.rules_removed += removed
