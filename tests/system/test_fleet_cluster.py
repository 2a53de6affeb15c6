"""Two boxes from the test image meet a real registrar at first boot and form one cluster.

Box A gets its seed on the boot partition, box B as the systemd credential
``edge-agent.seed``. A enrolls first and initialises the cluster; B joins it.
Then the agent on A is killed, stalled, and the box rebooted: it comes back
without enrolling or installing again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Boxes, dump_box
from fleetbox import (
    fleet_routes,
    seed_as_credential,
    seed_on_boot_partition,
    wait_enrolled_and_ready,
    wire,
)
from hostfleet import HostRegistrar
from nspawn import Container
from probes import condition, first_boot, status, status_text, unit_active, wait_for

from tests.registrar_process import seed_toml

pytestmark = [pytest.mark.system, pytest.mark.slow]

SITE = "lab-1"


@dataclass
class Cluster:
    a: Container
    b: Container
    token: str
    ready: dict[str, tuple[dict[str, Any], float]]
    boxes: Boxes


@pytest.fixture(scope="module")
def cluster(
    test_tree: Path, workdir: Path, registrar: HostRegistrar, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    """Box A boots and enrolls first (so it initialises the cluster), then box B boots."""
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
    try:
        a.start()
        got = Cluster(a, b, token, {"e2e-a": wait_enrolled_and_ready(a)}, made)
        b.start()
        b.wait_booted()
        yield got
    finally:
        if request.session.testsfailed > failed_before:
            print(f"\n===== registrar log\n{registrar.log_tail()}")
            for box in made.running:
                dump_box(box)
        made.close()


@pytest.fixture(scope="module")
def joined(cluster: Cluster) -> Cluster:
    """Box B enrolled, assigned to A's cluster, and its node Ready."""
    if "e2e-b" not in cluster.ready:
        cluster.ready["e2e-b"] = wait_enrolled_and_ready(cluster.b)
    return cluster


def site_nodes(registrar: HostRegistrar) -> list[dict[str, Any]]:
    """This module's boxes as the registrar lists them (other modules share the registrar)."""
    return [n for n in registrar.nodes() if n["site"] == SITE]


def fleet_section(doc: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = doc["sections"]["fleet"]
    return section


def check_enrolled_box(cluster: Cluster, box: Container) -> None:
    doc, _took = cluster.ready[box.name]
    assert first_boot(box)
    enrolled = condition(doc, "Enrolled")
    assert enrolled is not None and enrolled["status"] == "True", enrolled
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


def test_first_box_enrolls_at_first_boot_and_reports_ready(cluster: Cluster, registrar: HostRegistrar) -> None:
    check_enrolled_box(cluster, cluster.a)
    init = [n for n in site_nodes(registrar) if n["cluster_init"]]
    assert [(n["state"], n["role"]) for n in init] == [("approved", "server")], init
    # the unit the agent wrote for k3s passes the same verification as the image's own
    res = cluster.a.sh("systemd-analyze verify /etc/systemd/system/k3s.service", check=False)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr


def test_the_fleet_polls_the_box_over_mtls(cluster: Cluster, registrar: HostRegistrar) -> None:
    """`edge-registrar poll` reaches the box's remote API (mTLS, TCP 7443) at its address."""
    doc = json.loads(registrar.cli("poll", "-o", "json").stdout)
    rows = [r for r in doc["nodes"] if r["site"] == SITE and r["role"] == "server"]
    assert len(rows) == 1, doc
    row = rows[0]
    assert (row["address"], row["reachable"], row["health"]) == (f"{cluster.a.link.box}:7443", True, "healthy"), row
    assert row["k8s_ready"] == "True", row


def test_second_box_seeded_by_credential_enrolls_and_joins(joined: Cluster, registrar: HostRegistrar) -> None:
    check_enrolled_box(joined, joined.b)
    nodes = site_nodes(registrar)
    assert len(nodes) == 2, nodes
    assert {n["state"] for n in nodes} == {"approved"}, nodes


def test_first_box_initialises_the_cluster_and_second_joins_it(joined: Cluster) -> None:
    cluster = joined
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
    for box in (cluster.a, cluster.b):  # A from /boot, B from the credential edge-agent.seed
        kept = box.sh("stat -c '%a %U' /var/lib/edge-agent/seed.toml", check=False).stdout.split()
        assert kept == ["600", "root"], f"{box.name}: the seed was not kept in the agent's protected state: {kept}"
    assert cluster.b.sh("test -e /boot/edge-agent.toml", check=False).returncode != 0
    for box in (cluster.a, cluster.b):
        assert cluster.token not in box.journal(lines=5000), f"{box.name}: the bootstrap token is in the journal"
        assert cluster.token not in box.sh("agentctl status -o json", check=False).stdout


def timespan(text: str) -> float:
    """Seconds in a systemd time span as `systemctl show` prints it ("30s", "1min 30s", "500ms")."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
    found = re.findall(r"(\d+(?:\.\d+)?)(us|ms|min|s|h)", text)
    return sum(float(n) * units[u] for n, u in found)


def _agent_pid(box: Container) -> int:
    return wait_for(f"{box.name}: agent MainPID", lambda: box.unit_pid("edge-agent.service"), 30)


def _restarts(box: Container) -> int:
    return int(box.sh("systemctl show -P NRestarts edge-agent.service").stdout.strip())


def _identity(box: Container) -> str:
    """sha256 of the box's key and certificate: a new enrollment would change them."""
    return box.sh("cd /var/lib/edge-agent/identity && sha256sum key.pem cert.pem").stdout


def _registrar_serial(registrar: HostRegistrar, box: Container) -> str:
    mine = [n for n in site_nodes(registrar) if n["role"] == "server" and n["cluster_init"]]
    assert len(mine) == 1, mine
    serial: str = mine[0]["serial"]
    return serial


def test_agent_survives_kill_9(cluster: Cluster) -> None:
    box = cluster.a
    identity, restarts, pid = _identity(box), _restarts(box), _agent_pid(box)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for("a new agent process", lambda: box.unit_pid("edge-agent.service") not in (0, pid), 30)
    wait_enrolled_and_ready(box, 30, since=killed, what="kill -9")
    assert _restarts(box) == restarts + 1
    assert _identity(box) == identity, "the agent enrolled again after a crash"


def test_watchdog_restarts_a_stalled_agent(cluster: Cluster) -> None:
    box = cluster.a
    watchdog = timespan(box.sh("systemctl show -P WatchdogUSec edge-agent.service").stdout)
    assert watchdog > 0, "edge-agent.service has no WatchdogSec"
    restarts, pid = _restarts(box), _agent_pid(box)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGSTOP)  # alive but silent: only the watchdog can notice
    try:
        limit = watchdog + 30  # WatchdogSec, then SIGABRT, TimeoutAbortSec, SIGKILL, RestartSec
        wait_for("systemd to replace the stalled agent", lambda: box.unit_pid("edge-agent.service") not in (0, pid),
                 limit, interval=0.5)  # fmt: skip
    finally:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGCONT)
    print(f"\n[timing] watchdog replaced the stalled agent after {time.monotonic() - t0:.1f}s")
    journal = box.journal("edge-agent.service", lines=400)
    assert "Watchdog timeout" in journal, journal[-2000:]
    assert _restarts(box) == restarts + 1
    wait_enrolled_and_ready(box, 30, since=t0, what="SIGSTOP")


def test_reboot_does_not_enroll_or_install_again(cluster: Cluster, registrar: HostRegistrar) -> None:
    box = cluster.a
    identity, serial = _identity(box), _registrar_serial(registrar, box)
    binary = box.sh("stat -c '%i %Y' /usr/local/bin/k3s").stdout.strip()
    machine_id = box.sh("cat /etc/machine-id").stdout.strip()
    nodes_before = site_nodes(registrar)
    box.reboot()
    assert box.boots == 2
    wait_enrolled_and_ready(box, what="container start after reboot")
    assert not first_boot(box), "the second boot was treated as a first boot"
    assert box.sh("cat /etc/machine-id").stdout.strip() == machine_id
    assert _identity(box) == identity, "the box made a new key or certificate after a reboot"
    assert _registrar_serial(registrar, box) == serial, "the registrar issued a new certificate after a reboot"
    assert box.sh("stat -c '%i %Y' /usr/local/bin/k3s").stdout.strip() == binary, "k3s was installed again"
    assert len(site_nodes(registrar)) == len(nodes_before)


def test_a_clone_of_an_enrolled_box_does_not_pose_as_it(cluster: Cluster, registrar: HostRegistrar) -> None:
    """A golden image made from a box that had booted (machine id reset, identity left behind)
    makes its own identity and enrolls as a new node; it never uses the other box's key."""
    a = cluster.a
    a_identity, a_serial = _identity(a), _registrar_serial(registrar, a)
    a.stop()
    clone = cluster.boxes.make("e2e-c", a.root, routes=fleet_routes())
    (clone.root / "etc/machine-id").write_text("uninitialized\n")
    wire(clone, a.root.parent.parent / "standin-net-clone")
    seed_on_boot_partition(clone, seed_toml(registrar.url, registrar.pin, registrar.token(site=SITE), site=SITE))
    clone.start()
    clone.wait_booted()

    def reset_and_enrolled() -> dict[str, Any] | None:
        doc = status(clone)
        reset, enrolled = condition(doc, "IdentityReset"), condition(doc, "Enrolled")
        ok = reset and reset["status"] == "True" and enrolled and enrolled["status"] == "True"
        return doc if ok else None

    doc = wait_for("the clone to set the copied identity aside and enroll", reset_and_enrolled, 60,
                   describe=lambda: status_text(clone))  # fmt: skip
    reset = condition(doc, "IdentityReset")
    assert reset is not None and reset["reason"] == "ClonedImage", reset
    assert _identity(clone) != a_identity, "the clone kept the other box's key or certificate"
    nodes = site_nodes(registrar)
    init = [n for n in nodes if n["cluster_init"]]
    assert [n["serial"] for n in init] == [a_serial], "the first box's registration changed"
    assert len(nodes) == 3, nodes
