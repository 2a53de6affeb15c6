"""Storage status as /metrics text, read by promtool and an independent parser."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.model.storage import NamespaceStatus, StorageStatus
from agent.storage.mountunit import k3s_storage_keys
from agent.storage.report import metrics_lines, storage_condition

STATUS = StorageStatus(
    mode="lvm",
    namespaces=(
        NamespaceStatus(
            device="/dev/nvme1n1",
            serial='S64"HN\\A',
            nsid=1,
            state="prepared",
            target="edge-nvme",
            capacity_bytes=3840755982336,
            free_bytes=1000,
        ),
        NamespaceStatus(
            device="/dev/nvme0n1", serial="S0", nsid=1, state="skipped", reason="holds the root filesystem"
        ),
    ),
)


def test_metrics_per_namespace_read_by_an_independent_parser() -> None:
    text = "\n".join(metrics_lines(STATUS)) + "\n"
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    states = {
        (s.labels["serial"], s.labels["state"]): s.value for s in fams["edge_agent_storage_namespace_state"].samples
    }
    assert states[('S64"HN\\A', "prepared")] == 1 and states[("S0", "skipped")] == 1 and states[("S0", "prepared")] == 0
    (cap,) = fams["edge_agent_storage_namespace_capacity_bytes"].samples
    assert cap.value == 3840755982336 and cap.labels["device"] == "/dev/nvme1n1"
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert (r.returncode, r.stdout + r.stderr) == (0, ""), text


def test_local_path_points_at_the_first_prepared_volume() -> None:
    assert k3s_storage_keys([]) == {}
    keys = k3s_storage_keys(["/var/lib/edge-agent/volumes/S2-1", "/var/lib/edge-agent/volumes/S1-1"])
    assert keys == {"default-local-storage-path": "/var/lib/edge-agent/volumes/S1-1"}


def test_the_condition_is_an_error_only_when_a_namespace_failed() -> None:
    ok = storage_condition(STATUS)
    assert (ok.status, ok.reason, ok.message) == ("True", "Prepared", "1 prepared, 1 skipped")
    bad = StorageStatus(
        mode="lvm",
        namespaces=(
            NamespaceStatus(device="/dev/nvme2n1", serial="S2", nsid=1, state="failed", reason="pvcreate exited 5"),
        ),
    )
    cond = storage_condition(bad)
    assert (cond.status, cond.severity) == ("False", "error") and "/dev/nvme2n1: pvcreate exited 5" in cond.message
    assert storage_condition(None).reason == "Disabled"
