"""Address choice on real interfaces: veths and a bridge in a network namespace this test creates.

Addresses and routes are set with `ip`; the inventory collector (udev + psutil +
/proc/net/route) and the choice run inside the namespace (`ip netns exec`, which
mounts the namespace's own /sys). Only addresses inside the namespace are used.
(Bonds and VLANs need kernel modules this machine's kernel may lack; they are
covered on generated inventories in test_choose.py, and here when available.)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.inventory.addresses import default_route_interfaces

REPO = Path(__file__).resolve().parents[2]


def ip(*args: str, check: bool = True) -> bool:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r.returncode == 0


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        why = "network namespaces need root and iproute2"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    name = f"edgehw-{secrets.token_hex(3)}"
    ip("netns", "add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def inside(ns: str, *args: str) -> None:
    ip("-n", ns, *args)


def build_box(ns: str) -> None:
    """mgmt0 holds the default route (192.0.2.10/24); data0 is the data port (198.51.100.7/24 and
    fd00:51::7/64); data1 has no address yet; cni0 + veth3f9a2c1b are CNI plumbing (10.42.0.1/24)."""
    inside(ns, "link", "set", "lo", "up")
    for a, b in (("mgmt0", "mgmt0-sw"), ("data0", "data0-sw"), ("data1", "data1-sw"), ("veth3f9a2c1b", "eth0-pod")):
        inside(ns, "link", "add", a, "type", "veth", "peer", "name", b)
        inside(ns, "link", "set", a, "up")
        inside(ns, "link", "set", b, "up")
    inside(ns, "link", "add", "cni0", "type", "bridge")
    inside(ns, "link", "set", "veth3f9a2c1b", "master", "cni0")
    inside(ns, "link", "set", "cni0", "up")
    inside(ns, "addr", "add", "192.0.2.10/24", "dev", "mgmt0")
    inside(ns, "addr", "add", "198.51.100.7/24", "dev", "data0")
    inside(ns, "addr", "add", "fd00:51::7/64", "dev", "data0", "nodad")
    inside(ns, "addr", "add", "10.42.0.1/24", "dev", "cni0")
    inside(ns, "route", "add", "default", "via", "192.0.2.1", "dev", "mgmt0")


def run_choice(ns: str, policy: dict[str, Any], role: str = "server") -> dict[str, Any]:
    r = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.network.netns_child", role, json.dumps(policy)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def test_inventory_in_the_namespace_sees_addresses_and_the_default_route(netns: str) -> None:
    build_box(netns)
    nics = {n["name"]: n for n in run_choice(netns, {})["nics"]}
    assert nics["mgmt0"]["default_route"] is True and nics["data0"]["default_route"] is False
    assert nics["cni0"]["kind"] == "bridge"
    assert "198.51.100.7/24" in nics["data0"]["addresses"] and "fd00:51::7/64" in nics["data0"]["addresses"]


def test_not_the_default_route_picks_the_data_port_dual_stack_not_the_management_port(netns: str) -> None:
    build_box(netns)
    out = run_choice(netns, {"selectors": [{"not_default_route": True}], "family": "both"})
    assert out["kind"] == "NetworkPlan", out
    assert out["choice"]["interface"] == "data0"
    assert out["k3s"]["node-ip"] == ["198.51.100.7", "fd00:51::7"]
    assert out["k3s"]["flannel-iface"] == "data0" and out["k3s"]["advertise-address"] == "198.51.100.7"
    assert out["k3s"]["tls-san"] == ["198.51.100.7", "fd00:51::7"]
    assert out["choice"]["rule"] == "network.selectors.0 (not_default_route=true)"


def test_cni_plumbing_is_never_a_node_address(netns: str) -> None:
    build_box(netns)
    out = run_choice(netns, {"selectors": [{"name": "cni*", "cidr": "10.42.0.0/16"}, {"name": "veth*"}]})
    assert out["kind"] == "NetworkPending" and out["choice"]["reason"] == "NoSelectorMatched", out
    out = run_choice(netns, {"selectors": [{"cidr": "192.0.2.0/24"}]}, role="agent")
    assert out["k3s"] == {"node-ip": ["192.0.2.10"], "flannel-iface": "mgmt0"}


def test_an_interface_without_its_address_yet_waits_instead_of_falling_back(netns: str) -> None:
    build_box(netns)
    policy = {"selectors": [{"name": "data1"}, {"name": "mgmt0"}]}
    out = run_choice(netns, policy)
    assert out["kind"] == "NetworkPending" and out["choice"]["reason"] == "NoAddressYet", out
    assert "data1" in out["choice"]["message"]
    inside(netns, "link", "set", "data1", "down")  # unplugged: nothing to wait for, the next selector decides
    assert run_choice(netns, policy)["choice"]["interface"] == "mgmt0"
    inside(netns, "link", "set", "data1", "up")
    inside(netns, "addr", "add", "203.0.113.77/24", "dev", "data1")  # DHCP came late
    out = run_choice(netns, policy)
    assert out["choice"]["interface"] == "data1" and out["k3s"]["node-ip"] == ["203.0.113.77"]


def test_a_vlan_is_selected_by_kind_where_the_kernel_has_8021q(netns: str) -> None:
    build_box(netns)
    if not ip(
        "-n", netns, "link", "add", "link", "data0", "name", "data0.100", "type", "vlan", "id", "100", check=False
    ):
        pytest.skip("this kernel cannot make VLAN interfaces (no 8021q); covered in test_choose.py")
    inside(netns, "link", "set", "data0.100", "up")
    inside(netns, "addr", "add", "203.0.113.5/24", "dev", "data0.100")
    out = run_choice(netns, {"selectors": [{"kind": "vlan"}]})
    assert out["choice"]["interface"] == "data0.100"


def test_default_routes_of_this_machine_match_ip_route() -> None:
    """The /proc reader agrees with iproute2 on this machine's own routing tables."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is not installed")
    want: set[str] = set()
    for family in ("-4", "-6"):
        r = subprocess.run(["ip", "-j", family, "route", "show", "default"], capture_output=True, text=True)
        routes = json.loads(r.stdout or "[]") if r.returncode == 0 else []
        want |= {x["dev"] for x in routes if x.get("dev") and x.get("type", "unicast") == "unicast"}
    assert default_route_interfaces() == want


def test_an_ipv6_default_route_counts_too(netns: str) -> None:
    build_box(netns)
    inside(netns, "addr", "add", "fd00:99::5/64", "dev", "data1", "nodad")
    inside(netns, "-6", "route", "add", "default", "via", "fd00:99::1", "dev", "data1")
    nics = {n["name"]: n["default_route"] for n in run_choice(netns, {})["nics"]}
    assert {name for name, default in nics.items() if default} == {"mgmt0", "data1"}
