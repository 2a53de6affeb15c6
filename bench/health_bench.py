"""Hardware health poll cost on the 8 GPU / 8 NVMe / 8 NIC fixture, beside a peer measured in the
same run; figures are printed, never asserted:

  one health poll (8 SMART logs through the nvme stand-in, one nvidia-smi query, 8 NICs in sysfs,
  evaluation, status section)  as CPU-seconds per poll (the agent and its children), and that
  over [health] interval as the share of one core           (target < 1%)
      vs  the nvme stand-in alone, run 8 times              (what the poll spends in nvme-cli)

Runs tests/health/healthbed.py's ``bench`` mode under umockdev-wrapper.

  python bench/health_bench.py            (BENCH_POLLS=10)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEALTHBED = REPO / "tests/health/healthbed.py"


def main() -> int:
    wrapper = shutil.which("umockdev-wrapper")
    if wrapper is None:
        print("health poll: skipped (umockdev-wrapper not installed)")
        return 0
    proc = subprocess.run(
        [wrapper, sys.executable, str(HEALTHBED), "bench"],
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_POLLS": os.environ.get("BENCH_POLLS", "10")},
        check=False,
    )
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return 1
    r = json.loads(proc.stdout)
    per_poll, peer, interval = r["cpu_seconds_per_poll"], r["peer_nvme_x8_cpu_seconds"], r["interval"]
    print("hardware health, 8 GPU / 8 NVMe / 8 NIC fixture (umockdev):")
    print(
        f"  one poll:                  {per_poll * 1000:8.1f} ms CPU  ({r['wall_seconds_per_poll'] * 1000:.1f} ms wall)"
    )
    print(f"  peer: nvme stand-in x8:    {peer * 1000:8.1f} ms CPU  (poll / peer = {per_poll / peer:.2f}x)")
    print(f"  share of one core at interval {interval:g}s: {per_poll / interval:.4%}  (target < 1%)")
    conds = ", ".join(f"{k}={v['status']}" for k, v in sorted(r["conditions"].items()))
    print(f"  conditions: {conds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
