"""The box itself: identity (machine id, DMI or device tree), CPU, memory, kernel, OS, boot mode.

Files under /etc are read under ``root`` (the OS installed under --root, ``Paths.root``);
/proc is read under ``kernel_root`` ("/" on a box, a scratch tree in tests), because it
describes the running kernel wherever the agent's root is; sysfs is read at /sys (which
umockdev redirects to a recorded tree).
"""

from __future__ import annotations

import os
import re
import shlex

import pyudev

from agent.inventory.records import BootMode, System
from agent.inventory.sysfs import Fields, listdir, read_raw

DMI = "class/dmi/id"
EFI = "firmware/efi"
DT_MODEL = "firmware/devicetree/base/model"
_ARM_IMPLEMENTERS = {"0x41": "ARM", "0x4e": "NVIDIA", "0x51": "Qualcomm", "0x61": "Apple", "0xc0": "Ampere"}
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd08": "Cortex-A72",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd42": "Cortex-A78AE",
    "0xd49": "Neoverse-N2",
    "0xd4f": "Neoverse-V2",
}
_MACHINE_ID = re.compile(r"^[0-9a-f]{32}$")


def _cpu_model(f: Fields) -> str | None:
    text = f.document("proc/cpuinfo", "cpu_model", limit=16384)
    if text is None:
        return None
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip(), value.strip())
    if info.get("model name"):
        return info["model name"]
    impl, part = info.get("CPU implementer"), info.get("CPU part")
    if impl and part:
        vendor = _ARM_IMPLEMENTERS.get(impl, f"implementer {impl}")
        return f"{vendor} {_ARM_PARTS.get(part, f'part {part}')}"
    for key in ("Hardware", "Processor", "cpu"):
        if info.get(key):
            return info[key]
    f.note("cpu_model", "proc/cpuinfo: no 'model name' or CPU implementer/part")
    return None


def _memory(f: Fields) -> int | None:
    text = f.document("proc/meminfo", "memory_bytes")
    if text is None:
        return None
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    if m is None:
        f.note("memory_bytes", "proc/meminfo: no MemTotal line")
        return None
    return int(m.group(1)) * 1024


def _os_release(root: str, problems: dict[str, str]) -> str | None:
    for rel in ("etc/os-release", "usr/lib/os-release"):
        f = Fields(root, {})
        text = f.document(rel, "os_release")
        if text is None:
            continue
        for line in text.splitlines():
            if line.startswith("PRETTY_NAME="):
                try:
                    value = " ".join(shlex.split(line.partition("=")[2]))
                except ValueError:
                    problems["os_release"] = f"{rel}: PRETTY_NAME is not valid shell quoting"
                    return None
                return value or None
        problems["os_release"] = f"{rel}: no PRETTY_NAME"
        return None
    problems["os_release"] = "etc/os-release and usr/lib/os-release: absent or unreadable"
    return None


def _machine_id(f: Fields) -> str | None:
    value = f.text("etc/machine-id", "machine_id")
    if value is not None and not _MACHINE_ID.match(value):
        f.note("machine_id", "etc/machine-id: not 32 lower-case hex digits")
        return None
    return value


def _topology(udev: pyudev.Context, problems: dict[str, str]) -> tuple[int | None, int | None, int | None]:
    packages: set[int] = set()
    cores: set[tuple[int, int]] = set()
    threads = 0
    unreadable = 0
    cpu_dir = f"{udev.sys_path}/devices/system/cpu"
    for name in listdir(cpu_dir):
        if not re.fullmatch(r"cpu\d+", name):
            continue
        f = Fields(f"{cpu_dir}/{name}")
        if f.integer("online", "online", required=False) == 0:
            continue
        pkg = f.integer("topology/physical_package_id", "sockets")
        core = f.integer("topology/core_id", "cores")
        threads += 1
        if pkg is None or core is None:
            unreadable += 1
            continue
        packages.add(pkg)
        cores.add((pkg, core))
    if threads == 0:
        problems["threads"] = "no online CPU found in sysfs"
        return None, None, None
    if unreadable:
        reason = f"topology unreadable for {unreadable} of {threads} CPUs"
        problems["sockets"] = problems["cores"] = reason
        return None, None, threads
    return len(packages), len(cores), threads


def _boot_mode(sys_root: str, arch: str | None, problems: dict[str, str]) -> BootMode | None:
    if os.path.isdir(f"{sys_root}/{EFI}"):
        return "uefi"
    if arch in ("x86_64", "i686", "i386"):
        return "bios"
    problems["boot_mode"] = "no EFI runtime interface and not a PC BIOS platform"
    return None


def collect_system(udev: pyudev.Context, root: str, kernel_root: str = "/") -> System:
    problems: dict[str, str] = {}
    host = Fields(root, problems)
    kernel = Fields(kernel_root, problems)
    sys_root = udev.sys_path
    dmi_dir, dt_model = f"{sys_root}/{DMI}", f"{sys_root}/{DT_MODEL}"
    dmi = Fields(dmi_dir, problems)
    vendor = product = serial = board_vendor = board_name = None
    if os.path.isdir(dmi_dir):
        vendor = dmi.text("sys_vendor", "vendor")
        product = dmi.text("product_name", "product")
        serial = dmi.text("product_serial", "serial")
        board_vendor = dmi.text("board_vendor", "board_vendor")
        board_name = dmi.text("board_name", "board_name")
    else:
        reason = "no DMI table (device-tree system)" if os.path.exists(dt_model) else "no DMI table"
        raw, why = read_raw(dt_model) if os.path.exists(dt_model) else (None, None)
        text = raw.decode("utf-8", "replace").replace("\x00", "").strip() if raw else None
        product = text or None
        if product is None:
            problems["product"] = f"{reason}: device-tree model {why or 'empty'}" if why else reason
        for field in ("vendor", "serial", "board_vendor", "board_name"):
            problems[field] = reason
    arch = kernel.text("proc/sys/kernel/arch", "architecture", required=False) or os.uname().machine
    sockets, cores, threads = _topology(udev, problems)
    return System(
        machine_id=_machine_id(host),
        vendor=vendor,
        product=product,
        serial=serial,
        board_vendor=board_vendor,
        board_name=board_name,
        cpu_model=_cpu_model(kernel),
        sockets=sockets,
        cores=cores,
        threads=threads,
        memory_bytes=_memory(kernel),
        kernel=kernel.text("proc/sys/kernel/osrelease", "kernel"),
        os_release=_os_release(root, problems),
        boot_mode=_boot_mode(sys_root, arch, problems),
        architecture=arch,
        problems=problems,
    )
