"""Prometheus lines for hardware health, from the controller's ``health`` status section.

Names follow node-exporter / smartctl_exporter / DCGM habits: base units in the name
(``_celsius``, ``_ratio``), counters end in ``_total``. A value a device does not report has
no series; an unreadable device shows as ``edge_agent_health_device_readable 0``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from agent.api.exposition import Family, Kind
from agent.status import StatusBoard


def _family(name: str, kind: Kind, help_text: str, label: str, values: Iterable[tuple[str, Any]]) -> Iterator[str]:
    family = Family(name, kind, help_text)
    for key, v in values:
        if v is not None:
            family.add(v, {label: key})
    yield from _emit(family)


def _emit(family: Family) -> Iterator[str]:
    """A family's lines, or none when no device reported it."""
    if family.samples:
        yield from family.lines()


def _pct(v: Any) -> float | None:
    return None if v is None else v / 100


def _hours(v: Any) -> int | None:
    return None if v is None else v * 3600


def _same(v: Any) -> Any:
    return v


# (metric name, type, help, reading key, conversion)
NVME: tuple[tuple[str, Kind, str, str, Callable[[Any], Any]], ...] = (
    ("edge_agent_nvme_temperature_celsius", "gauge", "SMART composite temperature.", "temperature_celsius", _same),
    (
        "edge_agent_nvme_hwmon_temperature_celsius",
        "gauge",
        "Kernel hwmon temperature (temp1).",
        "hwmon_celsius",
        _same,
    ),
    (
        "edge_agent_nvme_percentage_used_ratio",
        "gauge",
        "Share of rated endurance used (can exceed 1).",
        "percent_used",
        _pct,
    ),
    ("edge_agent_nvme_available_spare_ratio", "gauge", "Remaining spare capacity.", "avail_spare", _pct),
    (
        "edge_agent_nvme_available_spare_threshold_ratio",
        "gauge",
        "Spare threshold set by the vendor.",
        "spare_thresh",
        _pct,
    ),
    ("edge_agent_nvme_critical_warning", "gauge", "SMART critical warning bits (0: none).", "critical_warning", _same),
    ("edge_agent_nvme_media_errors_total", "counter", "Unrecovered data integrity errors.", "media_errors", _same),
    (
        "edge_agent_nvme_error_log_entries_total",
        "counter",
        "Error information log entries.",
        "num_err_log_entries",
        _same,
    ),
    (
        "edge_agent_nvme_unsafe_shutdowns_total",
        "counter",
        "Shutdowns without a shutdown notification.",
        "unsafe_shutdowns",
        _same,
    ),
    (
        "edge_agent_nvme_power_on_seconds_total",
        "counter",
        "Power-on time (SMART reports hours).",
        "power_on_hours",
        _hours,
    ),
)


def _nvme(rows: list[dict[str, Any]]) -> Iterator[str]:
    for name, kind, help_text, key, f in NVME:
        yield from _family(name, kind, help_text, "device", [(r["device"], f(r.get(key))) for r in rows])


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
    yield from _emit(errors)
    pages = Family("edge_agent_gpu_retired_pages_total", "counter", "Framebuffer pages retired, by cause.")
    for r in rows:
        for c, k in (("single_bit_ecc", "retired_pages_single_bit"), ("double_bit_ecc", "retired_pages_double_bit")):
            if r.get(k) is not None:
                pages.add(r[k], {"gpu": r["address"], "cause": c})
    yield from _emit(pages)
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
    readable = Family(
        "edge_agent_health_device_readable", "gauge", "1 when the last poll could read the device's health."
    )
    for kind, group, key in (("nvme", "nvme", "device"), ("gpu", "gpus", "address"), ("nic", "nics", "name")):
        for r in section.get(group, []):
            readable.add(0 if r.get("unknown") else 1, {"kind": kind, "device": r[key]})
    yield from _emit(readable)


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
