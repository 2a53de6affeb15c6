"""nvidia-smi enrichment of NVIDIA GPUs: name, memory, driver and CUDA version, UUID, MIG mode.

One ``nvidia-smi -q -x`` run through the subprocess seam, with a timeout: the
daemon's asyncio runner (:func:`query`), or a blocking one for a one-shot scan
(:func:`query_blocking`). Its absence, failure, hang or unparsable output leaves
the udev facts in place and records why under ``problems["nvidia"]``; it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from agent.errors import CommandFailed, CommandNotFound, CommandTimeout, ExecError
from agent.inventory.records import Gpu, NvidiaDetails

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET  # imported by parse_smi_xml: most boxes have no NVIDIA GPU

    from agent.inventory.blockingexec import BlockingRunner
    from agent.sysexec import Runner  # imports asyncio: not at run time, the one-shot has none

NVIDIA = "10de"
ARGV = ("nvidia-smi", "-q", "-x")


class SmiResult(NamedTuple):
    by_address: dict[str, NvidiaDetails]
    problem: str | None = None


def _text(node: ET.Element, path: str) -> str | None:
    found = node.find(path)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return value if value and value not in ("N/A", "[N/A]") else None


def _bus_id(raw: str) -> str | None:
    """'00000000:3B:00.0' -> '0000:3b:00.0' (sysfs spelling)."""
    m = re.fullmatch(r"([0-9a-fA-F]{4,8}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])", raw.strip())
    if m is None:
        return None
    return f"{m.group(1)[-4:]}:{m.group(2)}:{m.group(3)}.{m.group(4)}".lower()


def parse_smi_xml(text: str) -> SmiResult:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)  # noqa: S314 - trusted local tool output, no entities expected
    except ET.ParseError as exc:
        return SmiResult({}, f"nvidia-smi printed unparsable XML: {exc}")
    driver = _text(root, "driver_version")
    cuda = _text(root, "cuda_version")
    found: dict[str, NvidiaDetails] = {}
    for gpu in root.findall("gpu"):
        bus = _bus_id(gpu.get("id", "")) or _bus_id(_text(gpu, "pci/pci_bus_id") or "")
        if bus is None:
            continue
        mem = _text(gpu, "fb_memory_usage/total")
        mem_m = re.match(r"(\d+)\s*MiB", mem or "")
        found[bus] = NvidiaDetails(
            name=_text(gpu, "product_name"),
            uuid=_text(gpu, "uuid"),
            memory_mib=int(mem_m.group(1)) if mem_m else None,
            driver_version=driver,
            cuda_version=cuda,
            mig_mode=_text(gpu, "mig_mode/current_mig"),
        )
    return SmiResult(found)


def _failed(exc: ExecError, timeout: float) -> SmiResult:
    if isinstance(exc, CommandNotFound):
        return SmiResult({}, "nvidia-smi not found on PATH; udev facts only")
    if isinstance(exc, CommandTimeout):
        return SmiResult({}, f"nvidia-smi did not answer within {timeout:g}s and was killed")
    if isinstance(exc, CommandFailed):
        tail = exc.stderr_tail.splitlines()[-1:] or exc.stdout.strip().splitlines()[-1:] or [""]
        return SmiResult({}, f"nvidia-smi exited {exc.returncode}: {tail[0][:200]}")
    return SmiResult({}, f"nvidia-smi could not run: {exc}")


async def query(runner: Runner, timeout: float) -> SmiResult:
    try:
        done = await runner.run(ARGV, timeout=timeout)
    except ExecError as exc:
        return _failed(exc, timeout)
    return parse_smi_xml(done.stdout)


def query_blocking(runner: BlockingRunner, timeout: float) -> SmiResult:
    """:func:`query` for a process without an event loop (the one-shot scan)."""
    try:
        stdout = runner.run_blocking(ARGV, timeout=timeout)
    except ExecError as exc:
        return _failed(exc, timeout)
    return parse_smi_xml(stdout)


def gpu_addresses(gpus: Sequence[Gpu]) -> tuple[str, ...]:
    """PCI addresses of the NVIDIA GPUs: nvidia-smi runs only when there are some."""
    return tuple(g.pci.address for g in gpus if g.vendor_id == NVIDIA and g.pci)


def enrich(gpus: tuple[Gpu, ...], smi: SmiResult) -> tuple[Gpu, ...]:
    out: list[Gpu] = []
    for g in gpus:
        if g.vendor_id != NVIDIA or g.pci is None:
            out.append(g)
            continue
        details = smi.by_address.get(g.pci.address)
        if details is None:
            why = smi.problem or f"nvidia-smi does not list {g.pci.address}"
            out.append(g._replace(problems={**g.problems, "nvidia": why}))
            continue
        name = details.name or g.name
        if not name.startswith("NVIDIA"):
            name = f"NVIDIA {name}"
        out.append(g._replace(nvidia=details, name=name))
    return tuple(out)
