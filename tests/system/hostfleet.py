"""The fleet side of the system tests: an edge-registrar on the host, reachable from the boxes.

The registrar listens on an address of a veth pair this module creates (``e2e-reg0``,
10.231.255.1/32), never on the host's own interfaces; each box routes 10.231.255.0/24
through the host end of its nspawn veth.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.registrar_process import RegistrarProcess

REGISTRAR_NET = "10.231.255.0/24"
REGISTRAR_ADDR = "10.231.255.1"
VETH = "e2e-reg0"


def add_registrar_address(veth: str = VETH, address: str = REGISTRAR_ADDR) -> None:
    """A veth pair ``veth``/``veth``p, both up, with ``address``/32 on ``veth``: where a registrar listens."""
    remove_registrar_address(veth)
    subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}p"], check=True)
    subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", veth], check=True)
    for dev in (veth, f"{veth}p"):
        subprocess.run(["ip", "link", "set", dev, "up"], check=True)


def remove_registrar_address(veth: str = VETH) -> None:
    subprocess.run(["ip", "link", "del", veth], capture_output=True, check=False)


class HostRegistrar(RegistrarProcess):
    """An edge-registrar on REGISTRAR_ADDR (the veth :func:`add_registrar_address` made)."""

    def __init__(self, state_dir: Path, repo: Path, *, servers: int = 1, distribution: str = "k3s") -> None:
        super().__init__(state_dir, repo, REGISTRAR_ADDR)
        self.servers, self.distribution = servers, distribution

    def serve_args(self) -> list[str]:
        return ["--servers", str(self.servers), "--distribution", self.distribution]
