"""Inventory figures, each beside a peer measured in the same run (ratios, medians), never asserted:

  agentctl inventory -o json          (whole process, answered from the daemon's cached inventory)
  agentctl inventory --local -o json  (the one-shot: a fresh process scans the box, no daemon;
                                       target: no slower than lshw -json, issue #15)
      split in two: its imports, then the scan (every collector, nvidia-smi when NVIDIA GPUs, the JSON)
  the daemon's pydantic path in a fresh process, beside it (Scanner + asyncio + the pydantic model)
      split the same way: imports, then the cold first scan (pydantic validators built on first use)
      vs  lshw -json -quiet    (targets: agentctl >= 3x faster than lshw; the first full scan no slower)
      vs  hwinfo --short
  floors: python -S -c pass, and a Python that only imports pydantic's BaseModel
  (the two fresh-process scans and lshw run in turns, one of each per round: a burst of load on a
  shared machine slows all three alike, and the ratios the targets read hold)
  warm in-process rescan of the 8 GPU / 8 NVMe / 8 NIC fixture under umockdev (target <= 20 ms)

The daemon side is a minimal server built from the real pieces (InventoryController + the API
app with the inventory route module) on a scratch unix socket, so the figure does not depend on
how agentd mounts the route.

  python bench/inventory_bench.py            all figures (BENCH_RUNS=9, BENCH_HWINFO_RUNS=5)

Fresh processes run as agentd does on a box (python -S, packages on PYTHONPATH, bytecode under a
scratch PYTHONPYCACHEPREFIX; bench/clientenv.py), not through the development venv's editable-install hooks.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from clientenv import agentctl_command, box_python  # noqa: E402
from measure import RUNS, interleaved_ms, median_ms, verdict  # noqa: E402

HWINFO_RUNS = max(5, int(os.environ.get("BENCH_HWINFO_RUNS", "5")))
SCAN_TARGET = 1.0  # the first full scan no slower than lshw -json (issue #15)
# What /usr/bin/agentctl runs (its console script), with the command line after -c
AGENTCTL = "import sys; from agent.cli.agentctl import main; sys.exit(main())"
LOCAL = ["inventory", "--local", "-o", "json"]
# The same, timing its two halves: imports, then the scan and the JSON (to stderr: ms ms)
LOCAL_SPLIT = (
    "import time, sys; t0 = time.perf_counter();"
    "from agent.cli.agentctl import main; from agent.inventory import oneshot; t1 = time.perf_counter();"
    "rc = main(); t2 = time.perf_counter();"
    "print(f'{(t1 - t0) * 1000:.3f} {(t2 - t1) * 1000:.3f}', file=sys.stderr); sys.exit(rc)"
)
# The daemon's pydantic path, as one process would run it for a first scan
PYDANTIC = (
    "import asyncio; from agent.inventory.collect import Collector; from agent.inventory.scan import Scanner;"
    "from agent.sysexec import ProcessRunner;"
    "inv = asyncio.run(Scanner(Collector(), ProcessRunner()).scan(nvidia_timeout=5));"
    "print(inv.model_dump_json())"
)
PYDANTIC_SPLIT = (
    "import time, sys; t0 = time.perf_counter();"
    "import asyncio; from agent.inventory.collect import Collector; from agent.inventory.scan import Scanner;"
    "from agent.sysexec import ProcessRunner; t1 = time.perf_counter();"
    "inv = asyncio.run(Scanner(Collector(), ProcessRunner()).scan(nvidia_timeout=5));"
    "print(inv.model_dump_json()); t2 = time.perf_counter();"
    "print(f'{(t1 - t0) * 1000:.3f} {(t2 - t1) * 1000:.3f}', file=sys.stderr)"
)
BOX_PYTHON, BOX_ENV = box_python()


def split_ms(argv: list[str], runs: int = RUNS) -> tuple[float, float]:
    """Medians of the (imports, scan) halves a fresh process prints on stderr."""
    cmd = [*BOX_PYTHON, *argv]
    subprocess.run(cmd, capture_output=True, check=True, env=BOX_ENV)
    halves = []
    for _ in range(runs):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=BOX_ENV)
        imports, scan = (float(x) for x in out.stderr.split()[-2:])
        halves.append((imports, scan))
    return statistics.median(h[0] for h in halves), statistics.median(h[1] for h in halves)


# -- the daemon side ---------------------------------------------------------------------------------
async def serve(sock: str) -> None:
    from aiohttp import web

    from agent.api import inventory as inventory_api
    from agent.api.app import ApiInfo, build_app
    from agent.context import AgentContext
    from agent.inventory.controller import InventoryController
    from agent.model.config import AgentConfig
    from agent.paths import Paths
    from agent.state import StateStore
    from agent.status import StatusBoard
    from agent.sysexec import ProcessRunner
    from agent.watch import Watch

    tmp = Path(sock).parent
    ctx = AgentContext(Paths(), ProcessRunner(), StatusBoard(), StateStore(tmp / "state.json"), Watch(AgentConfig()))
    task = asyncio.create_task(InventoryController(ctx).run())
    await ctx.inventory.wait_newer(0)
    runner = web.AppRunner(build_app(ctx, ApiInfo(), [inventory_api]))
    await runner.setup()
    await web.UnixSite(runner, sock).start()
    print("ready", flush=True)
    await asyncio.Event().wait()
    task.cancel()


def start_server(sock: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(sock)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise SystemExit(f"inventory server did not start: {line!r}")
    return proc


# -- warm rescan under umockdev ------------------------------------------------------------------------
def warm_rescan() -> None:
    """Runs inside umockdev-wrapper: prints median and p90 of scan_hardware() and scan() in ms."""
    sys.path.insert(0, str(REPO / "tests" / "inventory"))
    import hwbed  # the umockdev testbed helpers the tests use

    tb = hwbed.testbed("bench-8gpu-8nvme-8nic")
    with tempfile.TemporaryDirectory() as tmp:
        scanner = hwbed.make_scanner("bench-8gpu-8nvme-8nic", tb, Path(tmp))
        inv = scanner.scan_hardware()
        counts = (len(inv.gpus), len(inv.nvme), sum(1 for n in inv.nics if n.physical))
        assert counts == (8, 8, 8), counts
        for _ in range(5):
            scanner.scan_hardware()
        hw = []
        for _ in range(60):
            t0 = time.perf_counter()
            scanner.scan_hardware()
            hw.append((time.perf_counter() - t0) * 1000)

        async def full() -> list[float]:
            await scanner.scan(nvidia_timeout=5)
            out = []
            for _ in range(60):
                t0 = time.perf_counter()
                await scanner.scan(nvidia_timeout=5, refresh_tools=False)
                out.append((time.perf_counter() - t0) * 1000)
            return out

        sc = asyncio.run(full())
    q = statistics.quantiles
    print(f"{statistics.median(hw):.2f} {q(hw, n=10)[-1]:.2f} {statistics.median(sc):.2f} {q(sc, n=10)[-1]:.2f}")


def main() -> int:
    print(f"inventory bench: medians of {RUNS} runs (hwinfo: {HWINFO_RUNS}); {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        sock = Path(tmp) / "agent.sock"
        server = start_server(sock)
        try:
            ctl_json = median_ms([*agentctl_command(), "--socket", str(sock), "inventory", "-o", "json"])
            ctl_text = median_ms([*agentctl_command(), "--socket", str(sock), "inventory"])
            curl = shutil.which("curl")
            raw = (
                median_ms([curl, "-s", "--unix-socket", str(sock), "http://agent/v1/inventory"])
                if curl
                else float("nan")
            )
        finally:
            server.terminate()
            server.wait()
    # the scans and their peer in turns: the ratios to lshw are what the targets read
    lshw_cmd = (["lshw", "-json", "-quiet"], None) if shutil.which("lshw") else None
    scans = [([*BOX_PYTHON, "-c", AGENTCTL, *LOCAL], BOX_ENV), ([*BOX_PYTHON, "-c", PYDANTIC], BOX_ENV)]
    local, pydantic_path, *lshw_ms = interleaved_ms(scans + ([lshw_cmd] if lshw_cmd else []))
    local_imports, local_scan = split_ms(["-c", LOCAL_SPLIT, *LOCAL])
    imports_ms, cold_ms = split_ms(["-c", PYDANTIC_SPLIT])
    floor = median_ms([*BOX_PYTHON, "-c", "pass"], env=BOX_ENV)
    pydantic_floor = median_ms([*BOX_PYTHON, "-c", "from pydantic import BaseModel"], env=BOX_ENV)
    rows = [
        ("agentctl inventory -o json (daemon cache)", ctl_json),
        ("agentctl inventory (table)", ctl_text),
        ("curl GET /v1/inventory (daemon cache)", raw),
        ("agentctl inventory --local -o json (one-shot)", local),
        ("pydantic path: Scanner + asyncio, fresh process", pydantic_path),
    ]
    peers: list[tuple[str, float]] = [("lshw -json -quiet", ms) for ms in lshw_ms]
    if shutil.which("hwinfo"):
        peers.append(("hwinfo --short", median_ms(["hwinfo", "--short"], runs=HWINFO_RUNS)))
    for name, ms in rows + peers:
        print(f"  {name:<48} {ms:9.1f} ms")
    print(f"  {'  --local: of which imports (in that process)':<48} {local_imports:9.1f} ms")
    print(f"  {'  --local: of which the scan and the JSON':<48} {local_scan:9.1f} ms")
    print(f"  {'  pydantic path: of which imports':<48} {imports_ms:9.1f} ms")
    print(f"  {'  pydantic path: of which the cold first scan':<48} {cold_ms:9.1f} ms")
    print(f"  {'(reference: python -S -c pass)':<48} {floor:9.1f} ms")
    print(f"  {'(floor: python -S, import pydantic.BaseModel)':<48} {pydantic_floor:9.1f} ms")
    for peer, pms in peers:
        for name, ms in rows:
            print(f"  {peer} / {name}: {pms / ms:.1f}x")
    lshw = dict(peers).get("lshw -json -quiet")
    if lshw:
        for name, ms in (
            ("first full scan, fresh process (inventory --local)", local),
            ("  of which the scan, after the imports", local_scan),
            ("(the pydantic path, fresh process)", pydantic_path),
            ("(its cold first scan, after the imports)", cold_ms),
            ("(floor: python importing pydantic)", pydantic_floor),
        ):
            ratio = ms / lshw
            target = f"target <= {SCAN_TARGET}x: {verdict(ratio <= SCAN_TARGET)}" if name[0] == "f" else ""
            print(f"  {name:<52} / lshw -json: {ratio:5.2f}x   {target}")
    wrapper = shutil.which("umockdev-wrapper")
    if wrapper is None:
        print("  warm rescan: skipped (umockdev-wrapper not installed)")
        return 0
    out = subprocess.run(
        [wrapper, sys.executable, __file__, "--warm-rescan"], capture_output=True, text=True, check=True, cwd=REPO
    )
    hw_med, hw_p90, sc_med, sc_p90 = (float(x) for x in out.stdout.split())
    print("  warm rescan, 8 GPU / 8 NVMe / 8 NIC fixture (umockdev), target <= 20 ms:")
    print(f"    udev/sysfs collectors only   median {hw_med:6.2f} ms  p90 {hw_p90:6.2f} ms")
    print(f"    scan() as the controller     median {sc_med:6.2f} ms  p90 {sc_p90:6.2f} ms")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        asyncio.run(serve(sys.argv[2]))
    elif sys.argv[1:2] == ["--warm-rescan"]:
        warm_rescan()
    else:
        sys.exit(main())
