"""The plan rendered as k3s keys and k0s pieces, read by the stand-in k3s and k0s (contract A9, B5).

The stand-ins parse config.yaml / k0s.yaml with a real YAML reader, warn on unknown
keys as k3s does, report node-ip on the Node's status.addresses, and embed
spec.api.address in k0s join tokens.
"""

from __future__ import annotations

import base64
import gzip
import re

import yaml

from agent.model.network import NetworkPlan
from agent.network.confirm import confirm
from agent.runtime.network_flags import k0s_api_spec, k0s_kubelet_args, k3s_network_keys
from tests.runtime.boxes import Box
from tests.runtime.test_standins_contract import Service, exe, node, services, write
from tests.runtime.test_standins_contract import k3s as box

__all__ = ["box", "services"]  # fixtures, used by name

PLAN = NetworkPlan(
    interface="bond0",
    internal=("198.51.100.7", "2001:db8:51::7"),
    external=("203.0.113.9",),
    advertise_address="198.51.100.7",
    tls_sans=("198.51.100.7", "2001:db8:51::7", "api.edge.example"),
    rule="network.selectors.0 (kind=bond)",
)


def test_k3s_keys_per_role() -> None:
    assert k3s_network_keys(None, "server") == {}
    assert k3s_network_keys(PLAN, "agent") == {
        "node-ip": ["198.51.100.7", "2001:db8:51::7"],
        "node-external-ip": ["203.0.113.9"],
        "flannel-iface": "bond0",
    }
    server = k3s_network_keys(PLAN, "server")
    assert server["advertise-address"] == "198.51.100.7"
    assert server["tls-san"] == ["198.51.100.7", "2001:db8:51::7", "api.edge.example"]


def test_k3s_takes_every_key_and_the_node_shows_the_chosen_address(box: Box, services: list[Service]) -> None:
    keys = {"node-name": "n1", **k3s_network_keys(PLAN, "server")}
    write(box, "/etc/rancher/k3s/config.yaml", yaml.safe_dump(keys))
    s = Service(box, [exe(box, "k3s"), "server"])
    services.append(s)
    assert s.ready()
    ok, why = confirm(PLAN, box.run(exe(box, "k3s"), "kubectl", "get", "node", "n1", "-o", "json").stdout)
    assert ok, why
    assert "Unknown flag" not in s.stop()


def test_a_node_on_another_address_is_not_confirmed(box: Box, services: list[Service]) -> None:
    write(box, "/etc/rancher/k3s/config.yaml", "node-name: n1\n")  # no node-ip: k3s takes its default address
    s = Service(box, [exe(box, "k3s"), "server"])
    services.append(s)
    assert s.ready()
    ok, why = confirm(PLAN, box.run(exe(box, "k3s"), "kubectl", "get", "node", "n1", "-o", "json").stdout)
    assert not ok and "InternalIP is 10.0.0.1, not 198.51.100.7" in why


def test_k0s_controller_tokens_carry_the_chosen_api_address_and_the_worker_its_node_ip(
    box: Box, services: list[Service]
) -> None:
    cfg = {"apiVersion": "k0s.k0sproject.io/v1beta1", "kind": "ClusterConfig", "spec": {"api": k0s_api_spec(PLAN)}}
    write(box, "/etc/k0s/k0s.yaml", yaml.safe_dump(cfg))
    s = Service(box, [exe(box, "k0s"), "controller", "--enable-worker", "--kubelet-extra-args=--hostname-override=n1"])
    services.append(s)
    assert s.ready()
    token = box.run(exe(box, "k0s"), "token", "create", "--role=worker").stdout.strip()
    kubeconfig = gzip.decompress(base64.b64decode(token)).decode()
    assert re.search(r"server: https://198\.51\.100\.7:6443", kubeconfig), kubeconfig
    assert k0s_api_spec(PLAN)["sans"] == ["198.51.100.7", "2001:db8:51::7", "api.edge.example"]
    assert k0s_kubelet_args(PLAN) == ["--node-ip=198.51.100.7,2001:db8:51::7"]


def test_k0s_worker_install_keeps_the_node_ip_and_the_node_shows_it(box: Box, services: list[Service]) -> None:
    kubelet = " ".join(["--hostname-override=n1", *k0s_kubelet_args(PLAN)])
    argv = [exe(box, "k0s"), "controller", "--single", f"--kubelet-extra-args={kubelet}"]
    s = Service(box, argv)
    services.append(s)
    assert s.ready()
    doc = node(box, "n1", "k0s")
    addresses = [a["address"] for a in doc["status"]["addresses"] if a["type"] == "InternalIP"]  # type: ignore[index]
    assert addresses == ["198.51.100.7", "2001:db8:51::7"]
