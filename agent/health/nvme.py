"""NVMe health: the SMART / Health Information log page (02h) and the kernel's hwmon temperature.

The log comes from nvme-cli (``nvme smart-log /dev/nvmeX -o json``) through the subprocess seam
rather than the admin-passthru ioctl: the seam gives a timeout that kills a wedged call (an ioctl
on a dying drive can block the event loop's thread), nvme-cli decodes the 128-bit counters and
the vendor quirks, and tests substitute a stand-in program. Keys are nvme-cli 2.x's:
``critical_warning``, ``temperature`` (Kelvin), ``avail_spare``, ``spare_thresh``, ``percent_used``,
``media_errors``, ``num_err_log_entries``, ``unsafe_shutdowns``, ``power_on_hours``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from agent.errors import CommandNotFound, ExecError
from agent.health.readings import NvmeHealth
from agent.health.tools import tool_failure
from agent.sysexec import Runner

KELVIN = 273

_COUNTERS = (
    "percent_used",
    "avail_spare",
    "spare_thresh",
    "media_errors",
    "num_err_log_entries",
    "critical_warning",
    "unsafe_shutdowns",
    "power_on_hours",
)


def argv(device: str) -> tuple[str, ...]:
    return ("nvme", "smart-log", f"/dev/{device}", "-o", "json")


def _number(value: Any) -> int | None:
    """An integer from nvme-cli's JSON: a number, or a decimal string (128-bit counters)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_smart_log(device: str, text: str) -> NvmeHealth:
    """The reading of one controller from ``nvme smart-log -o json`` output."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return NvmeHealth(
            device=device,
            unknown=f"nvme smart-log printed no JSON for /dev/{device}: {exc}",
            unknown_reason="SmartLogGarbage",
        )
    if not isinstance(doc, dict) or "critical_warning" not in doc:
        return NvmeHealth(
            device=device,
            unknown=f"nvme smart-log for /dev/{device} has no critical_warning: not a SMART log",
            unknown_reason="SmartLogGarbage",
        )
    values: dict[str, Any] = {key: _number(doc.get(key)) for key in _COUNTERS}
    kelvin = _number(doc.get("temperature"))
    values["temperature_celsius"] = float(kelvin - KELVIN) if kelvin else None  # 0 K: no sensor
    return NvmeHealth(device=device, **values)


def hwmon_celsius(sys_root: Path, device: str) -> float | None:
    """temp1_input (millidegrees) of the controller's hwmon: under the controller (kernel >= 5.19)
    or under its PCI function (older kernels)."""
    base = sys_root / "class/nvme" / device
    for parent in (base, base / "device/hwmon"):
        try:
            names = sorted(n for n in os.listdir(parent) if n.startswith("hwmon"))
        except OSError:
            continue
        for name in names:
            try:
                raw = (parent / name / "temp1_input").read_text().strip()
            except OSError:
                continue
            if raw.lstrip("-").isdigit():
                return int(raw) / 1000.0
    return None


async def read_nvme(runner: Runner, device: str, sys_root: Path, timeout: float) -> NvmeHealth:
    hwmon = hwmon_celsius(sys_root, device)
    try:
        done = await runner.run(argv(device), timeout=timeout)
    except CommandNotFound:  # one message for every drive, so the condition says it once
        message = "nvme (nvme-cli) not found on PATH; NVMe SMART logs cannot be read"
        return NvmeHealth(device=device, hwmon_celsius=hwmon, unknown=message, unknown_reason="NvmeCliMissing")
    except ExecError as exc:
        reason, message = tool_failure(exc, "nvme", f"the SMART log of /dev/{device}", "NvmeCli")
        return NvmeHealth(device=device, hwmon_celsius=hwmon, unknown=message, unknown_reason=reason)
    return parse_smart_log(device, done.stdout).model_copy(update={"hwmon_celsius": hwmon})
