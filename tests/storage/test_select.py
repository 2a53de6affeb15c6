"""Which namespaces [storage] takes, into which device class, and the config problems (generated inventories)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.model.inventory import Inventory, NvmeController, NvmeNamespace, PciDevice
from agent.model.storage import StorageSection
from agent.storage.select import plan_storage, storage_problems
from agent.storage.topolvm import lvmd_device_classes

TB = 10**12


def ctrl(name: str, model: str, serial: str, *, transport: str = "pcie", numa: int = 0, **ns: Any) -> NvmeController:
    remote = transport in ("tcp", "rdma", "fc")
    return NvmeController(
        name=name,
        model=model,
        serial=serial,
        transport=transport,  # type: ignore[arg-type]
        remote=remote,
        pci=PciDevice(address=f"0000:{numa + 1:02x}:00.0", numa_node=numa) if not remote else None,
        namespaces=(
            NvmeNamespace(
                name=f"{name}n1",
                nsid=1,
                size_bytes=ns.get("size", 4 * TB),
                remote=remote,
                holds_root=ns.get("root", False),
            ),
        ),
    )


def box() -> Inventory:
    return Inventory(
        scanned_at=datetime.now(UTC),
        nvme=(
            ctrl("nvme0", "SAMSUNG MZQL23T8HCLS", "S64HNA0T1", size=480 * 10**9, root=True),
            ctrl("nvme1", "SAMSUNG MZQL23T8HCLS", "S64HNA0T2"),
            ctrl("nvme2", "KIOXIA KCD8XRUG7T68", "K8X0001", numa=1),
            ctrl("nvme3", "Linux", "nvmf-target-1", transport="tcp"),
        ),
    )


def section(**kw: Any) -> StorageSection:
    return StorageSection.model_validate({"enabled": True, **kw})


def test_off_by_default() -> None:
    assert plan_storage(StorageSection(), box()) is None
    assert storage_problems(StorageSection(), box(), "agent.toml") == []


def test_root_disk_and_fabric_attached_are_skipped_with_the_reason() -> None:
    plan = plan_storage(section(), box())
    assert plan is not None
    by = {d.device: d for d in plan.namespaces}
    assert by["/dev/nvme0n1"].action == "skip" and by["/dev/nvme0n1"].reason == "holds the root filesystem"
    assert by["/dev/nvme3n1"].action == "skip" and "fabric-attached (tcp)" in by["/dev/nvme3n1"].reason
    assert by["/dev/nvme1n1"].action == "prepare" and by["/dev/nvme1n1"].volume_group == "edge-nvme"
    assert by["/dev/nvme2n1"].device_class == "nvme"


def test_fabric_namespaces_only_when_listed() -> None:
    plan = plan_storage(section(select={"transport": ["pcie", "tcp"]}), box())
    assert plan is not None and {d.device for d in plan.namespaces if d.action == "prepare"} >= {"/dev/nvme3n1"}


def test_device_classes_by_model_and_by_numa_node() -> None:
    classes = [
        {"name": "samsung", "select": {"model": "SAMSUNG*"}, "default": True},
        {"name": "numa1", "volume_group": "vg-numa1", "select": {"numa_node": 1}},
    ]
    plan = plan_storage(section(device_classes=classes), box())
    assert plan is not None
    by = {d.device: (d.device_class, d.volume_group) for d in plan.namespaces if d.action == "prepare"}
    assert by == {"/dev/nvme1n1": ("samsung", "edge-samsung"), "/dev/nvme2n1": ("numa1", "vg-numa1")}


def test_filesystem_mode_mounts_under_volumes_by_serial_and_nsid() -> None:
    plan = plan_storage(section(mode="filesystem", select={"model": "KIOXIA*"}), box())
    assert plan is not None
    (chosen,) = [d for d in plan.namespaces if d.action == "prepare"]
    assert chosen.mountpoint == "/var/lib/edge-agent/volumes/K8X0001-1"
    skipped = {d.device: d.reason for d in plan.namespaces if d.action == "skip"}
    assert skipped["/dev/nvme1n1"].startswith("not selected by storage.select (model=KIOXIA*")


def test_problems_name_the_selector_and_the_empty_device_class() -> None:
    s = section(
        select={"min_size_bytes": 3 * TB},
        device_classes=[
            {"name": "fast", "select": {"model": "SAMSUNG*"}},
            {"name": "intel", "select": {"model": "INTEL*"}},
        ],
    )
    problems = storage_problems(s, box(), "/etc/edge-agent/agent.toml")
    assert [p.key for p in problems] == ["storage.device_classes.1"]
    assert "device class 'intel'" in problems[0].message and "has no device" in problems[0].message
    nothing = storage_problems(section(select={"serial": "NOPE*"}), box(), "x.toml")
    assert [p.key for p in nothing] == ["storage.select"] and "selects no NVMe namespace" in nothing[0].message


def test_topolvm_device_classes_list_the_used_classes_with_one_default() -> None:
    classes = [
        {"name": "samsung", "select": {"model": "SAMSUNG*"}},
        {"name": "numa1", "volume_group": "vg-numa1", "select": {"numa_node": 1}, "default": True},
        {"name": "intel", "select": {"model": "INTEL*"}},
    ]
    plan = plan_storage(section(device_classes=classes), box())
    assert plan is not None
    assert lvmd_device_classes(plan) == [
        {"name": "samsung", "volume-group": "edge-samsung", "default": False, "spare-gb": 10},
        {"name": "numa1", "volume-group": "vg-numa1", "default": True, "spare-gb": 10},
    ]
    fs = plan_storage(section(mode="filesystem"), box())
    assert fs is not None and lvmd_device_classes(fs) == []
