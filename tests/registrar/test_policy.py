"""The requirement language, approval policies and machine classes: parsing, refusal, evaluation on
registered inventories (the agent's own Inventory model as JSON), and the schema migration."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.errors import BadRequirement
from agent.model.inventory import Gpu, Inventory, Nic, NvmeController, System
from agent.registrar.classes import make_class, placing
from agent.registrar.facts import parse
from agent.registrar.policy import approving, make_policy, policy_from_json
from agent.registrar.registry import Node
from agent.registrar.sqlite import MIGRATIONS, SCHEMA, SqliteRegistry
from tests.registrar.program import registrar


def node(inv: Inventory | None, **kw: object) -> Node:
    inventory = inv.model_dump(mode="json") if inv is not None else {}
    return Node("n1", "pending", "t1", "fp", inventory=inventory, **kw)  # type: ignore[arg-type]


def lab_box() -> Inventory:
    return Inventory(
        scanned_at=datetime.now(UTC),
        system=System(cores=32, memory_bytes=256 * 2**30, serial="SN-9", architecture="x86_64"),
        gpus=(
            Gpu(kind="pci", name="ASPEED Graphics Family", display_only=True),
            Gpu(kind="pci", name="NVIDIA H100 80GB HBM3"),
            Gpu(kind="pci", name="NVIDIA L4"),
        ),
        nvme=(NvmeController(name="nvme0"), NvmeController(name="nvme1", transport="tcp", remote=True)),
        nics=(
            Nic(name="eno1", kind="physical", physical=True, speed_mbps=1000),
            Nic(name="ens1f0", kind="physical", physical=True, speed_mbps=100000),
            Nic(name="cni0", kind="bridge", physical=False, speed_mbps=400000),
        ),
    )


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("gpu.count>=1", True),
        ("gpu.count==2", True),  # the BMC's display adapter does not count
        ("gpu.count>2", False),
        ("gpu.model~H100", True),
        ("gpu.model~h100", True),
        ("gpu.model~^NVIDIA L4$", True),
        ("gpu.model~A100", False),
        ("gpu.model==NVIDIA L4", True),
        ("gpu.model!=NVIDIA L4", False),  # != holds only when no GPU is that one
        ("gpu.model!=NVIDIA A100", True),
        ("cores>=8", True),
        ("cores<16", False),
        ("memory_gib>=256", True),
        ("nvme.count==1", True),  # the NVMe/TCP controller is not local
        ("nic.count==2", True),
        ("nic.speed_max>=100000", True),  # the bridge is not a physical NIC
        ("nic.speed_max>100000", False),
        ("serial==SN-9", True),
        ("arch==x86_64", True),
        ("site==lab", True),
        ("labels.rack==r7", True),
        ("labels.rack!=r7", False),
        ("labels.zone==a", False),  # a label the node lacks
    ],
)
def test_requirements_on_a_registered_inventory(text: str, holds: bool) -> None:
    assert parse(text).holds(node(lab_box(), site="lab", labels={"rack": "r7"})) is holds


def test_a_node_without_an_inventory_satisfies_nothing() -> None:
    bare = node(None)
    assert not any(parse(t).holds(bare) for t in ("gpu.count<1", "gpu.count>=0", "cores>=0", "gpu.model!=X"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu.count>>1", "gpu.count is a number; expected one, got '>1'"),
        ("gpu.cnt>=1", "unknown fact 'gpu.cnt'; expected one of gpu.count"),
        ("gpu.model>=3", "gpu.model is text; >= needs a number fact"),
        ("gpu.model~[", "is not a regular expression"),
        ("cores~8", "cores is a number; ~ needs a text fact"),
        ("cores", "expected FACT OP VALUE"),
        ("cores>=", "expected a value after '>='"),
        ("labels.>=1", "expected a label key"),
    ],
)
def test_bad_requirements_are_refused_by_policy_add_and_nothing_is_stored(
    tmp_path: Path, text: str, expected: str
) -> None:
    for args in (["policy", "add", "p1", "--require", text],
                 ["class", "add", "c1", "--require", text, "--cluster", "gpu-lab", "--role", "agent"]):  # fmt: skip
        proc = registrar(tmp_path, *args, check=False)
        assert proc.returncode == 2
        assert repr(text) in proc.stderr and expected in proc.stderr, proc.stderr
    assert json.loads(registrar(tmp_path, "policy", "list", "-o", "json").stdout)["policies"] == []
    assert json.loads(registrar(tmp_path, "class", "list", "-o", "json").stdout)["classes"] == []


def test_policy_commands_add_list_refuse_a_duplicate_and_remove(tmp_path: Path) -> None:
    add = ["policy", "add", "rack7", "--serial", "SN-1", "--serial", "SN-2", "--label", "rack=r7"]
    assert registrar(tmp_path, *add, "--require", "cores >= 8").returncode == 0
    again = registrar(tmp_path, *add, check=False)
    assert again.returncode == 1 and "policy rack7 exists" in again.stderr
    empty = registrar(tmp_path, "policy", "add", "nothing", check=False)
    assert empty.returncode == 2 and "expected at least one of --serial" in empty.stderr
    listed = json.loads(registrar(tmp_path, "policy", "list", "-o", "json").stdout)
    assert listed == {
        "schema": "edge-registrar.policies/v1",
        "policies": [
            {
                "name": "rack7",
                "serials": ["SN-1", "SN-2"],
                "site": "",
                "labels": {"rack": "r7"},
                "requires": ["cores >= 8"],
            }
        ],
    }
    table = registrar(tmp_path, "policy", "list").stdout
    assert "serial in SN-1,SN-2 and labels.rack=r7 and cores >= 8" in table
    assert registrar(tmp_path, "policy", "remove", "rack7").returncode == 0
    gone = registrar(tmp_path, "policy", "remove", "rack7", check=False)
    assert gone.returncode == 1 and "no policy 'rack7'" in gone.stderr


def test_every_criterion_of_a_policy_must_hold() -> None:
    p = make_policy("rack", serials=["SN-9"], site="lab", labels={"rack": "r7"}, requires=["gpu.count>=1"])
    p = policy_from_json(json.dumps(p.to_json()))  # as stored
    assert p.matches(node(lab_box(), site="lab", labels={"rack": "r7"}))
    assert not p.matches(node(lab_box(), site="other", labels={"rack": "r7"}))
    assert not p.matches(node(lab_box(), site="lab", labels={"rack": "r8"}))
    assert not p.matches(node(lab_box(), site="lab", labels={"rack": "r7"}, dmi_serial="SN-0"))
    second = make_policy("any-lab", serials=[], site="lab", labels={}, requires=[])
    assert approving([p, second], node(lab_box(), site="lab", labels={"rack": "r7"})) is second  # first by name


def test_the_highest_priority_class_places_the_node() -> None:
    low = make_class("gpus", requires=["gpu.count>=1"], cluster="gpu", role="agent", priority=0)
    high = make_class("h100", requires=["gpu.model~H100"], cluster="gpu-lab", role="server", priority=5)
    other = make_class("a100", requires=["gpu.model~A100"], cluster="a100-lab", role="server", priority=9)
    assert placing([low, high, other], node(lab_box())) is high
    assert placing([low, other], node(lab_box())) is low
    assert placing([high, other], node(None)) is None
    with pytest.raises(BadRequirement, match="role 'worker': expected 'server' or 'agent'"):
        make_class("x", requires=["cores>=1"], cluster="c", role="worker", priority=0)
    with pytest.raises(BadRequirement, match="expected at least one --require"):
        make_class("x", requires=[], cluster="c", role="agent", priority=0)


def test_a_schema_1_registry_is_migrated_keeping_its_nodes(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    old = sqlite3.connect(path)
    for stmt in MIGRATIONS[0]:
        old.execute(stmt)
    old.execute("INSERT INTO nodes (node_id, state, token_id, key_fingerprint, site, labels, created_at) "
                "VALUES ('old-box', 'approved', 't0', 'fp', 'lab', '{}', 1.0)")  # fmt: skip
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    db = SqliteRegistry(path)
    try:
        assert db.schema_version() == SCHEMA  # 1 -> 2 (rules, audit) -> 3 (replicas' state) -> 4 (rollouts) ...
        kept = db.get_node("old-box")
        assert kept is not None and kept.state == "approved" and kept.approved_by == ""
        assert db.set_state("old-box", "approved", by="operator:alice")
        assert db.get_node("old-box").approved_by == "operator:alice"  # type: ignore[union-attr]
        assert [e[2:4] for e in db.events("old-box")] == [("approved", "operator:alice")]
    finally:
        db.close()
