"""The collectors' plain records and the pydantic model they become: one shape, one JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from agent.inventory import records
from agent.inventory.document import inventory_json, to_json
from agent.inventory.scan import modelled
from agent.model import inventory as model

PAIRS = [
    (records.PciDevice, model.PciDevice),
    (records.NvmeNamespace, model.NvmeNamespace),
    (records.NvmeController, model.NvmeController),
    (records.Disk, model.Disk),
    (records.NvidiaDetails, model.NvidiaDetails),
    (records.Gpu, model.Gpu),
    (records.Nic, model.Nic),
    (records.System, model.System),
    (records.Tpm, model.Tpm),
    (records.Inventory, model.Inventory),
]


@pytest.mark.parametrize(("record", "pydantic_model"), PAIRS, ids=[r.__name__ for r, _ in PAIRS])
def test_every_record_has_the_fields_of_its_model(record: type, pydantic_model: type[BaseModel]) -> None:
    assert list(record._fields) == list(pydantic_model.model_fields)  # type: ignore[attr-defined]


def pci(address: str, **facts: object) -> records.PciDevice:
    base = dict.fromkeys(records.PciDevice._fields)
    return records.PciDevice(**{**base, "address": address, "problems": {}, **facts})  # type: ignore[arg-type]


def scan(at: datetime) -> records.Inventory:
    gpu_pci = pci("0000:18:00.0", class_code="030200", vendor_id="10de", link_speed_gts=32.0, link_width=16)
    gpu = records.Gpu(
        kind="pci", name="NVIDIA H100", vendor_id="10de", device_id="2330", vendor_name="NVIDIA",
        device_name="GH100", driver="nvidia", pci=gpu_pci, platform_path=None, compatible=None, numa_node=0,
        display_only=False, drm_card=None, drm_render=None, problems={"nvidia": "nvidia-smi not found"},
        nvidia=records.NvidiaDetails(name="H100", uuid="GPU-1", memory_mib=81559, driver_version="550",
                                     cuda_version="12.4", mig_mode="Disabled"),
    )  # fmt: skip
    ns = records.NvmeNamespace(
        name="nvme0n1", nsid=1, size_bytes=10**12, logical_block_size=512, physical_block_size=4096,
        wwid=None, remote=False, holds_root=True, problems={"wwid": "wwid: absent"},
    )  # fmt: skip
    ctrl_pci = pci("0000:c1:00.0", class_code="010802", numa_node=1)
    ctrl = records.NvmeController(
        name="nvme0", model="M", serial="S", firmware_rev="F", transport="pcie", remote=False, fabric_address=None,
        subsystem_nqn=None, pci=ctrl_pci, namespaces=(ns,), problems={},
    )  # fmt: skip
    nic = records.Nic(
        name="eno1", kind="physical", physical=True, bond_master=None, is_vf=False, driver="i40e",
        pci_address="0000:65:00.0", numa_node=None, mac="3c:ec:ef:00:11:20", mtu=1500, operstate="up",
        speed_mbps=10000, duplex="full", sriov_total_vfs=8, sriov_num_vfs=0, rdma_devices=("mlx5_0",),
        addresses=("192.0.2.2/24",), default_route=True, problems={},
    )  # fmt: skip
    tpm = records.Tpm(name="tpm0", version_major=2, driver="tpm_tis", resource_manager=True, problems={})
    return records.Inventory(
        schema_version=records.INVENTORY_SCHEMA, scanned_at=at,
        system=records.unknown_system({"vendor": "no DMI table"}), pci=(gpu_pci, ctrl_pci),
        nvme=(ctrl,), disks=(), gpus=(gpu,), nics=(nic,), tpms=(tpm,), problems={"disks": "collector failed: X"},
    )  # fmt: skip


@pytest.mark.parametrize("at", [datetime(2026, 12, 2, 13, 40, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 0, 1200, UTC)])
def test_the_json_of_a_record_is_the_models_json(at: datetime) -> None:
    inv = scan(at)
    assert inventory_json(inv) == modelled(inv).model_dump(mode="json")


def test_the_model_holds_the_facts_of_the_records() -> None:
    inv = modelled(scan(datetime.now(UTC)))
    assert isinstance(inv.gpus[0], model.Gpu) and inv.gpus[0].nvidia is not None
    assert inv.gpus[0].nvidia.memory_mib == 81559 and inv.nvme[0].namespaces[0].holds_root
    assert inv.system.problems == {"vendor": "no DMI table"} and inv.system.kernel is None


def test_anything_else_has_no_json_form() -> None:
    with pytest.raises(TypeError, match="no JSON form for set"):
        to_json({"problems": {"x"}})
