"""Runs the real collectors against the generated device trees of tests/fixtures/, inside umockdev.

Run as ``umockdev-wrapper python tests/inventory/hwbed.py MODE ...`` (the
tests do this through :func:`run_hwbed` in conftest). umockdev's preload
library redirects every /sys and /dev access of this process (libudev's and
our own ``open``) to a testbed built from ``tests/fixtures/<name>.umockdev``.
The testbed is driven through umockdev's GObject bindings (``python3-gi`` and
``gir1.2-umockdev-1.0`` from Debian), which this script borrows from the
system's dist-packages since the project's Python does not ship ``gi``.

Modes (each prints one JSON document on stdout):
  scan NAME[:SMI]...             inventory + labels of each fixture (SMI: nvidia-smi stand-in)
  local NAME[:SMI]...            `agentctl inventory --local` beside the daemon's document (pairscan.py)
  vanish                         devices removed between enumeration and reading
  hotplug                        controller + uevents: add/remove a GPU, NVMe and NIC
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.append("/usr/lib/python3/dist-packages")  # gi (python3-gi) for the umockdev bindings

import gi  # noqa: E402

gi.require_version("UMockdev", "1.0")
import pyudev  # noqa: E402
from gi.repository import UMockdev  # noqa: E402
from trees import TREES, fixture_path  # noqa: E402

from agent.inventory.collect import Collector  # noqa: E402
from agent.inventory.document import to_json  # noqa: E402
from agent.inventory.labels import node_labels  # noqa: E402
from agent.inventory.scan import Scanner  # noqa: E402
from agent.inventory.udevctx import udev_context  # noqa: E402
from agent.paths import Paths  # noqa: E402
from agent.sysexec import ProcessRunner  # noqa: E402

STANDINS = HERE / "standins"


def host_root(name: str, tb_root: Path, scratch: Path) -> tuple[Paths, str | None]:
    """Lay out the host facts umockdev cannot record: /etc, /proc under ``scratch``; /sys/firmware."""
    host = TREES[name]().host
    if host.efi:
        (tb_root / "sys/firmware/efi").mkdir(parents=True, exist_ok=True)
    if host.dt_model is not None:
        dt = tb_root / "sys/firmware/devicetree/base"
        dt.mkdir(parents=True, exist_ok=True)
        (dt / "model").write_bytes(host.dt_model.encode() + b"\0")
    files = {
        "etc/machine-id": host.machine_id + "\n",
        "etc/os-release": host.os_release,
        "proc/cpuinfo": host.cpuinfo,
        "proc/meminfo": f"MemTotal:       {host.mem_kb} kB\nMemFree:         1024 kB\n" if host.mem_kb else "",
        "proc/sys/kernel/osrelease": host.kernel + "\n",
        "proc/sys/kernel/arch": host.arch + "\n",
    }
    for rel, text in files.items():
        p = scratch / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return Paths(scratch), host.root_dev


def runner(smi: str, scratch: Path) -> ProcessRunner:
    first = STANDINS / smi if smi != "none" else scratch / "no-tools"
    first.mkdir(exist_ok=True)
    return ProcessRunner(path=f"{first}:/usr/bin:/bin")


def make_scanner(name: str, tb: Any, scratch: Path, smi: str = "none") -> Scanner:
    paths, root_dev = host_root(name, Path(tb.get_root_dir()), scratch)
    return Scanner(collector(paths, root_dev), runner(smi, scratch))


def collector(paths: Paths, root_dev: str | None) -> Collector:
    root = str(paths.root)
    return Collector(root, udev=udev_context(), root_dev=root_dev, addresses=dict, kernel_root=root)


def testbed(name: str) -> Any:
    tb = UMockdev.Testbed.new()
    tb.add_from_file(str(fixture_path(name)))
    return tb


def dump(inv: Any) -> dict[str, Any]:
    return {"inventory": inv.model_dump(mode="json"), "labels": node_labels(inv)}


async def mode_scan(args: list[str]) -> dict[str, Any]:
    """Each argument is NAME or NAME:SMI (SMI: which nvidia-smi stand-in, default none)."""
    out: dict[str, Any] = {}
    for arg in args:
        name, _, smi = arg.partition(":")
        smi = smi or "none"
        tb = testbed(name)
        with tempfile.TemporaryDirectory() as tmp:
            scanner = make_scanner(name, tb, Path(tmp), smi)
            inv = await scanner.scan(nvidia_timeout=0.5)
            out[arg] = dump(inv)
        del tb  # the next Testbed takes over UMOCKDEV_DIR
    return out


async def mode_local(args: list[str]) -> dict[str, Any]:
    """Each argument is NAME or NAME:SMI, as for mode_scan; the pair of pairscan.pair per fixture."""
    from pairscan import pair

    out: dict[str, Any] = {}
    for arg in args:
        name, _, smi = arg.partition(":")
        tb = testbed(name)
        with tempfile.TemporaryDirectory() as tmp:
            paths, _ = host_root(name, Path(tb.get_root_dir()), Path(tmp))
            tools = runner(smi or "none", Path(tmp)).path
            out[arg] = await asyncio.to_thread(pair, paths.root, tools, tb.get_root_dir())
        del tb
    return out


async def mode_vanish(args: list[str]) -> dict[str, Any]:
    """Enumerate, then remove devices before their attributes are read."""
    from agent.inventory.nic import nic_record
    from agent.inventory.pci import pci_device

    tb = testbed("gpu-server")
    udev = pyudev.Context()
    gpu = next(d for d in udev.list_devices(subsystem="pci") if d.sys_name == "0000:18:00.0")
    nic = next(d for d in udev.list_devices(subsystem="net") if d.sys_name == "eno2")
    tb.remove_device(gpu.sys_path)
    tb.remove_device(nic.sys_path)
    return {
        "pci": to_json(pci_device(gpu)),
        "nic": to_json(nic_record(nic, {}, {})),
    }


NEW_GPU = """P: /devices/pci0000:c9/0000:c9:00.0
E: SUBSYSTEM=pci
E: DRIVER=nvidia
E: PCI_CLASS=30200
E: PCI_ID=10DE:2330
E: ID_VENDOR_FROM_DATABASE=NVIDIA Corporation
E: ID_MODEL_FROM_DATABASE=GH100 [H100 SXM5 80GB]
L: driver=../../../bus/pci/drivers/nvidia
A: class=0x030200
A: vendor=0x10de
A: device=0x2330
A: numa_node=1
"""

NEW_NVME = """P: /devices/pci0000:c4/0000:c4:00.0
E: SUBSYSTEM=pci
E: DRIVER=nvme
L: driver=../../../bus/pci/drivers/nvme
A: class=0x010802
A: vendor=0x144d
A: device=0xa80a

P: /devices/pci0000:c4/0000:c4:00.0/nvme/nvme3
N: nvme3
E: SUBSYSTEM=nvme
E: MAJOR=240
E: MINOR=9
A: model=SAMSUNG MZQL23T8HCLS-00A07
A: serial=S64HNE0T599999
A: firmware_rev=GDC5602Q
A: transport=pcie
A: dev=240:9

P: /devices/pci0000:c4/0000:c4:00.0/nvme/nvme3/nvme3n1
N: nvme3n1
E: SUBSYSTEM=block
E: DEVTYPE=disk
E: MAJOR=259
E: MINOR=90
A: size=7501476528
A: nsid=1
A: queue/logical_block_size=4096
A: queue/physical_block_size=4096
A: dev=259:90
"""

NEW_NIC = """P: /devices/virtual/net/vxlan.calico
E: SUBSYSTEM=net
E: DEVTYPE=vxlan
E: INTERFACE=vxlan.calico
A: address=66:ee:00:00:00:01
A: mtu=1450
A: operstate=unknown
A: ifindex=40
A: iflink=40
A: type=1
"""


async def mode_hotplug(args: list[str]) -> dict[str, Any]:
    """The controller sees add/remove uevents and follows them (within a second each)."""
    from agent.context import AgentContext
    from agent.inventory.controller import InventoryController
    from agent.model.config import AgentConfig
    from agent.state import StateStore
    from agent.status import StatusBoard
    from agent.watch import Watch

    tb = testbed("gpu-server")
    loop = asyncio.get_running_loop()
    steps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        scanner = make_scanner("gpu-server", tb, Path(tmp))
        ctx = AgentContext(
            paths=Paths(Path(scanner.collector.root)),
            runner=scanner.runner,
            board=StatusBoard(),
            store=StateStore(Path(tmp) / "state.json"),
            config=Watch(AgentConfig()),
        )
        ctrl = InventoryController(ctx, scanner=scanner, monitor_source="udev", debounce=0.05)
        task = asyncio.create_task(ctrl.run())
        version, inv = await asyncio.wait_for(ctx.inventory.wait_newer(0), 5)

        async def step(label: str, action: Any) -> None:
            nonlocal version, inv
            started = loop.time()
            action()
            try:
                version, inv = await asyncio.wait_for(ctx.inventory.wait_newer(version), 5)
                waited: float | None = loop.time() - started
            except TimeoutError:
                waited = None
            steps.append(
                {
                    "step": label,
                    "seconds": waited,
                    "labels": node_labels(inv),
                    "gpus": [g["pci"]["address"] for g in inv.model_dump(mode="json")["gpus"] if g["pci"]],
                    "nvme": [c.name for c in inv.nvme],
                    "nics": [n.name for n in inv.nics],
                    "section": ctx.board.sections()["inventory"],
                }
            )

        def add(text: str) -> None:
            for block in text.strip().split("\n\n"):
                path = block.splitlines()[0][3:]
                tb.add_from_string(block + "\n")
                tb.uevent("/sys" + path, "add")

        def remove(path: str) -> None:
            tb.uevent(path, "remove")
            tb.remove_device(path)

        steps.append({"step": "start", "labels": node_labels(inv), "gpus": len(inv.gpus)})
        await step("add gpu", lambda: add(NEW_GPU))
        await step("add nvme", lambda: add(NEW_NVME))
        await step("add nic", lambda: add(NEW_NIC))
        await step("remove gpu", lambda: remove("/sys/devices/pci0000:17/0000:17:01.0/0000:18:00.0"))
        await step("remove nic", lambda: remove("/sys/devices/virtual/net/vxlan.calico"))
        conds = {c.type: c.status for c in ctx.board.conditions()}
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {"steps": steps, "conditions": conds, "hotplug_events": ctrl.hotplug_events}


MODES = {"scan": mode_scan, "local": mode_local, "vanish": mode_vanish, "hotplug": mode_hotplug}


def main() -> None:
    if "umockdev" not in os.environ.get("LD_PRELOAD", ""):
        sys.exit("hwbed.py must run under umockdev-wrapper (LD_PRELOAD=libumockdev-preload.so)")
    result = asyncio.run(MODES[sys.argv[1]](sys.argv[2:]))
    json.dump(result, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
