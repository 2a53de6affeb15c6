"""Typed health readings and the ``health`` status section (data only). ``None`` means not reported;
``unknown`` says why a device could not be read at all (tool missing, timed out, garbage)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Reading(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NvmeHealth(_Reading):
    device: str = Field(description="controller name, e.g. nvme0")
    serial: str | None = None
    temperature_celsius: float | None = Field(None, description="SMART composite temperature")
    hwmon_celsius: float | None = Field(None, description="the kernel's hwmon temperature (temp1_input)")
    percent_used: int | None = None
    avail_spare: int | None = None
    spare_thresh: int | None = None
    media_errors: int | None = None
    num_err_log_entries: int | None = None
    critical_warning: int | None = None
    unsafe_shutdowns: int | None = None
    power_on_hours: int | None = None
    unknown: str | None = Field(None, description="why the SMART log could not be read")
    unknown_reason: str | None = None


class GpuHealth(_Reading):
    address: str = Field(description="PCI address, sysfs spelling")
    index: int | None = None
    uuid: str | None = None
    temperature_celsius: float | None = None
    ecc_uncorrected_volatile: int | None = None
    ecc_uncorrected_aggregate: int | None = None
    ecc_corrected_volatile: int | None = None
    retired_pages_single_bit: int | None = None
    retired_pages_double_bit: int | None = None
    retired_pages_pending: bool | None = None
    unknown: str | None = None
    unknown_reason: str | None = None


class NicHealth(_Reading):
    name: str
    operstate: str | None = None
    carrier: bool | None = None
    carrier_changes: int | None = None
    flaps_last_hour: int | None = Field(None, description="down/up cycles counted over the last hour")
    speed_mbps: int | None = None
    expected_mbps: int | None = Field(None, description="from [health] nic_expected_mbps, else fastest seen")
    was_up: bool = Field(False, description="the link has had carrier since the agent started")
    unknown: str | None = None
    unknown_reason: str | None = None


class Problem(_Reading):
    kind: str = Field(description="nvme | gpu | nic")
    device: str
    reason: str = Field(description="NvmeWearHigh, GpuEccErrors, LinkFlapping, ...")
    message: str
    unknown: bool = Field(False, description="the device could not be read (condition Unknown)")


class HealthReport(_Reading):
    """The ``health`` status section."""

    summary: str
    polled_at: str | None = None
    polls: int = 0
    last_poll_seconds: float = 0.0
    nvme: tuple[NvmeHealth, ...] = ()
    gpus: tuple[GpuHealth, ...] = ()
    nics: tuple[NicHealth, ...] = ()
    problems: tuple[Problem, ...] = ()
