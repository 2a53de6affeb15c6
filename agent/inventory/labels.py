"""Node labels from the inventory: a pure function, Node Feature Discovery's format plus our own.

NFD (default config) labels PCI devices of the classes 03 (display), 0b40
(co-processor) and 12 (processing accelerator) as
``feature.node.kubernetes.io/pci-<class><subclass>_<vendor>.present=true``;
the NVIDIA GPU Operator selects on the vendor-only form
``feature.node.kubernetes.io/pci-10de.present``. Our own labels live under
``edge-agent.io/``. Every value is a valid Kubernetes label value (at most 63
characters of ``[A-Za-z0-9._-]``, alphanumeric at both ends), whatever the
hardware strings hold.

The function reads the daemon's pydantic ``Inventory`` and the collectors' plain
records (agent/inventory/records.py) alike: their fields have the same names, so a
one-shot scan labels the box without importing pydantic.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING

from agent.inventory import records

if TYPE_CHECKING:
    from agent.model import inventory as model

NFD = "feature.node.kubernetes.io/"
OURS = "edge-agent.io/"
NFD_PCI_CLASSES = ("03", "0b40", "12")
_INVALID = re.compile(r"[^A-Za-z0-9._-]+")
_EDGES = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")


def label_value(text: str) -> str:
    """``text`` as a valid label value: accents dropped, runs of other characters become '-',
    ends trimmed, 63 characters at most."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    value = _INVALID.sub("-", ascii_text)
    value = _EDGES.sub("", value)[:63]
    return _EDGES.sub("", value)


def node_labels(inv: model.Inventory | records.Inventory) -> dict[str, str]:
    labels: dict[str, str] = {}
    for p in inv.pci:
        if p.class_code and p.vendor_id and p.class_code.startswith(NFD_PCI_CLASSES):
            labels[f"{NFD}pci-{p.class_code[:4]}_{p.vendor_id}.present"] = "true"
            labels[f"{NFD}pci-{p.vendor_id}.present"] = "true"

    local_ns = [ns for c in inv.nvme if not c.remote for ns in c.namespaces if not ns.remote]
    if local_ns or any(d.rotational is False for d in inv.disks):
        labels[f"{NFD}storage-nonrotationaldisk"] = "true"
    if any((n.sriov_total_vfs or 0) > 0 for n in inv.nics):
        labels[f"{NFD}network-sriov.capable"] = "true"
    if any((n.sriov_num_vfs or 0) > 0 for n in inv.nics):
        labels[f"{NFD}network-sriov.configured"] = "true"

    gpus = [g for g in inv.gpus if not g.display_only]
    labels[f"{OURS}gpu.count"] = str(len(gpus))
    if gpus:
        name, _ = Counter(g.name for g in gpus).most_common(1)[0]
        model = label_value(name)
        if model:
            labels[f"{OURS}gpu.model"] = model
    labels[f"{OURS}nvme.count"] = str(sum(1 for c in inv.nvme if c.transport == "pcie"))
    capacity = sum(ns.size_bytes or 0 for ns in local_ns)
    labels[f"{OURS}nvme.local-capacity-gb"] = str(capacity // 10**9)
    speeds = [n.speed_mbps for n in inv.nics if n.physical and n.speed_mbps]
    if speeds:
        labels[f"{OURS}nic.max-speed-mbps"] = str(max(speeds))
    return labels
