"""Boot figures of the test image: the disk under QEMU (TCG) beside the same tree under nspawn.

    sudo .venv/bin/python bench/boot_bench.py [--skip-nspawn]

Builds (cached) the test tree and its disk, starts an edge-registrar for each boot, and prints
seconds after start for: QEMU start -> kernel -> systemd -> agent READY -> enrolled -> node
Ready (see docs/vm.md for where each timestamp comes from), then the nspawn container's start ->
enrolled and node Ready of the same tree, and the ratio of the two. One boot each, one after the
other (two at once would each run slower on 2 cores). Root: debootstrap, nspawn, veths.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "vm"))

from guestview import wait_enrolled_and_ready  # noqa: E402
from nspawnfigure import nspawn_enrolled_and_ready  # noqa: E402
from qemu import Vm, missing_pieces  # noqa: E402
from vmregistrar import Registrar  # noqa: E402


def build(argv: list[str]) -> Path:
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{res.stderr[-3000:]}")
    return Path(res.stdout.strip().splitlines()[-1])


def vm_boot(disk: Path, work: Path) -> float:
    reg = Registrar(work / "vm-registrar" / "state", REPO)
    reg.state_dir.parent.mkdir(parents=True)
    reg.start()
    vm = Vm("bench-vm", disk, work, reg.port, seed_credential=reg.seed("bench-vm"))
    try:
        vm.prepare_disk()
        vm.start()
        _doc, tl = wait_enrolled_and_ready(vm)
        print(tl.line("VM, TCG, seed as SMBIOS credential"), flush=True)
        return tl.node_ready
    finally:
        vm.stop()
        reg.stop()


def nspawn_boot(tree: Path, work: Path) -> float:
    took = nspawn_enrolled_and_ready(tree, work, REPO)
    print(f"[boot] nspawn, same tree, host kernel: container start -> enrolled and node Ready {took:.1f}s")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-nspawn", action="store_true", help="only the VM boot")
    ns = parser.parse_args()
    missing = missing_pieces()
    if missing:
        sys.exit(f"boot_bench: missing: {', '.join(missing)}")
    t0 = time.monotonic()
    tree = build(["bash", str(REPO / "image/build.sh"), "--variant", "test"])
    disk = build(["bash", str(REPO / "image/disk.sh"), str(tree)])
    print(f"[image] test tree and disk ready in {time.monotonic() - t0:.1f}s: {disk}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="boot-bench.", dir="/var/tmp"))
    try:
        vm = vm_boot(disk, work)
        if not ns.skip_nspawn:
            container = nspawn_boot(tree, work)
            print(f"[boot] VM / nspawn, start -> node Ready: {vm / container:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
