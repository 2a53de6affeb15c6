"""Fixtures of the VM tier: the test disk image (built once, cached), a registrar on loopback, VMs.

Tests marked ``vm`` run only through ``make vm-test`` (EDGE_AGENT_VM_TESTS=1, root); anywhere
else they are skipped with that reason. Under ``make vm-test`` a missing piece (no QEMU, no
OVMF, no swtpm...) fails the tier with one line naming it and its package; it never skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qemu import REGISTRAR_GUEST_ADDR, REGISTRAR_GUEST_PORT, Vm, missing_pieces

REPO = Path(__file__).resolve().parents[2]
ENABLED = os.environ.get("EDGE_AGENT_VM_TESTS") == "1"
WORKDIR = Path(os.environ.get("EDGE_AGENT_VM_WORKDIR", "/var/tmp/edge-agent-vm"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vm: boots the disk image under QEMU (make vm-test; slow, root)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="VM tier: run `make vm-test` (root, QEMU)")
    for item in items:
        if item.get_closest_marker("vm"):
            item.add_marker(skip)


def run_build(argv: list[str], what: str) -> Path:
    t0 = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.fail(f"{what} failed:\n{res.stderr[-4000:]}", pytrace=False)
    out = Path(res.stdout.strip().splitlines()[-1])
    print(f"\n[image] {what}: {out} in {time.monotonic() - t0:.1f}s")
    return out


@pytest.fixture(scope="session")
def tier_ready() -> None:
    missing = missing_pieces()
    if missing:
        pytest.fail(f"VM tier cannot run, missing: {', '.join(missing)}", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("VM tier cannot run: needs root (image/build.sh debootstraps and chroots)", pytrace=False)


@pytest.fixture(scope="session")
def disk(tier_ready: None) -> Path:
    """The test variant's raw disk (image/build.sh --variant test, then image/disk.sh), cached."""
    tree = run_build(["bash", str(REPO / "image/build.sh"), "--variant", "test"], "image/build.sh --variant test")
    return run_build(["bash", str(REPO / "image/disk.sh"), str(tree)], "image/disk.sh")


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    if WORKDIR.exists():
        shutil.rmtree(WORKDIR)
    WORKDIR.mkdir(parents=True)
    yield WORKDIR
    if not os.environ.get("EDGE_AGENT_VM_KEEP"):
        shutil.rmtree(WORKDIR, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registrar:
    """An edge-registrar on 127.0.0.1; the guests reach it as https://10.0.2.100:8443 (guestfwd)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.log = state_dir.parent / "registrar.log"
        self.port = free_port()
        self.pin = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"https://{REGISTRAR_GUEST_ADDR}:{REGISTRAR_GUEST_PORT}"

    def cli(self, *args: str) -> str:
        argv = [sys.executable, "-m", "agent.registrar", "--state-dir", str(self.state_dir), *args]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        res = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False)
        if res.returncode != 0:
            raise AssertionError(f"edge-registrar {' '.join(args)} exited {res.returncode}: {res.stderr}")
        return res.stdout

    def start(self) -> None:
        self.pin = self.cli("init").strip().splitlines()[-1]
        argv = [
            sys.executable, "-m", "agent.registrar", "--state-dir", str(self.state_dir), "serve",
            "--listen", f"127.0.0.1:{self.port}", "--san", REGISTRAR_GUEST_ADDR, "--servers", "1",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"edge-registrar did not start:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def token(self, site: str) -> str:
        return self.cli("token", "create", "--ttl", "1h", "--uses", "2", "--site", site).strip().splitlines()[-1]

    def seed(self, site: str) -> str:
        return (
            f'[fleet]\nurl = "{self.url}"\nca_pin = "{self.pin}"\n'
            f'bootstrap_token = "{self.token(site)}"\nsite = "{site}"\n'
        )

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return "(no registrar log)"


@pytest.fixture(scope="session")
def registrar(workdir: Path) -> Iterator[Registrar]:
    state = workdir / "registrar" / "state"
    state.parent.mkdir(parents=True)
    reg = Registrar(state)
    try:
        reg.start()
        yield reg
    finally:
        reg.stop()


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


@pytest.fixture(scope="session")
def vms(disk: Path, workdir: Path, registrar: Registrar) -> Iterator[Vms]:
    made = Vms(disk, workdir, registrar)
    try:
        yield made
    finally:
        made.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if rep.when == "call" and rep.failed:
        made: Vms | None = getattr(item, "funcargs", {}).get("vms")
        for vm in made.made if made else []:
            print(f"\n===== {vm.name}: console tail\n{vm.console_tail(3000)}")
    return rep
