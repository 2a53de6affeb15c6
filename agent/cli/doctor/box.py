"""Doctor checks on the box itself: the agent daemon and its socket, config, k3s/k0s, disk space."""

from __future__ import annotations

import asyncio
import grp
import os
import shutil
import socket
import stat
from pathlib import Path
from typing import Any

from agent.cli.doctor.findings import Finding
from agent.errors import ExecError
from agent.paths import Paths
from agent.runtime.base import NodeReadiness
from agent.runtime.diagnose import diagnose, mask
from agent.runtime.layout import K0S, K3S, RUNTIME_DATA_DIRS, SYSTEMD
from agent.runtime.systemd import Systemd
from agent.sysexec import DEFAULT_PATH, ProcessRunner, Runner

RUNTIME_UNITS = ("k3s", "k3s-agent", "k0scontroller", "k0sworker")
DISK_WARN, DISK_FAIL = 0.10, 0.03  # free fraction
MIB = 1024 * 1024


def check_socket(sock: Path, group: str) -> list[Finding]:
    """The local API socket: root and group only (0660), a socket at all."""
    try:
        st = sock.lstat()
    except FileNotFoundError:
        return [Finding("agent.socket", "warn", f"{sock} does not exist (the agent is not running)",
                        "systemctl start edge-agent; see journalctl -u edge-agent", str(sock))]  # fmt: skip
    if not stat.S_ISSOCK(st.st_mode):
        return [Finding("agent.socket", "fail", f"{sock} is not a socket", f"remove {sock} and restart edge-agent",
                        str(sock))]  # fmt: skip
    mode = st.st_mode & 0o777
    if mode & 0o007:
        return [Finding("agent.socket", "fail", f"{sock} has mode {mode:04o}: any local user can drive the agent",
                        f"chmod 0660 {sock} (the agent sets it at start: restart edge-agent)", str(sock))]  # fmt: skip
    try:
        owner_group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        owner_group = str(st.st_gid)
    note = "" if owner_group in (group, "root") else f" (group {owner_group}, expected {group})"
    status: Any = "warn" if note else "ok"
    return [Finding("agent.socket", status, f"{sock} is {mode:04o} group {owner_group}{note}",
                    f"chgrp {group} {sock}" if note else "", str(sock))]  # fmt: skip


def check_agent(status_doc: dict[str, Any] | None, why_down: str) -> list[Finding]:
    if status_doc is None:
        return [Finding("agent.running", "warn", f"the agent daemon is not answering: {why_down}; checking files only",
                        "systemctl status edge-agent; journalctl -u edge-agent -n 50")]  # fmt: skip
    agent = status_doc.get("agent", {})
    out = [Finding("agent.running", "ok", f"edge-agent {agent.get('version', '?')} answers (pid {agent.get('pid')})")]
    for c in status_doc.get("conditions", []):
        if c.get("status") != "True" and c.get("severity") != "info":
            check = "condition." + "".join(
                ch if ch.isascii() and ch.isalnum() else "_" for ch in str(c.get("type", "x")).lower()
            )
            out.append(Finding(check, "warn",
                               f"{c.get('type')} is {c.get('status')}/{c.get('reason')}: {c.get('message', '')}"
                               .rstrip(": "), "see agentctl status"))  # fmt: skip
    return out


def check_config(paths: Paths) -> tuple[list[Finding], Any]:
    """The merged config, or a failure per problem (file, key, what was expected)."""
    from agent.config import load_config
    from agent.errors import ConfigError

    try:
        loaded = load_config(paths)
    except ConfigError as exc:
        return [Finding("config.valid", "fail", str(p), "fix the file; `agentd check-config` shows every problem",
                        p.source) for p in exc.problems], None  # fmt: skip
    n = len(loaded.sources)
    return [Finding("config.valid", "ok", f"config valid ({loaded.digest}) from {n} file(s)")], loaded.config


def shell_runner() -> ProcessRunner:
    """Commands the technician runs: systemctl/journalctl get the caller's environment, as from the shell."""
    return ProcessRunner(path=os.environ.get("PATH", DEFAULT_PATH), base_env={**os.environ, "LC_ALL": "C"})


def installed_units(paths: Paths) -> list[str]:
    """The k3s/k0s units that have a unit file under /etc/systemd/system."""
    d = paths.under(SYSTEMD)
    return [u for u in RUNTIME_UNITS if (d / f"{u}.service").is_file()]


async def _unit_findings(runner: Runner, units: list[str], secrets: list[str]) -> list[Finding]:
    systemd = Systemd(runner)
    out: list[Finding] = []
    for unit in units:
        try:
            state = await systemd.show(unit)
        except ExecError as exc:
            out.append(Finding("runtime.unit", "skip", f"cannot ask systemd about {unit}: {exc}"))
            continue
        try:
            journal = [mask(line, secrets) for line in await systemd.journal(unit, 200)]
        except ExecError as exc:  # no journalctl (a minimal image), or it hangs: the unit state still counts
            journal = [f"journal unreadable: {exc}"]
        found = diagnose(journal, secrets)
        last = found.message if found else (journal[-1] if journal else "no journal lines")
        text = f"{unit}.service is {state.active}/{state.sub}, restarted {state.restarts}x"
        if state.active == "active" and not found:
            out.append(Finding("runtime.unit", "ok", text))
        elif state.active == "active":
            out.append(Finding("runtime.unit", "warn", text, "see the journal line below"))
        else:
            out.append(Finding("runtime.unit", "fail", text, f"systemctl status {unit}; journalctl -u {unit}"))
        out.append(Finding("runtime.journal", "warn" if found else "ok",
                           f"{unit}: {(found.reason + ': ') if found else 'last line: '}{last[:300]}",
                           f"journalctl -u {unit} -n 200" if found else ""))  # fmt: skip
    return out


async def _ask_node(paths: Paths, runner: Runner, unit: str, node: str) -> NodeReadiness:
    """The Ready condition straight from the API with the node's own kubeconfig, as the agent asks it."""
    from agent.runtime.kubectl import node_readiness

    layout = K3S if unit.startswith("k3s") else K0S
    argv = [str(paths.under(layout.binary)), "kubectl"]
    if unit in ("k3s-agent", "k0sworker"):
        argv += ["--kubeconfig", layout.kubelet_kubeconfig]
    return await node_readiness(runner, [*argv, "get", "node", node, "-o", "json"])


def _ready_finding(node: str, status: str, reason: str, message: str) -> Finding:
    if status == "True":
        return Finding("runtime.node_ready", "ok", f"node {node} is Ready")
    return Finding("runtime.node_ready", "fail", f"node {node} is not Ready: {status}/{reason} {message}".rstrip(),
                   "k3s kubectl describe node (or k0s kubectl) shows the kubelet's reason")  # fmt: skip


def check_runtime(
    paths: Paths, runner: Runner, kube: dict[str, Any] | None, secrets: list[str], node_name: str = ""
) -> list[Finding]:
    """The k3s/k0s unit, its last telling journal line, and the node's Ready condition (from the agent)."""
    named = str((kube or {}).get("unit") or "")
    units = [named] if named else installed_units(paths)
    if not units:
        dist = (kube or {}).get("distribution", "none")
        if dist in ("", "none"):
            return [Finding("runtime.unit", "skip", "no k3s/k0s unit installed and none assigned yet")]
        return [Finding("runtime.unit", "fail", f"{dist} is assigned but no unit is installed under {SYSTEMD}",
                        "see agentctl status (the Kubernetes condition says why)")]  # fmt: skip
    out = asyncio.run(_unit_findings(runner, units, secrets))
    if kube is not None and kube.get("node_name"):  # what the agent saw last
        ok = bool(kube.get("ready"))
        out.append(
            _ready_finding(str(kube["node_name"]), "True" if ok else "False", kube.get("ready_reason") or "?", "")
        )
        return out
    node = node_name or socket.gethostname()  # the agent is down: ask the API as the agent would
    binary = paths.under((K3S if units[0].startswith("k3s") else K0S).binary)
    if not binary.is_file():
        out.append(Finding("runtime.node_ready", "skip", f"{binary} is not installed: cannot ask about node {node}"))
        return out
    try:
        r = asyncio.run(_ask_node(paths, runner, units[0], node))
    except ExecError as exc:
        out.append(Finding("runtime.node_ready", "skip", f"cannot ask the API about node {node}: {exc}"))
        return out
    out.append(_ready_finding(node, r.status, r.reason, mask(r.message, secrets)))
    return out


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(paths: Paths) -> list[Finding]:
    """Free space where the agent keeps state and where k3s/k0s keep images (one finding per filesystem)."""
    out: list[Finding] = []
    seen: set[int] = set()
    for path in (paths.state_dir, paths.run_dir, *(paths.under(d) for d in RUNTIME_DATA_DIRS)):
        if not path.exists() and path not in (paths.state_dir, paths.run_dir):
            continue
        real = _existing(path)
        dev = real.stat().st_dev
        if dev in seen:
            continue
        seen.add(dev)
        usage = shutil.disk_usage(real)
        free = usage.free / usage.total if usage.total else 1.0
        text = f"{path}: {usage.free // MIB} MiB free of {usage.total // MIB} MiB ({free:.0%})"
        fix = "free space: old images (k3s crictl rmi --prune), old bundles under /var/lib/edge-agent/bundles"
        status: Any = "fail" if free < DISK_FAIL else "warn" if free < DISK_WARN else "ok"
        out.append(Finding("disk.free", status, text, fix if status != "ok" else "", str(path)))
    return out
