"""The hardware decides, end to end through the planner and the runtime controller, on the
stand-in k3s: the node address a [network] policy picks on a multi-NIC box (and the wait while
its NIC has no address), and node labels that follow a hotplug after the node registered."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import yaml

from agent.cli.status_view import render_status
from agent.model.config import AgentConfig, AgentSection, KubernetesSection
from agent.model.inventory import Gpu, Inventory, Nic
from agent.model.network import NetworkSection, NicSelector
from agent.watch import Watch

from .boxes import Box

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def nic(name: str, *addresses: str, **kw: object) -> Nic:
    return Nic.model_validate(
        {"name": name, "kind": "physical", "physical": True, "operstate": "up", "addresses": addresses, **kw}
    )


def multi_nic(data_address: tuple[str, ...] = ("198.51.100.7/24",), gpus: tuple[Gpu, ...] = ()) -> Inventory:
    """eno1: 1G management port holding the default route; ens1f0: a 100G data port."""
    nics = (
        nic("eno1", "192.0.2.10/24", speed_mbps=1000, default_route=True),
        nic("ens1f0", *data_address, speed_mbps=100000),
    )
    return Inventory(scanned_at=NOW, nics=nics, gpus=gpus)


def multi_nic_box(make_box: Callable[..., Box], name: str, data_address: tuple[str, ...] = ("198.51.100.7/24",)) -> Box:
    """A box with the k3s bundle, a [network] policy asking for a >= 25G port off the default route,
    and the :func:`multi_nic` inventory (its data port holding ``data_address``)."""
    box = make_box(name)
    box.bundle("k3s")
    policy = NetworkSection(selectors=[NicSelector(min_speed_mbps=25000, not_default_route=True)])
    box.ctx.config = Watch(
        AgentConfig(
            agent=AgentSection(node_name=box.name),
            kubernetes=KubernetesSection(distribution="k3s", start_timeout=5.0),
            network=policy,
        )
    )
    box.ctx.inventory.set(multi_nic(data_address))
    return box


def k3s_config(box: Box) -> dict[str, object]:
    """The k3s config.yaml the agent rendered, as an independent YAML parser reads it."""
    return dict(yaml.safe_load((box.root / "etc/rancher/k3s/config.yaml").read_text()))


def restarts(box: Box) -> int:
    """How many ``systemctl restart`` the box has seen so far."""
    return len([c for c in box.calls() if c["prog"] == "systemctl" and c["argv"][0] == "restart"])


def node_json(box: Box) -> dict[str, object]:
    out = box.run(str(box.root / "usr/local/bin/k3s"), "kubectl", "get", "node", box.name, "-o", "json").stdout
    return dict(json.loads(out))


async def test_the_data_port_is_the_node_ip_and_the_node_shows_it(make_box: Callable[..., Box]) -> None:
    box = multi_nic_box(make_box, "multi")
    await box.converge(box.controller())
    config = k3s_config(box)
    assert config["node-ip"] == ["198.51.100.7"] and config["flannel-iface"] == "ens1f0"
    assert config["advertise-address"] == "198.51.100.7"  # a server advertises the chosen address
    addresses = node_json(box)["status"]["addresses"]  # type: ignore[index]
    assert {"type": "InternalIP", "address": "198.51.100.7"} in addresses
    cond = box.cond("NodeAddress")
    assert (cond.status, cond.reason) == ("True", "Chosen") and "network.selectors.0" in cond.message
    section = box.ctx.board.sections()["network"]
    assert section["state"] == "chosen" and section["chosen"]["interface"] == "ens1f0"
    doc = {
        "sections": box.ctx.board.sections(),
        "conditions": [c.model_dump(mode="json") for c in box.ctx.board.conditions()],
    }
    text = render_status(doc, color=False)  # what a technician reads: every decision with its reason
    assert "network    198.51.100.7 on ens1f0, by network.selectors.0 (min_speed_mbps=25000" in text
    assert "gpu runtime none: no NVIDIA GPU in the inventory" in text
    assert "edge-agent.io/gpu.count=0" in text


async def test_a_data_port_without_an_address_yet_waits_and_nothing_starts(make_box: Callable[..., Box]) -> None:
    box = multi_nic_box(make_box, "late", data_address=())  # DHCP late at boot
    ctl = box.controller()
    await ctl.reconcile()
    configured = box.cond("Configured")
    assert (configured.status, configured.reason) == ("False", "NodeAddressPending")
    assert "ens1f0" in configured.message and "NoAddressYet" in configured.message
    assert not (box.root / "etc/rancher/k3s/config.yaml").exists()  # never the management port instead
    assert [c for c in box.calls() if c["prog"] == "systemctl" and c["argv"][0] in ("start", "restart")] == []
    box.ctx.inventory.set(multi_nic())  # the address arrives
    await box.converge(ctl)
    assert k3s_config(box)["node-ip"] == ["198.51.100.7"]


async def test_a_hot_added_gpu_shows_on_the_registered_node(make_box: Callable[..., Box]) -> None:
    box = multi_nic_box(make_box, "hot")
    ctl = box.controller()
    await box.converge(ctl)

    def label() -> str | None:
        labels = node_json(box)["metadata"]["labels"]  # type: ignore[index]
        return labels.get("edge-agent.io/gpu.count")  # type: ignore[no-any-return]

    assert label() == "0"
    before = restarts(box)
    a2 = Gpu(kind="pci", name="NVIDIA A2", vendor_id="10de", device_id="25b6")
    box.ctx.inventory.set(multi_nic(gpus=(a2,)))
    await box.converge(ctl, until=lambda: label() == "1")
    assert restarts(box) == before


async def test_a_changed_address_restarts_k3s_once_and_the_node_shows_it(make_box: Callable[..., Box]) -> None:
    """DHCP hands the data port a new address (or it is replugged elsewhere): re-plan, restart once, check."""
    box = multi_nic_box(make_box, "renew")
    ctl = box.controller()
    await box.converge(ctl)
    before = restarts(box)
    box.ctx.inventory.set(multi_nic(data_address=("198.51.100.99/24",)))

    def shown() -> bool:
        addresses = node_json(box)["status"]["addresses"]  # type: ignore[index]
        return {"type": "InternalIP", "address": "198.51.100.99"} in addresses

    await box.converge(ctl, until=shown)
    assert k3s_config(box)["node-ip"] == ["198.51.100.99"]
    assert restarts(box) == before + 1
    await ctl.reconcile()  # and nothing more once it holds
    assert restarts(box) == before + 1
    cond = box.cond("NodeAddress")
    assert (cond.status, cond.reason) == ("True", "Chosen") and "198.51.100.99" in cond.message
