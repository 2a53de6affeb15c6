"""The ``device-classes`` TopoLVM's lvmd reads, from the storage plan (pure).

Only classes that hold at least one namespace to prepare are listed (lvmd refuses
a volume group that does not exist). Exactly one class is the default: the one
marked so, else the first.
"""

from __future__ import annotations

from agent.model.storage import StoragePlan


def lvmd_device_classes(plan: StoragePlan) -> list[dict[str, object]]:
    if plan.mode != "lvm":
        return []
    used = {d.device_class for d in plan.namespaces if d.action == "prepare"}
    classes = [c for c in plan.classes if c.name in used]
    default = next((c.name for c in classes if c.default), classes[0].name if classes else "")
    return [{"name": c.name, "volume-group": c.vg, "default": c.name == default, "spare-gb": 10} for c in classes]
