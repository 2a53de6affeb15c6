"""May this namespace be written? Blank, ours (complete), ours to finish, or someone else's (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent.model.storage import NamespaceDecision, StoragePlan
from agent.storage.ledger import Entry
from agent.storage.probe import Probe, Signature

TAG = "edge-agent"
LABEL = "edge-agent"

Kind = Literal["blank", "ours", "resume", "foreign"]


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str
    uuid: str = ""


def _describe(sig: Signature) -> str:
    parts = (f"uuid {sig.uuid}" if sig.uuid else "", f"label {sig.label!r}" if sig.label else "")
    extra = ", ".join(x for x in parts if x)
    return f"{sig.type} signature" + (f" ({extra})" if extra else "")


def _foreign(probe: Probe) -> Verdict:
    if probe.in_use:
        return Verdict("foreign", probe.in_use)
    if probe.pv is not None:
        where = f"volume group {probe.pv.vg}" if probe.pv.vg else "no volume group"
        return Verdict("foreign", f"LVM physical volume of {where}, not made by edge-agent")
    return Verdict("foreign", "has " + "; ".join(_describe(s) for s in probe.signatures))


def classify(
    decision: NamespaceDecision, plan: StoragePlan, probe: Probe, entry: Entry | None, own_mount: str = ""
) -> Verdict:
    """``own_mount``: where our mount unit mounts this namespace (a mount there is ours, not a use)."""
    if probe.blank:
        return Verdict("blank", "no partition table, no signature, not mounted, no holders")
    # the ledger is keyed by serial-nsid, not the device name (nvme0n1 and nvme1n1 may swap across boots);
    # the UUID it holds was drawn at random for that one intent, so a match is ours
    if plan.mode == "lvm":
        pv = probe.pv
        if pv is not None and pv.vg == decision.volume_group and TAG in pv.vg_tags:
            return Verdict("ours", f"LVM PV of volume group {pv.vg} (tag {TAG})", pv.uuid)
        if pv is not None and not pv.vg and entry is not None and pv.uuid == entry.uuid and not probe.in_use:
            return Verdict("resume", f"LVM PV {pv.uuid} made by edge-agent, not yet in a volume group", pv.uuid)
        return _foreign(probe)
    if len(probe.signatures) == 1 and probe.signatures[0].type == plan.filesystem:
        sig = probe.signatures[0]
        mounted_elsewhere = probe.in_use and probe.in_use != f"mounted at {own_mount}"
        if sig.label == LABEL and not mounted_elsewhere:
            return Verdict("ours", f"{sig.type} labelled {LABEL} (uuid {sig.uuid})", sig.uuid)
        if entry is not None and sig.uuid == entry.uuid and not probe.in_use:
            return Verdict("resume", f"{sig.type} {sig.uuid} made by edge-agent, not yet labelled", sig.uuid)
    return _foreign(probe)
