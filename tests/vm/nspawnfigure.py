"""The nspawn figure beside the VM's: the same test tree under systemd-nspawn (host kernel), seeded
the same way (a credential), timed from container start to enrolled and node Ready.

Uses the system tier's container harness (tests/system/nspawn.py) on addresses of its own
(10.233.0.0/30 and a registrar veth 10.233.255.1), apart from the system tier's 10.231.0.0/16.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

from vmregistrar import Registrar

SYSTEM_TIER = Path(__file__).resolve().parents[1] / "system"
LINK = ipaddress.IPv4Network("10.233.0.0/30")
REGISTRAR = "10.233.255.1"
REGISTRAR_VETH = "vmb-reg0"


def nspawn_enrolled_and_ready(tree: Path, workdir: Path, repo: Path) -> float:
    """Seconds from nspawn start to Enrolled and NodeReady for a copy of ``tree``."""
    if str(SYSTEM_TIER) not in sys.path:
        sys.path.insert(0, str(SYSTEM_TIER))
    from fleetbox import seed_as_credential, wait_enrolled_and_ready
    from hostfleet import add_registrar_address, remove_registrar_address
    from nspawn import Container, Link

    add_registrar_address(REGISTRAR_VETH, REGISTRAR)
    try:
        with Registrar(workdir / "nspawn-registrar" / "state", repo, listen=REGISTRAR, reached_as=REGISTRAR) as reg:
            box = Container.from_tree("vmfigure", tree, workdir, Link(LINK, routes=(f"{REGISTRAR}/32",)))
            try:
                seed_as_credential(box, reg.seed("nspawn-figure"), workdir)
                box.start()
                _doc, took = wait_enrolled_and_ready(box, 180, what="nspawn start")
                return float(took)
            finally:
                box.stop()
                subprocess.run(["rm", "-rf", str(box.root)], check=False)
    finally:
        remove_registrar_address(REGISTRAR_VETH)
