"""The storage reconciler: prepares the namespaces the plan selected, only when provably blank.

Reads: :class:`StoragePlan` (from Desired), the devices themselves (probe), the
ledger. Writes: PVs/VGs (lvm) or filesystems + mount units (filesystem), the
ledger. Every command goes through the subprocess seam. Steps, in order, so a
SIGKILL anywhere leaves a blank device, one carrying the UUID the ledger holds
(finished on the next start), or a complete one:

- lvm: ledger(uuid) -> ``pvcreate --uuid`` -> ``vgcreate --addtag edge-agent`` (or ``vgextend``);
- filesystem: ledger(uuid) -> ``mkfs -U/-m uuid=`` -> label ``edge-agent`` -> unit -> ``systemctl enable --now``.

Nothing is ever forced: pvcreate gets no ``--yes`` and mkfs no ``-f`` except to redo
our own unfinished filesystem (its UUID is in the ledger).
"""

from __future__ import annotations

import json
import uuid as uuidlib
from pathlib import Path

from agent.errors import AgentError, CommandFailed, ExecError
from agent.fsio import atomic_write
from agent.model.storage import NamespaceDecision, NamespaceState, NamespaceStatus, StoragePlan, StorageStatus
from agent.paths import Paths
from agent.storage import report
from agent.storage.ledger import Entry, Ledger, new_lvm_uuid
from agent.storage.mountunit import unit_name, unit_text
from agent.storage.probe import probe
from agent.storage.select import volume_name
from agent.storage.verdict import LABEL, TAG, Verdict, classify
from agent.sysexec import Runner

ENV = {"LVM_SUPPRESS_FD_WARNINGS": "1"}


def _status(d: NamespaceDecision, state: NamespaceState, reason: str) -> NamespaceStatus:
    return NamespaceStatus(device=d.device, serial=d.serial, nsid=d.nsid, state=state, reason=reason)


class StorageReconciler:
    def __init__(self, paths: Paths, runner: Runner, *, sys_root: Path = Path("/sys"), proc: Path = Path("/proc")):
        self.paths = paths
        self.runner = runner
        self.sys_root = sys_root
        self.proc = proc
        self.ledger = Ledger(paths.state_dir / "storage.json")

    async def _run(self, plan: StoragePlan, *argv: str, check: bool = True) -> str:
        result = await self.runner.run(list(argv), timeout=plan.command_timeout, env=ENV, check=check)
        return result.stdout

    async def reconcile(self, plan: StoragePlan) -> StorageStatus:
        """Bring every selected namespace to prepared, or say why not; never raises for one namespace."""
        out = []
        for d in plan.namespaces:
            if d.action == "skip":
                out.append(_status(d, "skipped", d.reason))
                continue
            try:
                out.append(await self._one(plan, d))
            except (ExecError, OSError, ValueError, AgentError) as exc:
                out.append(_status(d, "failed", str(exc)))
        counts = {state: sum(ns.state == state for ns in out) for state in ("prepared", "skipped", "failed")}
        summary = f"{plan.mode}: " + (", ".join(f"{n} {state}" for state, n in counts.items() if n) or "no namespaces")
        return StorageStatus(mode=plan.mode, summary=summary, namespaces=tuple(out))

    async def verdict(self, plan: StoragePlan, d: NamespaceDecision) -> Verdict:
        """The probe's answer for one namespace, read-only."""
        found = await probe(self.runner, d.device, plan.command_timeout, self.sys_root, self.proc)
        entry = self.ledger.load().get(volume_name(d.serial, d.nsid))
        own = str(self.paths.under(d.mountpoint)) if d.mountpoint else ""
        return classify(d, plan, found, entry, own)

    async def _one(self, plan: StoragePlan, d: NamespaceDecision) -> NamespaceStatus:
        v = await self.verdict(plan, d)
        if v.kind == "foreign":
            return _status(d, "skipped", v.reason)
        how = v.reason if v.kind == "ours" else f"prepared now ({v.reason})"
        if plan.mode == "lvm":
            if v.kind != "ours":
                await self._lvm(plan, d, v)
            return await report.lvm_status(self.runner, d, plan.command_timeout, how)
        fs_uuid = v.uuid if v.kind == "ours" else await self._mkfs(plan, d, v)
        await self._mount_unit(plan, d, fs_uuid)
        return report.fs_status(self.paths, d, how, self.proc)

    async def _vg_ours(self, plan: StoragePlan, vg: str) -> bool:
        """True when ``vg`` exists and is ours; False when absent; raises when it belongs to someone else."""
        try:
            out = await self._run(plan, "vgs", "--reportformat", "json", "-o", "vg_name,vg_tags", vg)
        except CommandFailed:
            return False
        rows = [r for rep in json.loads(out).get("report", []) for r in rep.get("vg", [])]
        if rows and TAG not in rows[0].get("vg_tags", "").split(","):
            raise AgentError(f"volume group {vg} exists without the {TAG} tag: not ours, not extended")
        return bool(rows)

    async def _lvm(self, plan: StoragePlan, d: NamespaceDecision, v: Verdict) -> None:
        exists = await self._vg_ours(plan, d.volume_group)
        if v.kind == "blank":
            pv_uuid = new_lvm_uuid()
            entry = Entry(d.device, d.serial, d.nsid, pv_uuid, d.volume_group)
            self.ledger.record(volume_name(d.serial, d.nsid), entry)
            await self._run(plan, "pvcreate", "--uuid", pv_uuid, "--norestorefile", d.device)
        if exists:
            await self._run(plan, "vgextend", d.volume_group, d.device)
        else:
            await self._run(plan, "vgcreate", "--addtag", TAG, d.volume_group, d.device)

    async def _mkfs(self, plan: StoragePlan, d: NamespaceDecision, v: Verdict) -> str:
        redo = v.kind == "resume"
        fs_uuid = v.uuid if redo else str(uuidlib.uuid4())
        if not redo:
            self.ledger.record(volume_name(d.serial, d.nsid), Entry(d.device, d.serial, d.nsid, fs_uuid, d.mountpoint))
        if plan.filesystem == "xfs":
            await self._run(plan, "mkfs.xfs", "-q", *(["-f"] if redo else []), "-m", f"uuid={fs_uuid}", d.device)
            await self._run(plan, "xfs_admin", "-L", LABEL, d.device)
        else:
            await self._run(plan, "mkfs.ext4", "-q", *(["-F"] if redo else []), "-U", fs_uuid, d.device)
            await self._run(plan, "e2label", d.device, LABEL)
        return fs_uuid

    async def _mount_unit(self, plan: StoragePlan, d: NamespaceDecision, fs_uuid: str) -> None:
        name = unit_name(d.mountpoint)
        text = unit_text(d.mountpoint, fs_uuid, plan.filesystem, volume_name(d.serial, d.nsid))
        self.paths.under(d.mountpoint).mkdir(parents=True, exist_ok=True)
        if atomic_write(self.paths.under(f"/etc/systemd/system/{name}"), text):
            await self._run(plan, "systemctl", "daemon-reload")
        await self._run(plan, "systemctl", "enable", "--now", name)
