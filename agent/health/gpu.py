"""NVIDIA GPU health from one ``nvidia-smi --query-gpu=... --format=csv,noheader,nounits`` call.

Values nvidia-smi cannot give for a card (``[N/A]``, ``[Not Supported]``, ``[Unknown Error]``)
become ``None``. XID events are not part of ``--query-gpu`` (they go to the kernel log), so they
are not read here. Absent, failing, hanging or garbled nvidia-smi marks every NVIDIA GPU unknown
with the reason; it never raises.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.errors import ExecError
from agent.health.readings import GpuHealth
from agent.health.tools import tool_failure
from agent.inventory.nvidia import _bus_id
from agent.sysexec import Runner

FIELDS = (
    "index",
    "pci.bus_id",
    "uuid",
    "temperature.gpu",
    "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.uncorrected.aggregate.total",
    "ecc.errors.corrected.volatile.total",
    "retired_pages.single_bit_ecc.count",
    "retired_pages.double_bit.count",
    "retired_pages.pending",
)
ARGV = ("nvidia-smi", f"--query-gpu={','.join(FIELDS)}", "--format=csv,noheader,nounits")


def _value(raw: str) -> str | None:
    v = raw.strip()
    return None if not v or v.startswith("[") or v in ("N/A", "Unknown Error") else v


def _int(raw: str) -> int | None:
    v = _value(raw)
    return int(v) if v is not None and v.isdigit() else None


def _pending(raw: str) -> bool | None:
    v = (_value(raw) or "").lower()
    return True if v == "yes" else False if v == "no" else None


def parse_query(text: str) -> dict[str, GpuHealth] | str:
    """GPU readings by PCI address, or why the output could not be read."""
    found: dict[str, GpuHealth] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split(",")
        if len(cols) != len(FIELDS):
            return f"nvidia-smi line {n} has {len(cols)} fields, expected {len(FIELDS)}: {line[:120]!r}"
        address = _bus_id(cols[1])
        if address is None:
            return f"nvidia-smi line {n}: {cols[1].strip()[:40]!r} is not a PCI bus id"
        temp = _value(cols[3])
        try:
            celsius = float(temp) if temp is not None else None
        except ValueError:
            celsius = None
        found[address] = GpuHealth(
            address=address,
            index=_int(cols[0]),
            uuid=_value(cols[2]),
            temperature_celsius=celsius,
            ecc_uncorrected_volatile=_int(cols[4]),
            ecc_uncorrected_aggregate=_int(cols[5]),
            ecc_corrected_volatile=_int(cols[6]),
            retired_pages_single_bit=_int(cols[7]),
            retired_pages_double_bit=_int(cols[8]),
            retired_pages_pending=_pending(cols[9]),
        )
    return found


async def read_gpus(runner: Runner, addresses: Sequence[str], timeout: float) -> tuple[GpuHealth, ...]:
    """Readings of the NVIDIA GPUs at ``addresses`` (one nvidia-smi call for all)."""
    if not addresses:
        return ()
    try:
        done = await runner.run(ARGV, timeout=timeout)
    except ExecError as exc:
        reason, message = tool_failure(exc, "nvidia-smi", "GPU health", "NvidiaSmi")
        return tuple(GpuHealth(address=a, unknown=message, unknown_reason=reason) for a in addresses)
    parsed = parse_query(done.stdout)
    if isinstance(parsed, str):
        return tuple(GpuHealth(address=a, unknown=parsed, unknown_reason="NvidiaSmiGarbage") for a in addresses)
    return tuple(
        parsed.get(a) or GpuHealth(address=a, unknown=f"nvidia-smi does not list {a}", unknown_reason="GpuNotListed")
        for a in addresses
    )
