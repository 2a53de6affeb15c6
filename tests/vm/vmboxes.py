"""The VMs of the VM tier: made one at a time, every one stopped (by PID) at the end."""

from __future__ import annotations

from pathlib import Path

from qemu import Vm
from vmregistrar import Registrar

REPO = Path(__file__).resolve().parents[2]


class Vms:
    """Makes VMs and stops every one of them (by PID) at the end; one runs at a time on 2 cores."""

    def __init__(self, disk: Path, workdir: Path, registrar: Registrar) -> None:
        self.disk, self.workdir, self.registrar = disk, workdir, registrar
        self.made: list[Vm] = []

    def boot(self, name: str, *, credential: str = "", boot_seed: str = "") -> Vm:
        for vm in self.made:  # never two at once: each would run 2.2x slower
            vm.stop()
        vm = Vm(name, self.disk, self.workdir, self.registrar.port, seed_credential=credential)
        vm.prepare_disk(boot_seed=boot_seed)
        self.made.append(vm)
        vm.start()
        return vm

    def close(self) -> None:
        for vm in self.made:
            vm.stop()
