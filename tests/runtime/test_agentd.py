"""The real daemon (agentd run --root) installs and starts k3s, and agentctl shows it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .boxes import BIN, kill_pod_shims, standin_binary, write_bundle


def wrappers(directory: Path, root: Path) -> None:
    """agentd passes programs only PATH and LC_ALL; these give the stand-ins their scratch root
    (the installed stand-in k3s infers it from where it was installed; the cluster directory
    defaults to <root>/var/lib/edge-standin/cluster for both)."""
    directory.mkdir()
    for prog in ("systemctl", "journalctl"):
        w = directory / prog
        w.write_text(
            f"#!/bin/sh\nexport EDGE_STANDIN_ROOT='{root}' EDGE_STANDIN_READY_DELAY=0\nexec '{BIN / prog}' \"$@\"\n"
        )
        w.chmod(0o755)


def agentctl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.agentctl", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_agentd_runs_k3s_and_agentctl_reports_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/edge-agent").mkdir(parents=True)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    (root / "etc/edge-agent/agent.toml").write_text(
        '[agent]\nnode_name = "edge-1"\n\n[kubernetes]\ndistribution = "k3s"\nnode_labels = { site = "lab" }\n'
    )
    write_bundle(root, "k3s", standin_binary())
    tools = tmp_path / "tools"
    wrappers(tools, root)
    env = {**os.environ, "PATH": f"{tools}:{os.path.dirname(sys.executable)}:/usr/bin:/bin"}
    log = (tmp_path / "agentd.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.daemon", "run", "--root", str(root), "--log-format", "text"],
        env=env,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        doc: dict[str, object] = {}
        while time.monotonic() < deadline:
            r = agentctl(root, "status", "-o", "json")
            if r.stdout.strip():
                doc = json.loads(r.stdout)
                if doc.get("sections", {}).get("kubernetes", {}).get("ready"):  # type: ignore[union-attr]
                    break
            time.sleep(0.5)
        kube = doc["sections"]["kubernetes"]  # type: ignore[index]
        assert kube["ready"] is True, json.dumps([kube, doc["conditions"]], indent=1)  # type: ignore[index]
        assert (kube["distribution"], kube["version"], kube["node_name"]) == ("k3s", "v1.33.1+k3s1", "edge-1")
        conds = {c["type"]: c["status"] for c in doc["conditions"]}  # type: ignore[index]
        assert [conds[t] for t in ("Installed", "Configured", "Running", "NodeReady")] == ["True"] * 4
        text = agentctl(root, "status").stdout
        assert "k3s v1.33.1+k3s1 server node edge-1: Ready" in text
        metrics = subprocess.run(
            ["curl", "-s", "--unix-socket", str(root / "run/edge-agent/agent.sock"), "http://x/metrics"],
            capture_output=True,
            text=True,
        ).stdout
        if metrics:  # curl is optional on the test host
            assert "edge_agent_kubernetes_node_ready 1" in metrics
        # no join token anywhere in what the API shows or the daemon logs
        token = (root / "var/lib/rancher/k3s/server/token").read_text().strip().rpartition(":")[2]
        assert token not in json.dumps(doc) and token not in (tmp_path / "agentd.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        subprocess.run([str(tools / "systemctl"), "stop", "k3s"], env=env, capture_output=True)
        kill_pod_shims(root)
