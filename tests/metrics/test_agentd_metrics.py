"""A real agentd's /metrics, with device names that need escaping, read by promtool and by
prometheus_client's parser (two readers that are not ours).

agentd runs under ``umockdev-run`` with the real recording of the dev VM plus a small tree of two
devices whose names hold a double quote and a backslash: a NIC ``q"b\\0`` (a legal Linux interface
name) and a GPU whose hwdb model name is ``Navi 31 "XTX" \\ Radeon RX 7900``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import __version__
from tests.conftest import unix_get
from tests.needs import need_tool
from tests.processes import stop_process

pytestmark = pytest.mark.umockdev

RECORDING = Path(__file__).resolve().parent.parent / "fixtures/recorded-firecracker-vm.umockdev"
NIC = 'q"b\\0'
GPU_MODEL = 'Navi 31 "XTX" \\ Radeon RX 7900'
ODD_TREE = f"""P: /devices/pci0000:00/0000:00:07.0
E: SUBSYSTEM=pci
E: DRIVER=e1000e
E: PCI_CLASS=20000
E: PCI_ID=8086:15B8
E: PCI_SLOT_NAME=0000:00:07.0
L: driver=../../../bus/pci/drivers/e1000e
A: class=0x020000
A: vendor=0x8086
A: device=0x15b8
A: numa_node=-1

P: /devices/pci0000:00/0000:00:07.0/net/{NIC}
E: SUBSYSTEM=net
E: INTERFACE={NIC}
E: IFINDEX=9
L: device=../../../0000:00:07.0
A: address=02:00:00:00:00:09
A: mtu=1500
A: operstate=up
A: carrier=1
A: carrier_changes=2
A: speed=1000
A: duplex=full
A: ifindex=9
A: iflink=9
A: type=1

P: /devices/pci0000:00/0000:00:08.0
E: SUBSYSTEM=pci
E: DRIVER=amdgpu
E: PCI_CLASS=30000
E: PCI_ID=1002:744C
E: PCI_SLOT_NAME=0000:00:08.0
E: ID_VENDOR_FROM_DATABASE=Advanced Micro Devices, Inc. [AMD/ATI]
E: ID_MODEL_FROM_DATABASE={GPU_MODEL}
L: driver=../../../bus/pci/drivers/amdgpu
A: class=0x030000
A: vendor=0x1002
A: device=0x744c
A: numa_node=-1
"""


@pytest.fixture(scope="module")
def metrics_text(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """/metrics of an agentd that has scanned the inventory and polled health once (one agentd for the module)."""
    tmp_path = tmp_path_factory.mktemp("agentd")
    umockdev_run = need_tool("umockdev-run", "umockdev")
    tree = tmp_path / "odd.umockdev"
    tree.write_text(ODD_TREE)
    root = tmp_path / "root"
    (root / "etc/edge-agent").mkdir(parents=True)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    sock = root / "run/edge-agent/agent.sock"
    log = tmp_path / "agentd.log"
    argv = [umockdev_run, "-d", str(RECORDING), "-d", str(tree), "--"]
    argv += [sys.executable, "-m", "agent.daemon", "run", "--root", str(root), "--log-format", "text"]
    proc = subprocess.Popen(argv, stderr=log.open("ab"))
    try:
        text = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _, body = unix_get(sock, "/metrics", timeout=2)
                text = body.decode()
                if status == 200 and "edge_agent_health_polls_total" in text and "edge_agent_gpu_info{" in text:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"no inventory and health in /metrics:\n{text}\n{log.read_text()[-3000:]}")
        for _ in range(3):
            unix_get(sock, "/v1/status")
        status, _, body = unix_get(sock, "/metrics")
        assert status == 200
        yield body.decode(), sock
    finally:
        stop_process(proc, grace=10)


def test_promtool_finds_nothing_to_say(metrics_text: tuple[str, Path]) -> None:
    text, _ = metrics_text
    promtool = need_tool("promtool", "prometheus")
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, ""), text


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _samples(families: dict[str, Any], name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for s in families[name].samples]


def test_an_independent_parser_reads_the_intended_values(metrics_text: tuple[str, Path]) -> None:
    text, sock = metrics_text
    families = _families(text)
    _, _, body = unix_get(sock, "/v1/inventory")
    inventory = json.loads(body)["inventory"]
    gpu = next(g for g in inventory["gpus"] if g["pci"]["address"] == "0000:00:08.0")
    assert GPU_MODEL in gpu["name"]
    # the label values come back byte for byte, quotes and backslashes included
    assert _samples(families, "edge_agent_gpu_info") == [
        (
            {
                "address": "0000:00:08.0",
                "vendor_id": "1002",
                "device_id": "744c",
                "driver": "amdgpu",
                "name": gpu["name"],
            },
            1.0,
        )
    ]
    assert _samples(families, "edge_agent_nic_link_speed_mbps") == [({"nic": NIC}, 1000.0)]
    assert ({"nic": NIC}, 1.0) in _samples(families, "edge_agent_nic_carrier")
    assert ({"kind": "nic", "device": NIC}, 1.0) in _samples(families, "edge_agent_health_device_readable")
    devices = dict((s["kind"], v) for s, v in _samples(families, "edge_agent_inventory_devices"))
    assert devices["nic_physical"] == 2 and devices["gpu"] == 1  # eth0 of the recording + q"b\0
    assert _samples(families, "edge_agent_build_info") == [({"version": __version__}, 1.0)]
    requests = {
        (s["method"], s["route"], s["code"]): v
        for s, v in ((smp.labels, smp.value) for smp in families["edge_agent_api_requests"].samples)
    }
    assert requests[("GET", "/v1/status", "200")] == 3
    assert families["edge_agent_api_requests"].type == "counter"
    assert families["edge_agent_api_request_duration_seconds"].type == "histogram"


def test_counters_and_only_counters_end_in_total(metrics_text: tuple[str, Path]) -> None:
    text, _ = metrics_text
    declared = {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}
    for name, kind in declared.items():
        assert name.endswith("_total") == (kind == "counter"), (name, kind)
    # the upgrade bundle's size is a gauge, so it no longer carries a counter's name
    assert declared["edge_agent_upgrade_size_bytes"] == "gauge"
    assert "edge_agent_upgrade_bytes_total" not in declared
