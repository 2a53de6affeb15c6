"""Two boxes from the test image meet a real registrar at first boot and form one cluster.

Box A gets its seed on the boot partition, box B as the systemd credential
``edge-agent.seed``. A enrolls first and initialises the cluster; B joins it.
Then the agent on A is killed, stalled, and the box rebooted: it comes back
without enrolling or installing again.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Boxes, dump_box
from fleetbox import (
    enrolled_and_ready,
    fleet_routes,
    seed_as_credential,
    seed_on_boot_partition,
    wait_enrolled_and_ready,
    wire,
)
from hostfleet import HostRegistrar, seed_toml
from nspawn import Container
from probes import condition, first_boot, status, unit_active, wait_for

pytestmark = [pytest.mark.system, pytest.mark.slow]

SITE = "lab-1"


@dataclass
class Cluster:
    a: Container
    b: Container
    token: str
    ready: dict[str, tuple[dict[str, Any], float]]


@pytest.fixture(scope="module")
def cluster(
    test_tree: Path, workdir: Path, registrar: HostRegistrar, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    failed_before = request.session.testsfailed
    made = Boxes(workdir)
    token = registrar.token(uses=2, site=SITE)
    seed = seed_toml(registrar.url, registrar.pin, token, site=SITE, labels={"example.com/rack": "r7"})
    a = made.make("e2e-a", test_tree, routes=fleet_routes())
    b = made.make("e2e-b", test_tree, routes=fleet_routes())
    for box in (a, b):
        wire(box, workdir / "standin-net")
    seed_on_boot_partition(a, seed)
    seed_as_credential(b, seed, workdir)
    ready = {}
    try:
        a.start()
        ready["e2e-a"] = wait_enrolled_and_ready(a)
        b.start()
        ready["e2e-b"] = wait_enrolled_and_ready(b)
        yield Cluster(a, b, token, ready)
    finally:
        if request.session.testsfailed > failed_before or not ready.get("e2e-b"):
            print(f"\n===== registrar log\n{registrar.log_tail()}")
            for box in made.running:
                dump_box(box)
        made.close()


def fleet_section(doc: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = doc["sections"]["fleet"]
    return section


def test_both_boxes_enroll_at_first_boot_and_report_ready(cluster: Cluster, registrar: HostRegistrar) -> None:
    for box in (cluster.a, cluster.b):
        doc, _took = cluster.ready[box.name]
        assert first_boot(box)
        assert condition(doc, "Enrolled")["status"] == "True"
        assert fleet_section(doc)["enrolled"] is True
        # the identity was made on the box: key private to root, certificate from the fleet CA
        mode = box.sh("stat -c %a /var/lib/edge-agent/identity").stdout.strip()
        assert mode == "700", mode
        # the detected hardware, as the technician sees it
        inventory = condition(doc, "InventoryReady")
        assert inventory is not None and inventory["status"] == "True", inventory
        assert doc["sections"]["inventory"]["scans"] >= 1
        text = box.sh("agentctl status", check=False).stdout
        for word in ("Enrolled", "NodeReady", doc["sections"]["inventory"]["summary"]):
            assert word in text, f"{box.name}: `agentctl status` does not show {word!r}:\n{text}"
    nodes = registrar.nodes()
    assert len(nodes) == 2, nodes
    assert {n["state"] for n in nodes} == {"approved"}, nodes
    assert {n["site"] for n in nodes} == {SITE}, nodes


def test_first_box_initialises_the_cluster_and_second_joins_it(cluster: Cluster, registrar: HostRegistrar) -> None:
    a_doc, b_doc = status(cluster.a), status(cluster.b)
    assert a_doc is not None and b_doc is not None
    fa, fb = fleet_section(a_doc), fleet_section(b_doc)
    assert (fa["role"], fa["cluster_init"]) == ("server", True), fa
    assert (fb["role"], fb["cluster_init"]) == ("agent", False), fb
    assert fa["cluster"] == fb["cluster"]
    assert fb["server_url"] == f"https://{cluster.a.link.box}:6443", fb
    assert a_doc["sections"]["kubernetes"]["ready"] is True
    assert b_doc["sections"]["kubernetes"]["ready"] is True
    # the server sees both nodes Ready in its cluster (stand-in k3s, real systemd units)
    for node in ("e2e-a", "e2e-b"):
        out = cluster.a.sh(f"k3s kubectl get node {node} -o json").stdout
        conditions = {c["type"]: c["status"] for c in json.loads(out)["status"]["conditions"]}
        assert conditions.get("Ready") == "True", (node, conditions)
    assert unit_active(cluster.a, "k3s.service") == "active"
    assert unit_active(cluster.b, "k3s-agent.service") == "active"


def test_the_seed_leaves_the_boot_partition_and_no_secret_is_logged(cluster: Cluster) -> None:
    boot = cluster.a.sh("cat /boot/edge-agent.toml 2>/dev/null || true").stdout
    assert cluster.token not in boot, "the plaintext bootstrap token is still on the boot partition"
    kept = cluster.a.sh("stat -c '%a %U' /var/lib/edge-agent/seed.toml", check=False).stdout.split()
    assert kept == ["600", "root"], f"the seed was not kept in the agent's protected state: {kept}"
    for box in (cluster.a, cluster.b):
        assert cluster.token not in box.journal(lines=5000), f"{box.name}: the bootstrap token is in the journal"
        assert cluster.token not in box.sh("agentctl status -o json").stdout


def _agent_pid(box: Container) -> int:
    return wait_for(f"{box.name}: agent MainPID", lambda: box.unit_pid("edge-agent.service"), 30)


def _restarts(box: Container) -> int:
    return int(box.sh("systemctl show -P NRestarts edge-agent.service").stdout.strip())


def _serial(box: Container) -> str:
    doc = status(box)
    assert doc is not None
    serial: str = fleet_section(doc)["cert_serial"]
    return serial


def test_agent_survives_kill_9(cluster: Cluster) -> None:
    box = cluster.a
    serial, restarts, pid = _serial(box), _restarts(box), _agent_pid(box)
    os.kill(pid, signal.SIGKILL)
    wait_for("a new agent process", lambda: box.unit_pid("edge-agent.service") not in (0, pid), 30)
    wait_for("the restarted agent enrolled and ready", lambda: enrolled_and_ready(status(box)), 30)
    assert _restarts(box) == restarts + 1
    assert _serial(box) == serial, "the agent enrolled again after a crash"


def test_watchdog_restarts_a_stalled_agent(cluster: Cluster) -> None:
    box = cluster.a
    watchdog_usec = int(box.sh("systemctl show -P WatchdogUSec edge-agent.service").stdout.strip() or 0)
    assert watchdog_usec > 0, "edge-agent.service has no WatchdogSec"
    restarts, pid = _restarts(box), _agent_pid(box)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGSTOP)  # alive but silent: only the watchdog can notice
    try:
        limit = watchdog_usec / 1e6 + 30  # WatchdogSec, then SIGABRT, TimeoutAbortSec, SIGKILL, RestartSec
        wait_for("systemd to replace the stalled agent", lambda: box.unit_pid("edge-agent.service") not in (0, pid),
                 limit, interval=0.5)  # fmt: skip
    finally:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGCONT)
    print(f"\n[timing] watchdog replaced the stalled agent after {time.monotonic() - t0:.1f}s")
    journal = box.journal("edge-agent.service", lines=400)
    assert "Watchdog timeout" in journal, journal[-2000:]
    assert _restarts(box) == restarts + 1
    wait_for("the agent answering again", lambda: enrolled_and_ready(status(box)), 30)


def test_reboot_does_not_enroll_or_install_again(cluster: Cluster, registrar: HostRegistrar) -> None:
    box = cluster.a
    serial = _serial(box)
    binary = box.sh("stat -c '%i %Y' /usr/local/bin/k3s").stdout.strip()
    machine_id = box.sh("cat /etc/machine-id").stdout.strip()
    nodes_before = registrar.nodes()
    box.reboot()
    assert box.boots == 2
    box.wait_booted()
    wait_enrolled_and_ready(box)
    assert not first_boot(box), "the second boot was treated as a first boot"
    assert box.sh("cat /etc/machine-id").stdout.strip() == machine_id
    assert _serial(box) == serial, "the box enrolled again after a reboot"
    assert box.sh("stat -c '%i %Y' /usr/local/bin/k3s").stdout.strip() == binary, "k3s was installed again"
    assert len(registrar.nodes()) == len(nodes_before)
    doc = status(cluster.b)
    assert enrolled_and_ready(doc), "the joined box lost its node across the server's reboot"
