"""A disk copied whole into another box (same machine id, same key) is a new box; a replaced NIC
or a hot-added disk in the same box is not. Hardware facts are sysfs trees on scratch roots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agent.fleet import identity as ident
from agent.paths import Paths

from .harness import box_config, cond, make_box, wait_for

MACHINE_ID = "9" * 32


def dmi(root: Path, uuid: str, serial: str) -> None:
    d = root / "sys/class/dmi/id"
    d.mkdir(parents=True, exist_ok=True)
    (d / "product_uuid").write_text(uuid + "\n")
    (d / "product_serial").write_text(serial + "\n")


def nic(root: Path, name: str, mac: str, assign_type: str = "0", physical: bool = True) -> None:
    d = root / "sys/class/net" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "address").write_text(mac + "\n")
    (d / "addr_assign_type").write_text(assign_type + "\n")
    if physical:
        (d / "device").mkdir(exist_ok=True)


def nvme(root: Path, name: str, serial: str) -> None:
    d = root / "sys/class/nvme" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "serial").write_text(serial + "\n")


def machine(root: Path) -> Paths:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/machine-id").write_text(MACHINE_ID + "\n")
    return Paths(root)


def test_a_replaced_nic_or_an_added_disk_keeps_the_identity_when_the_firmware_names_no_board(tmp_path):
    root = tmp_path / "box"
    paths = machine(root)
    dmi(root, "03000200-0400-0500-0006-000700080009", "To Be Filled By O.E.M.")  # placeholders: not facts
    nic(root, "enp1s0", "52:54:00:aa:bb:01")
    nic(root, "br0", "52:54:00:aa:bb:99", physical=False)  # a bridge's MAC never counts
    nvme(root, "nvme0", "S4EWNX0N123456")
    first = ident.load_or_create(paths)

    shutil.rmtree(root / "sys/class/net/enp1s0")
    nic(root, "enp2s0", "52:54:00:cc:dd:02")  # the NIC was replaced
    nvme(root, "nvme1", "S4EWNX0N999999")  # and a disk hot-added
    again = ident.load_or_create(paths)
    assert again.node_id == first.node_id and not again.replaced
    assert again.key.private_numbers() == first.key.private_numbers()

    # the same disk in a box where none of those devices is: another box
    shutil.rmtree(root / "sys/class")
    dmi(root, "", "")
    nic(root, "eno1", "3c:ec:ef:00:00:01")
    nvme(root, "nvme0", "OTHER-BOX-DRIVE")
    other = ident.load_or_create(paths)
    assert other.replaced == first.node_id and other.reset_reason == "MovedToOtherHardware"
    assert other.reset_why == "none of its NICs or NVMe drives is here"
    assert other.node_id != first.node_id


def test_an_identity_made_before_hardware_was_recorded_adopts_the_box_it_is_on(tmp_path):
    root = tmp_path / "box"
    paths = machine(root)
    dmi(root, "4c4c4544-0042-3510-8052-b4c04f4e3132", "7XJ5QK2")
    first = ident.load_or_create(paths)
    meta = paths.identity_dir / "identity.json"
    doc = json.loads(meta.read_text())
    del doc["hardware"]  # as an older agent wrote it
    meta.write_text(json.dumps(doc))
    dmi(root, "4c4c4544-0042-3510-8052-b4c04f4e3132", "7XJ5QK2")
    assert ident.load_or_create(paths).node_id == first.node_id
    assert "hardware" in json.loads(meta.read_text())


async def test_a_root_copied_into_a_box_with_other_dmi_values_enrolls_as_a_new_node(
    registrar, run_controller, tmp_path: Path
):
    token = registrar.token(uses=2)
    root = tmp_path / "box1"
    dmi(root, "4c4c4544-0042-3510-8052-b4c04f4e3132", "7XJ5QK2")
    ctx = make_box(root, box_config(registrar.url, registrar.pin, token), MACHINE_ID)
    task = run_controller(ctx)
    await wait_for(lambda: ctx.assignment.value is not None, what="original enrolled")
    original = registrar.reg.registry.list_nodes()[0].node_id
    task.cancel()

    # the whole disk, identity and key included, copied into a second box
    copy = tmp_path / "box2"
    shutil.copytree(root, copy, symlinks=True)
    dmi(copy, "4c4c4544-0036-4e10-8030-c3c04f335a32", "9QK2M13")
    clone = make_box(copy, box_config(registrar.url, registrar.pin, token), MACHINE_ID)
    run_controller(clone)
    await wait_for(lambda: cond(clone, "Enrolled") == ("True", "Enrolled"), what="the copy enrolled anew")
    reset = clone.board.condition("IdentityReset")
    assert reset is not None and reset.reason == "MovedToOtherHardware", reset
    assert original in reset.message and "the DMI system UUID differs" in reset.message
    assert list(copy.glob("var/lib/edge-agent/identity.other-hardware-*"))
    fresh = ident.load_or_create(clone.paths)
    assert fresh.node_id != original
    assert sorted(n.node_id for n in registrar.reg.registry.list_nodes()) == sorted([original, fresh.node_id])
    # the original box, on its own hardware, is still the original node
    assert ident.load_or_create(ctx.paths).node_id == original
