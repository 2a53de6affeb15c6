"""Runs the real health controller against the generated device trees of tests/fixtures/ (umockdev).

Run as ``umockdev-wrapper python tests/health/healthbed.py MODE`` (through :func:`run_healthbed`).
The device tree (hwmon temperatures, NIC carrier counters and speeds) comes from
tests/fixtures/<name>.umockdev via tests/inventory/hwbed.py; what ``nvme smart-log`` answers comes
from ``trees.SMART_LOGS`` (umockdev cannot answer NVMe admin commands), laid out for the ``nvme``
stand-in; GPU health comes from the nvidia-smi stand-ins. Between polls the harness changes sysfs
attributes with ``UMockdevTestbed.set_attribute`` and moves the controller's clock.

Modes (each prints one JSON document):
  links      gpu-server: poll, flap eno1 and drop ens1f0np0 to 10G, poll, an hour later, eno2 down
  failures   gpu-server with each broken tool in turn (missing, hanging, garbage, not NVMe)
  bench      bench box: CPU seconds per poll (process + children), for bench/health_bench.py
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
INVENTORY = HERE.parent / "inventory"
sys.path.insert(0, str(INVENTORY))

import hwbed  # noqa: E402  (adds gi to sys.path)
from trees import SMART_LOGS  # noqa: E402

from agent.context import AgentContext  # noqa: E402
from agent.health import metrics as health_metrics  # noqa: E402
from agent.health.controller import HealthController  # noqa: E402
from agent.model.config import AgentConfig, HealthSection  # noqa: E402
from agent.model.inventory import Inventory  # noqa: E402
from agent.state import StateStore  # noqa: E402
from agent.status import StatusBoard  # noqa: E402
from agent.sysexec import ProcessRunner  # noqa: E402
from agent.watch import Watch  # noqa: E402

NVME_STANDINS = HERE / "standins"
SMI_STANDINS = INVENTORY / "standins"
GARBAGE = '{\n  "critical_warning":0,\n  "temperature":3'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lay_out_logs(name: str, smart: Path, overrides: dict[str, str]) -> None:
    smart.mkdir(exist_ok=True)
    for dev, log in SMART_LOGS.get(name, {}).items():
        how = overrides.get(dev, "ok")
        if how == "ok":
            (smart / f"{dev}.json").write_text(json.dumps(log, indent=2) + "\n")
        elif how == "garbage":
            (smart / f"{dev}.json").write_text(GARBAGE)
        elif how == "notnvme":
            (smart / f"{dev}.notnvme").write_text("")
        # "missing": no file: the stand-in answers like a missing device node


def runner(tmp: Path, nvme: str, smi: str, env: dict[str, str] | None = None) -> ProcessRunner:
    none = tmp / "no-tools"
    none.mkdir(exist_ok=True)
    first = NVME_STANDINS / nvme if nvme != "none" else none
    second = SMI_STANDINS / smi if smi != "none" else none
    return ProcessRunner(
        path=f"{first}:{second}:/usr/bin:/bin",
        base_env={"LC_ALL": "C", "NVME_SMART_DIR": str(tmp / "smart"), **(env or {})},
    )


async def inventory(name: str, tb: Any, tmp: Path) -> Inventory:
    scanner = hwbed.make_scanner(name, tb, tmp / "scan", "ok" if name == "gpu-server" else "none")
    return await scanner.scan(nvidia_timeout=2)


def context(tmp: Path, run: ProcessRunner, inv: Inventory, health: HealthSection) -> AgentContext:
    ctx = AgentContext(
        paths=hwbed.Paths(tmp),
        runner=run,
        board=StatusBoard(),
        store=StateStore(tmp / "state.json"),
        config=Watch(AgentConfig(health=health)),
    )
    ctx.inventory.set(inv)
    return ctx


def snapshot(ctx: AgentContext) -> dict[str, Any]:
    conds = {
        c.type: {"status": c.status, "reason": c.reason, "message": c.message}
        for c in ctx.board.conditions()
        if c.type in ("NvmeHealth", "GpuHealth", "NicHealth")
    }
    return {"conditions": conds, "section": ctx.board.sections().get("health")}


async def mode_links() -> dict[str, Any]:
    tb = hwbed.testbed("gpu-server")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        (tmp / "scan").mkdir()
        lay_out_logs("gpu-server", tmp / "smart", {})
        inv = await inventory("gpu-server", tb, tmp)
        ctx = context(tmp, runner(tmp, "ok", "ok"), inv, HealthSection(nic_expected_mbps={"eno*": 25000}))
        clock = Clock()
        ctrl = HealthController(ctx, clock=clock)
        steps: dict[str, Any] = {}
        await ctrl.poll(inv)
        steps["first"] = snapshot(ctx)
        net = "/sys/devices/pci0000:65/0000:65:00.0/net/eno1"
        fast = "/sys/devices/pci0000:4b/0000:4b:00.0/net/ens1f0np0"
        clock.now += 600
        tb.set_attribute(net, "carrier_changes", "10")  # 4 flaps since the first poll
        tb.set_attribute(fast, "speed", "10000")
        await ctrl.poll(inv)
        steps["flapped"] = snapshot(ctx)
        steps["metrics"] = "\n".join(health_metrics.metrics(ctx.board)) + "\n"
        clock.now += 3600  # an hour without flaps
        tb.set_attribute(fast, "speed", "100000")
        await ctrl.poll(inv)
        steps["quiet"] = snapshot(ctx)
        eno2 = "/sys/devices/pci0000:65/0000:65:00.1/net/eno2"
        tb.set_attribute(eno2, "carrier", "0")
        tb.set_attribute(eno2, "operstate", "down")
        clock.now += 60
        await ctrl.poll(inv)
        steps["down"] = snapshot(ctx)
    return steps


async def one_case(tb: Any, nvme: str, smi: str, overrides: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        (tmp / "scan").mkdir()
        lay_out_logs("gpu-server", tmp / "smart", overrides)
        inv = await inventory("gpu-server", tb, tmp)
        ctx = context(tmp, runner(tmp, nvme, smi), inv, HealthSection(command_timeout=0.5, interval=5))
        ctrl = HealthController(ctx)
        task = asyncio.create_task(ctrl.run())  # the real loop: it must publish, not crash
        for _ in range(200):
            if ctrl.polls:
                break
            await asyncio.sleep(0.05)
        crashed = repr(task.exception()) if task.done() else None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return {**snapshot(ctx), "crashed": crashed, "polls": ctrl.polls}


async def mode_failures() -> dict[str, Any]:
    tb = hwbed.testbed("gpu-server")
    cases = {
        "no-tools": ("none", "none", {}),
        "hang": ("hang", "hang", {}),
        "garbage": ("ok", "garbage", {"nvme0": "garbage", "nvme1": "notnvme", "nvme2": "missing"}),
        "smi-fail": ("ok", "fail", {}),
    }
    return {name: await one_case(tb, *case) for name, case in cases.items()}


async def mode_bench() -> dict[str, Any]:
    name = "bench-8gpu-8nvme-8nic"
    tb = hwbed.testbed(name)
    polls = int(os.environ.get("BENCH_POLLS", "10"))
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        (tmp / "scan").mkdir()
        lay_out_logs(name, tmp / "smart", {})
        csv = tmp / "gpus.csv"
        csv.write_text(
            "".join(
                f"{i}, 00000000:{0x11 + i * 0x10:02X}:00.0, GPU-bench-{i}, 35, 0, 0, 0, [N/A], [N/A], [N/A]\n"
                for i in range(8)
            )
        )
        inv = await inventory(name, tb, tmp)
        cfg = HealthSection()
        ctx = context(tmp, runner(tmp, "ok", "ok", {"NVIDIA_SMI_HEALTH_CSV": str(csv)}), inv, cfg)
        ctrl = HealthController(ctx)

        def cpu() -> float:
            s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

        await ctrl.poll(inv)  # warm
        before, wall = cpu(), time.perf_counter()
        for _ in range(polls):
            await ctrl.poll(inv)
        per_poll = (cpu() - before) / polls
        wall_per_poll = (time.perf_counter() - wall) / polls
        # peer: the nvme stand-in alone, 8 times (what one poll spends in nvme-cli)
        run = runner(tmp, "ok", "ok")
        before = cpu()
        for _ in range(polls):
            for i in range(8):
                await run.run(("nvme", "smart-log", f"/dev/nvme{i}", "-o", "json"), timeout=5)
        peer = (cpu() - before) / polls
        conds = snapshot(ctx)["conditions"]
    return {
        "cpu_seconds_per_poll": per_poll,
        "wall_seconds_per_poll": wall_per_poll,
        "interval": cfg.interval,
        "peer_nvme_x8_cpu_seconds": peer,
        "conditions": conds,
    }


MODES = {"links": mode_links, "failures": mode_failures, "bench": mode_bench}


def main() -> None:
    if "umockdev" not in os.environ.get("LD_PRELOAD", ""):
        sys.exit("healthbed.py must run under umockdev-wrapper (LD_PRELOAD=libumockdev-preload.so)")
    result = asyncio.run(MODES[sys.argv[1]]())
    json.dump(result, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
