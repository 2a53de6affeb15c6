"""What the system tests read from a booted box: agentctl's JSON, unit state, polling."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from nspawn import Container

T = TypeVar("T")


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 0.25,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` and what was seen last
    (``describe()`` when given, else the last value)."""
    deadline = time.monotonic() + timeout
    last = probe()
    while last is None or not last:
        if time.monotonic() > deadline:
            seen = describe() if describe is not None else repr(last)
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen:\n{seen}", pytrace=False)
        time.sleep(interval)
        last = probe()
    return last


def status(box: Container) -> dict[str, Any] | None:
    """``agentctl status -o json`` inside the box; None while the agent does not answer (exit 2)."""
    res = box.sh("agentctl status -o json", check=False, timeout=20)
    if res.returncode not in (0, 1):
        return None
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def status_text(box: Container) -> str:
    res = box.sh("agentctl status", check=False, timeout=20)
    return f"`agentctl status` exit {res.returncode}:\n{res.stdout}{res.stderr}"


def condition(doc: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in (doc or {}).get("conditions", []):
        if c.get("type") == type_:
            return dict(c)
    return None


def unit_active(box: Container, unit: str) -> str:
    return box.sh(f"systemctl is-active {unit}", check=False).stdout.strip()


def first_boot(box: Container) -> bool:
    """Whether ConditionFirstBoot held on this boot (systemd-firstboot.service carries it)."""
    res = box.sh("systemctl show -P ConditionResult systemd-firstboot.service", check=False)
    return res.stdout.strip() == "yes"
