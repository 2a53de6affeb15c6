"""What the VM tier reads from a booted guest: agentctl's JSON, systemd timestamps, the boot timeline."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from qemu import Vm

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, describe: Callable[[], str]) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen:\n{describe()}", pytrace=False)
        time.sleep(1)


def agentctl_json(vm: Vm, *args: str) -> dict[str, Any] | None:
    """``agentctl ARGS -o json`` in the guest; None while the agent does not answer."""
    res = vm.sh("agentctl", *args, "-o", "json", timeout=60)
    if res.returncode not in (0, 1) or not res.stdout.strip():
        return None
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def condition(doc: dict[str, Any] | None, type_: str) -> str:
    for c in (doc or {}).get("conditions", []):
        if c.get("type") == type_:
            return str(c.get("status"))
    return ""


def status_text(vm: Vm) -> str:
    res = vm.sh("agentctl", "status", timeout=60)
    journal = vm.sh("journalctl", "-b", "-u", "edge-agent.service", "--no-pager", "-n", "40", timeout=60)
    return f"agentctl status exit {res.returncode}:\n{res.stdout}{res.stderr}\n{journal.stdout[-3000:]}"


def monotonic_s(vm: Vm, unit: str, prop: str) -> float:
    """A systemd monotonic timestamp of ``unit`` (empty: the manager) in seconds since the guest booted."""
    args = ["systemctl", "show", "-P", prop] + ([unit] if unit else [])
    return int(vm.sh(*args).stdout.strip() or "0") / 1e6


@dataclass
class Timeline:
    """Seconds after ``qemu start``: host clock for what the host sees, the guest's monotonic clock
    (which starts with the kernel) offset by when the kernel first spoke for what only the guest saw."""

    kernel: float
    systemd: float
    agent_ready: float
    enrolled: float
    node_ready: float

    def line(self, label: str) -> str:
        return (
            f"[boot] {label}: qemu start -> kernel {self.kernel:.1f}s -> systemd {self.systemd:.1f}s "
            f"-> agent READY {self.agent_ready:.1f}s -> enrolled {self.enrolled:.1f}s "
            f"-> node Ready {self.node_ready:.1f}s"
        )


def wait_enrolled_and_ready(vm: Vm, timeout: float = 420) -> tuple[dict[str, Any], Timeline]:
    """Wait for the guest, then for Enrolled and NodeReady (first time each is seen, host clock)."""
    vm.guest_up(timeout)
    seen: dict[str, float] = {}

    def probe() -> dict[str, Any] | None:
        doc = agentctl_json(vm, "status")
        now = time.monotonic() - vm.started_at
        for ctype in ("Enrolled", "NodeReady"):
            if condition(doc, ctype) == "True":
                seen.setdefault(ctype, now)
        return doc if len(seen) == 2 else None

    doc = wait_for(f"{vm.name} enrolled and its node Ready", probe, timeout, lambda: status_text(vm))
    kernel = vm.seen.get("kernel", vm.started_at) - vm.started_at
    tl = Timeline(
        kernel=kernel,
        systemd=kernel + monotonic_s(vm, "", "UserspaceTimestampMonotonic"),
        agent_ready=kernel + monotonic_s(vm, "edge-agent.service", "ActiveEnterTimestampMonotonic"),
        enrolled=seen["Enrolled"],
        node_ready=seen["NodeReady"],
    )
    return doc, tl
