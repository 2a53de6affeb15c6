"""Hotplug -> Node label latency, through the real planner and runtime controllers on the stand-in k3s.

A registered node; then the inventory gains an NVIDIA GPU (what the inventory controller publishes
after a uevent) and we time until `kubectl get node` shows ``edge-agent.io/gpu.count=1``. Beside it,
the floor measured in the same run: one `kubectl get node` + one `kubectl label node` round trip
through the stand-in (the two calls the reconcile cannot avoid). Target: under 5 s (issue 12);
printed as a ratio to the floor, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agent.model.config import AgentConfig, AgentSection, KubernetesSection  # noqa: E402
from agent.model.inventory import Gpu, Inventory  # noqa: E402
from agent.planning import PlannerController  # noqa: E402
from agent.runtime.controller import RuntimeController  # noqa: E402
from agent.watch import Watch  # noqa: E402
from tests.runtime.boxes import Box  # noqa: E402

ROUNDS = 5
A2 = Gpu(kind="pci", name="NVIDIA A2", vendor_id="10de", device_id="25b6")


def gpu_count(box: Box) -> str:
    out = box.run(str(box.root / "usr/local/bin/k3s"), "kubectl", "get", "node", box.name, "-o", "json").stdout
    return str(json.loads(out)["metadata"]["labels"].get("edge-agent.io/gpu.count"))


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        box = Box("bench", Path(tmp) / "root", "10.9.2.1", Path(tmp) / "cluster")
        box.bundle("k3s")
        box.ctx.config = Watch(
            AgentConfig(agent=AgentSection(node_name="bench"), kubernetes=KubernetesSection(distribution="k3s"))
        )
        box.ctx.inventory.set(Inventory(scanned_at=datetime.now(UTC)))
        await box.converge(box.controller(), timeout=60)
        # then the two controllers as the daemon runs them: the planner wakes on the inventory, the
        # runtime on ctx.desired (its readiness poll is 10 s, so a fast label is the wake path, not a poll)
        planner, runtime = PlannerController(box.ctx), RuntimeController(box.ctx, poll_interval=10.0)
        tasks = [asyncio.create_task(planner.run()), asyncio.create_task(runtime.run())]
        try:
            latencies, floors = [], []
            for i in range(ROUNDS):
                want = "1" if i % 2 == 0 else "0"
                started = time.perf_counter()
                box.ctx.inventory.set(Inventory(scanned_at=datetime.now(UTC), gpus=(A2,) if want == "1" else ()))
                while await asyncio.to_thread(gpu_count, box) != want:
                    await asyncio.sleep(0.05)
                latencies.append(time.perf_counter() - started)
                t0 = time.perf_counter()
                await asyncio.to_thread(gpu_count, box)
                k3s = str(box.root / "usr/local/bin/k3s")
                await asyncio.to_thread(box.run, k3s, "kubectl", "label", "node", "bench", "--overwrite", "bench=x")
                floors.append(time.perf_counter() - t0)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            box.stop_all()
    lat, floor = statistics.median(latencies), statistics.median(floors)
    print(
        f"hotplug -> node label: median {lat * 1000:.0f} ms over {ROUNDS} changes (max {max(latencies) * 1000:.0f} ms)"
    )
    print(f"floor (kubectl get + label on the stand-in): {floor * 1000:.0f} ms; ratio {lat / floor:.2f}x")
    print(f"target < 5 s: {'PASS' if max(latencies) < 5 else 'MISS'}")


if __name__ == "__main__":
    asyncio.run(main())
