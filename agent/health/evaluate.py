"""Pure: readings + thresholds -> problems -> one condition per device kind.

``NvmeHealth``, ``GpuHealth`` and ``NicHealth`` are set only when the box has such devices.
Any problem makes the condition False with the most serious reason first; a device that could
not be read (and no problem elsewhere) makes it Unknown with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.health.readings import GpuHealth, NicHealth, NvmeHealth, Problem
from agent.model.conditions import ConditionStatus
from agent.model.config import HealthSection

# NVMe critical warning bits (NVMe base spec, SMART / Health log byte 0)
WARNING_BITS = {
    0: "available spare below threshold",
    1: "temperature above or below a threshold",
    2: "NVM subsystem reliability degraded",
    3: "media in read-only mode",
    4: "volatile memory backup failed",
    5: "persistent memory region read-only or unreliable",
}
# most serious first: the condition's reason is the first one present
RANK = (
    "NvmeCriticalWarning",
    "NvmeMediaErrors",
    "NvmeSpareLow",
    "NvmeWearHigh",
    "NvmeTemperatureHigh",
    "GpuEccErrors",
    "GpuRetiredPagesPending",
    "GpuTemperatureHigh",
    "LinkDown",
    "LinkFlapping",
    "LinkDegraded",
)
CONDITIONS = {"nvme": "NvmeHealth", "gpu": "GpuHealth", "nic": "NicHealth"}


def warning_text(bits: int) -> str:
    named = [text for bit, text in WARNING_BITS.items() if bits & (1 << bit)]
    return ", ".join(named) or f"bits 0x{bits:02x}"


def _unreadable(kind: str, device: str, message: str, reason: str | None) -> Problem:
    return Problem(kind=kind, device=device, reason=reason or "Unknown", message=message, unknown=True)


def nvme_problems(r: NvmeHealth, cfg: HealthSection) -> list[Problem]:
    def p(reason: str, message: str) -> Problem:
        return Problem(kind="nvme", device=r.device, reason=reason, message=f"{r.device}: {message}")

    if r.unknown:
        return [_unreadable("nvme", r.device, r.unknown, r.unknown_reason)]
    out: list[Problem] = []
    if r.critical_warning:
        out.append(
            p("NvmeCriticalWarning", f"critical warning 0x{r.critical_warning:02x}: {warning_text(r.critical_warning)}")
        )
    if r.media_errors:
        out.append(p("NvmeMediaErrors", f"{r.media_errors} media and data integrity error(s)"))
    if r.avail_spare is not None and r.spare_thresh is not None and r.avail_spare < r.spare_thresh:
        out.append(p("NvmeSpareLow", f"available spare {r.avail_spare}% below the drive's threshold {r.spare_thresh}%"))
    if r.percent_used is not None and r.percent_used >= cfg.nvme_percent_used_max:
        out.append(
            p("NvmeWearHigh", f"{r.percent_used}% of rated endurance used (threshold {cfg.nvme_percent_used_max}%)")
        )
    temp = r.temperature_celsius if r.temperature_celsius is not None else r.hwmon_celsius
    if temp is not None and temp >= cfg.nvme_temperature_max_celsius:
        out.append(p("NvmeTemperatureHigh", f"{temp:g} °C (threshold {cfg.nvme_temperature_max_celsius:g} °C)"))
    return out


def gpu_problems(r: GpuHealth, cfg: HealthSection) -> list[Problem]:
    def p(reason: str, message: str) -> Problem:
        return Problem(kind="gpu", device=r.address, reason=reason, message=f"GPU {r.address}: {message}")

    if r.unknown:
        return [_unreadable("gpu", r.address, r.unknown, r.unknown_reason)]
    out: list[Problem] = []
    if r.ecc_uncorrected_volatile is not None and r.ecc_uncorrected_volatile > cfg.gpu_uncorrected_ecc_max:
        out.append(p("GpuEccErrors", f"{r.ecc_uncorrected_volatile} uncorrected ECC error(s) since the driver loaded"))
    if r.retired_pages_pending:
        out.append(p("GpuRetiredPagesPending", "pages are pending retirement: reset the GPU"))
    if r.temperature_celsius is not None and r.temperature_celsius >= cfg.gpu_temperature_max_celsius:
        out.append(
            p("GpuTemperatureHigh", f"{r.temperature_celsius:g} °C (threshold {cfg.gpu_temperature_max_celsius:g} °C)")
        )
    return out


def nic_problems(r: NicHealth, cfg: HealthSection) -> list[Problem]:
    def p(reason: str, message: str) -> Problem:
        return Problem(kind="nic", device=r.name, reason=reason, message=f"{r.name}: {message}")

    if r.unknown:
        return [_unreadable("nic", r.name, r.unknown, r.unknown_reason)]
    out: list[Problem] = []
    if r.carrier is False and r.was_up:  # ports that never had a link (no cable) are not problems
        out.append(p("LinkDown", f"link lost (operstate {r.operstate})"))
    if r.flaps_last_hour is not None and r.flaps_last_hour >= cfg.link_flaps_per_hour_max:
        out.append(
            p(
                "LinkFlapping",
                f"{r.flaps_last_hour} link flap(s) in the last hour (threshold {cfg.link_flaps_per_hour_max})",
            )
        )
    if r.carrier and r.speed_mbps and r.expected_mbps and r.speed_mbps < r.expected_mbps:
        out.append(p("LinkDegraded", f"running at {r.speed_mbps} Mb/s, expected {r.expected_mbps} Mb/s"))
    return out


@dataclass(frozen=True)
class Verdict:
    type: str
    status: ConditionStatus
    reason: str
    message: str


def _rank(p: Problem) -> int:
    return RANK.index(p.reason) if p.reason in RANK else len(RANK)


def verdict(kind: str, devices: int, problems: Sequence[Problem]) -> Verdict:
    ctype = CONDITIONS[kind]
    mine = [p for p in problems if p.kind == kind]
    bad = sorted((p for p in mine if not p.unknown), key=_rank)
    unknown = [p for p in mine if p.unknown]
    if bad:
        more = unknown and f"; {len(unknown)} unreadable"
        return Verdict(ctype, "False", bad[0].reason, "; ".join(p.message for p in bad) + (more or ""))
    if unknown:
        return Verdict(ctype, "Unknown", unknown[0].reason, "; ".join(dict.fromkeys(p.message for p in unknown)))
    return Verdict(ctype, "True", "Healthy", f"{devices} device(s) healthy")
