"""Prometheus lines for hardware health, from the controller's ``health`` status section.

Names follow node-exporter / smartctl_exporter / DCGM habits: base units in the name
(``_celsius``, ``_ratio``), counters end in ``_total``. A value a device does not report has
no series; an unreadable device shows as ``edge_agent_health_device_readable 0``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from agent.api.exposition import Family, Kind
from agent.status import StatusBoard

Series = tuple[str, Kind, str, str, Iterable[tuple[str, Any]]]  # name, type, help, label, (label value, value)


def _family(name: str, kind: Kind, help_text: str, label: str, values: Iterable[tuple[str, Any]]) -> Iterator[str]:
    rows = [(k, v) for k, v in values if v is not None]
    if not rows:
        return
    family = Family(name, kind, help_text)
    for key, v in rows:
        family.add(v, {label: key})
    yield from family.lines()


def _pct(v: Any) -> float | None:
    return None if v is None else v / 100


def _hours(v: Any) -> int | None:
    return None if v is None else v * 3600


def _nvme(rows: list[dict[str, Any]]) -> Iterator[str]:
    def col(key: str, f: Any = None) -> list[tuple[str, Any]]:
        return [(r["device"], f(r.get(key)) if f else r.get(key)) for r in rows]

    fams: list[Series] = [
        (
            "edge_agent_nvme_temperature_celsius",
            "gauge",
            "SMART composite temperature.",
            "device",
            col("temperature_celsius"),
        ),
        (
            "edge_agent_nvme_hwmon_temperature_celsius",
            "gauge",
            "Kernel hwmon temperature (temp1).",
            "device",
            col("hwmon_celsius"),
        ),
        (
            "edge_agent_nvme_percentage_used_ratio",
            "gauge",
            "Share of rated endurance used (can exceed 1).",
            "device",
            col("percent_used", _pct),
        ),
        (
            "edge_agent_nvme_available_spare_ratio",
            "gauge",
            "Remaining spare capacity.",
            "device",
            col("avail_spare", _pct),
        ),
        (
            "edge_agent_nvme_available_spare_threshold_ratio",
            "gauge",
            "Spare threshold set by the vendor.",
            "device",
            col("spare_thresh", _pct),
        ),
        (
            "edge_agent_nvme_critical_warning",
            "gauge",
            "SMART critical warning bits (0: none).",
            "device",
            col("critical_warning"),
        ),
        (
            "edge_agent_nvme_media_errors_total",
            "counter",
            "Unrecovered data integrity errors.",
            "device",
            col("media_errors"),
        ),
        (
            "edge_agent_nvme_error_log_entries_total",
            "counter",
            "Error information log entries.",
            "device",
            col("num_err_log_entries"),
        ),
        (
            "edge_agent_nvme_unsafe_shutdowns_total",
            "counter",
            "Shutdowns without a shutdown notification.",
            "device",
            col("unsafe_shutdowns"),
        ),
        (
            "edge_agent_nvme_power_on_seconds_total",
            "counter",
            "Power-on time (SMART reports hours).",
            "device",
            col("power_on_hours", _hours),
        ),
    ]
    for fam in fams:
        yield from _family(*fam)


def _gpus(rows: list[dict[str, Any]]) -> Iterator[str]:
    def col(key: str) -> list[tuple[str, Any]]:
        return [(r["address"], r.get(key)) for r in rows]

    yield from _family(
        "edge_agent_gpu_temperature_celsius", "gauge", "GPU core temperature.", "gpu", col("temperature_celsius")
    )
    ecc = [
        ("uncorrected", "volatile", "ecc_uncorrected_volatile"),
        ("uncorrected", "aggregate", "ecc_uncorrected_aggregate"),
        ("corrected", "volatile", "ecc_corrected_volatile"),
    ]
    errors = Family(
        "edge_agent_gpu_ecc_errors_total", "counter", "ECC errors (volatile: since driver load; aggregate: lifetime)."
    )
    for r in rows:
        for t, s, k in ecc:
            if r.get(k) is not None:
                errors.add(r[k], {"gpu": r["address"], "type": t, "scope": s})
    if errors.samples:
        yield from errors.lines()
    pages = Family("edge_agent_gpu_retired_pages_total", "counter", "Framebuffer pages retired, by cause.")
    for r in rows:
        for c, k in (("single_bit_ecc", "retired_pages_single_bit"), ("double_bit_ecc", "retired_pages_double_bit")):
            if r.get(k) is not None:
                pages.add(r[k], {"gpu": r["address"], "cause": c})
    if pages.samples:
        yield from pages.lines()
    yield from _family(
        "edge_agent_gpu_retired_pages_pending",
        "gauge",
        "1 when pages wait for a GPU reset to retire.",
        "gpu",
        col("retired_pages_pending"),
    )


def _nics(rows: list[dict[str, Any]]) -> Iterator[str]:
    def col(key: str) -> list[tuple[str, Any]]:
        return [(r["name"], r.get(key)) for r in rows]

    ratio = [
        (
            r["name"],
            round(r["speed_mbps"] / r["expected_mbps"], 4) if r.get("speed_mbps") and r.get("expected_mbps") else None,
        )
        for r in rows
    ]
    yield from _family("edge_agent_nic_carrier", "gauge", "1 when the port has a link.", "nic", col("carrier"))
    yield from _family(
        "edge_agent_nic_carrier_changes_total",
        "counter",
        "Carrier transitions (2 per flap).",
        "nic",
        col("carrier_changes"),
    )
    yield from _family(
        "edge_agent_nic_link_flaps_last_hour",
        "gauge",
        "Link down/up cycles in the last hour.",
        "nic",
        col("flaps_last_hour"),
    )
    yield from _family(
        "edge_agent_nic_speed_ratio", "gauge", "Link speed over the speed the port should run at.", "nic", ratio
    )


def _readable(section: dict[str, Any]) -> Iterator[str]:
    rows = [
        (kind, r[key], 0 if r.get("unknown") else 1)
        for kind, group, key in (("nvme", "nvme", "device"), ("gpu", "gpus", "address"), ("nic", "nics", "name"))
        for r in section.get(group, [])
    ]
    if rows:
        readable = Family(
            "edge_agent_health_device_readable", "gauge", "1 when the last poll could read the device's health."
        )
        for kind, dev, v in rows:
            readable.add(v, {"kind": kind, "device": dev})
        yield from readable.lines()


def metrics(board: StatusBoard) -> Iterator[str]:
    section = board.sections().get("health")
    if not isinstance(section, dict):
        return
    polls = Family("edge_agent_health_polls_total", "counter", "Hardware health polls since the agent started.")
    yield from polls.add(int(section.get("polls", 0))).lines()
    took = Family("edge_agent_health_poll_seconds", "gauge", "Duration of the last hardware health poll.")
    yield from took.add(float(section.get("last_poll_seconds", 0.0))).lines()
    yield from _readable(section)
    yield from _nvme(section.get("nvme", []))
    yield from _gpus(section.get("gpus", []))
    yield from _nics(section.get("nics", []))
