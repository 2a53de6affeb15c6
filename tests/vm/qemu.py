"""One QEMU VM of the VM tier: the disk image on OVMF, the devices the tier checks, a swtpm TPM.

Everything it starts (swtpm, qemu-system-x86_64) is a child it stops by PID. The guest's
networks are QEMU user networks with ``restrict=on``: the only thing the guest reaches is the
test's registrar on 127.0.0.1, through a ``guestfwd`` at REGISTRAR_GUEST_ADDR.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.processes import stop_process, stopped_on_failure

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
QEMU = "qemu-system-x86_64"
REGISTRAR_GUEST_ADDR = "10.0.2.100"
REGISTRAR_GUEST_PORT = 8443
SHELL_PORT = "edge.test"


def missing_pieces() -> list[str]:
    """What the tier needs and this machine lacks, each with the package that brings it."""
    wanted = {
        QEMU: "qemu-system-x86",
        "qemu-img": "qemu-utils",
        "swtpm": "swtpm",
        "mcopy": "mtools",
        "mkfs.vfat": "dosfstools",
        "sfdisk": "fdisk",
        "umockdev-record": "umockdev",
    }
    out = [f"{tool} (apt-get install {pkg})" for tool, pkg in wanted.items() if shutil.which(tool) is None]
    out += [f"{p} (apt-get install ovmf)" for p in (OVMF_CODE, OVMF_VARS) if not p.is_file()]
    return out


@dataclass(frozen=True)
class Nvme:
    """An NVMe controller QEMU emulates: its serial and the sizes (MiB) of its namespaces 1..n."""

    serial: str
    namespaces_mib: tuple[int, ...]
    nqn: str = ""  # set: a controller in an NVMe subsystem (nvme-subsys), the way several namespaces attach

    @property
    def subsystem_nqn(self) -> str:
        """The NQN the guest reads: QEMU 7.2 (hw/nvme/subsys.c) prefixes the one it is given."""
        return f"nqn.2019-08.org.qemu:{self.nqn}" if self.nqn else ""


@dataclass(frozen=True)
class NicSpec:
    model: str  # QEMU device: virtio-net-pci, e1000e
    mac: str
    driver: str  # what the guest kernel binds to it


@dataclass(frozen=True)
class Hardware:
    """What QEMU is told the box has: the inventory must say exactly this."""

    root_serial: str = "edge-root-0"
    nvme: tuple[Nvme, ...] = (
        Nvme("EDGENVME0001", (256,)),
        Nvme("EDGENVME0002", (128, 192), nqn="nqn.2026-12.com.example.edge:vm-subsys-2"),
    )
    nics: tuple[NicSpec, ...] = (
        NicSpec("virtio-net-pci", "52:54:00:ed:00:01", "virtio_net"),
        NicSpec("e1000e", "52:54:00:ed:00:02", "e1000e"),
    )
    disk_gib: int = 4  # the overlay's size: larger than the image, so the root must grow into it


@dataclass
class Vm:
    name: str
    disk_image: Path  # the raw disk image/disk.sh made (never written: each VM has an overlay)
    workdir: Path
    registrar_port: int
    hw: Hardware = field(default_factory=Hardware)
    seed_credential: str = ""  # a seed passed as SMBIOS type 11 io.systemd.credential.binary:edge-agent.seed
    accel: str = "tcg"
    memory_mib: int = 1024
    qemu: subprocess.Popen[bytes] | None = None
    swtpm: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # time.monotonic() when qemu was started
    _shell: socket.socket | None = None
    _shell_buf: bytes = b""
    _req: int = 0
    _qmp: socket.socket | None = None
    _qmp_buf: bytes = b""
    events: list[dict[str, Any]] = field(default_factory=list)
    # host time.monotonic() at which each console marker first appeared (console_watch)
    seen: dict[str, float] = field(default_factory=dict)
    _watch_stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.dir = self.workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.console = self.dir / "console.log"
        self.overlay = self.dir / "root.qcow2"

    # --- set-up -----------------------------------------------------------------------------
    def prepare_disk(self, *, boot_seed: str = "") -> None:
        """The VM's own disk: a qcow2 overlay on the image, ``hw.disk_gib`` big. With ``boot_seed``,
        the overlay is backed by a copy of the image whose ESP holds /edge-agent.toml (the
        boot-partition seed, written with mtools as an operator writes it onto a flashed disk)."""
        backing = self.disk_image
        if boot_seed:
            backing = self.dir / "seeded.raw"
            subprocess.run(["cp", "--sparse=always", str(self.disk_image), str(backing)], check=True)
            seed = self.dir / "edge-agent.toml"
            seed.write_text(boot_seed)
            env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
            subprocess.run(["mcopy", "-i", f"{backing}@@1M", str(seed), "::/edge-agent.toml"], check=True, env=env)
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(backing), str(self.overlay),
             f"{self.hw.disk_gib}G"],
            check=True,
        )  # fmt: skip
        for i, ctrl in enumerate(self.hw.nvme):
            for n, mib in enumerate(ctrl.namespaces_mib, start=1):
                img = self.dir / f"nvme{i}n{n}.img"
                with img.open("wb") as f:
                    f.truncate(mib << 20)
        shutil.copyfile(OVMF_VARS, self.dir / "OVMF_VARS.fd")

    def argv(self) -> list[str]:
        d = self.dir
        # cmd: runs the relay once per guest connection (a tcp: target is one connection, made at start)
        relay = f"{sys.executable} {Path(__file__).with_name('relay.py')} {self.registrar_port}"
        fwd = f"guestfwd=tcp:{REGISTRAR_GUEST_ADDR}:{REGISTRAR_GUEST_PORT}-cmd:{relay}"
        args = [
            QEMU, "-name", self.name, "-machine", f"q35,accel={self.accel}", "-m", str(self.memory_mib), "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
            # a guest reboot ends this QEMU; power_cycle() starts the next on the same disk, NVRAM and TPM
            "-no-reboot",
            "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,file={d / 'OVMF_VARS.fd'}",
            "-drive", f"id=root,if=none,format=qcow2,file={self.overlay}",
            "-device", f"virtio-blk-pci,drive=root,serial={self.hw.root_serial},bootindex=0",
            "-chardev", f"file,id=con,path={self.console},append=on", "-serial", "chardev:con",
            "-qmp", f"unix:{d / 'qmp.sock'},server=on,wait=off",
            "-device", "virtio-serial-pci,id=vser",
            "-chardev", f"socket,id=shell,path={d / 'shell.sock'},server=on,wait=off",
            "-device", f"virtserialport,bus=vser.0,chardev=shell,name={SHELL_PORT}",
            "-chardev", f"socket,id=tpmchr,path={d / 'swtpm.sock'}",
            "-tpmdev", "emulator,id=tpm0,chardev=tpmchr", "-device", "tpm-tis,tpmdev=tpm0",
            # an empty PCIe slot for the hotplug check
            "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1",
        ]  # fmt: skip
        for i, ctrl in enumerate(self.hw.nvme):
            for n in range(1, len(ctrl.namespaces_mib) + 1):
                args += ["-drive", f"id=nvme{i}n{n},if=none,format=raw,file={d / f'nvme{i}n{n}.img'}"]
            if ctrl.nqn:
                args += ["-device", f"nvme-subsys,id=ss{i},nqn={ctrl.nqn}"]
                args += ["-device", f"nvme,id=nvmec{i},serial={ctrl.serial},subsys=ss{i}"]
                for n in range(1, len(ctrl.namespaces_mib) + 1):
                    args += ["-device", f"nvme-ns,drive=nvme{i}n{n},bus=nvmec{i},nsid={n}"]
            else:
                args += ["-device", f"nvme,id=nvmec{i},serial={ctrl.serial},drive=nvme{i}n1"]
        for i, nic in enumerate(self.hw.nics):
            # every NIC on its own restricted user network; only the first carries the registrar forward
            net = f"user,id=n{i},restrict=on,net=10.0.{2 + i}.0/24" + (f",{fwd}" if i == 0 else "")
            args += ["-netdev", net, "-device", f"{nic.model},netdev=n{i},mac={nic.mac}"]
        if self.seed_credential:
            b64 = base64.b64encode(self.seed_credential.encode()).decode()
            args += ["-smbios", f"type=11,value=io.systemd.credential.binary:edge-agent.seed={b64}"]
        return args

    def start(self) -> None:
        with stopped_on_failure(self.stop):
            self._start()

    def _start(self) -> None:
        d = self.dir
        self.stop()  # a power cycle: the previous QEMU is gone, its swtpm goes too (its state stays)
        self.qemu = self.swtpm = None
        self._shell_buf = self._qmp_buf = b""
        self.seen.clear()
        for sock in ("qmp.sock", "shell.sock", "swtpm.sock"):
            (d / sock).unlink(missing_ok=True)
        (d / "tpm").mkdir(exist_ok=True)
        self.swtpm = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={d / 'tpm'}",
             "--ctrl", f"type=unixio,path={d / 'swtpm.sock'}", "--log", f"file={d / 'swtpm.log'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_path(d / "swtpm.sock", 10, "swtpm's control socket")
        self.console.touch()
        self.started_at = time.monotonic()
        with (d / "qemu.log").open("ab") as log:
            self.qemu = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._watch_stop = threading.Event()  # the previous watcher keeps the event it was given
        offset = self.console.stat().st_size
        threading.Thread(
            target=self._console_watch, args=(offset, self._watch_stop), name=f"{self.name}-console", daemon=True
        ).start()
        self._wait_path(d / "qmp.sock", 20, "QEMU's QMP socket")
        self._qmp_connect()

    MARKERS = {"kernel": b"Linux version ", "systemd": b"systemd[1]: systemd ", "login": b" login: "}

    def _console_watch(self, offset: int, stop: threading.Event) -> None:
        """Note when the kernel and systemd first speak on the serial console (host clock)."""
        tail = b""
        while not stop.wait(0.05):
            try:
                with self.console.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except OSError:
                continue
            if not chunk:
                continue
            now = time.monotonic()
            offset += len(chunk)
            text = tail + chunk
            for name, marker in self.MARKERS.items():
                if name not in self.seen and marker in text:
                    self.seen[name] = now
            tail = text[-256:]  # a marker split across two reads

    def wait_powered_off(self, timeout: float) -> None:
        """Wait for the guest to end this QEMU (poweroff, or a reboot under -no-reboot)."""
        assert self.qemu is not None
        try:
            self.qemu.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name}: still running {timeout:.0f}s later:\n{self.console_tail()}") from None
        self.stop()

    def _wait_path(self, path: Path, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            for proc in (self.swtpm, self.qemu):
                if proc is not None and proc.poll() is not None:
                    raise AssertionError(f"{self.name}: {proc.args[0]} exited {proc.returncode}:\n{self.qemu_log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {what} after {timeout:.0f}s")
            time.sleep(0.05)

    # --- QMP --------------------------------------------------------------------------------
    def _qmp_connect(self) -> None:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        s.connect(str(self.dir / "qmp.sock"))
        self._qmp = s
        self._qmp_read()  # greeting
        self.qmp("qmp_capabilities")

    def _qmp_read(self) -> dict[str, Any]:
        assert self._qmp is not None
        while b"\n" not in self._qmp_buf:
            chunk = self._qmp.recv(65536)
            if not chunk:
                raise AssertionError(f"{self.name}: QMP closed")
            self._qmp_buf += chunk
        line, self._qmp_buf = self._qmp_buf.split(b"\n", 1)
        doc: dict[str, Any] = json.loads(line)
        return doc

    def qmp(self, command: str, **arguments: Any) -> Any:
        assert self._qmp is not None
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self._qmp.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            doc = self._qmp_read()
            if "event" in doc:
                self.events.append(doc)
                continue
            if "error" in doc:
                raise AssertionError(f"{self.name}: QMP {command} {arguments}: {doc['error']}")
            return doc.get("return")

    # --- the guest's command channel --------------------------------------------------------
    def sh(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run argv in the guest as root (test images only: tests/vm/guest/edge-test-shell.py)."""
        self._req += 1
        req = self._req
        line = json.dumps({"id": req, "argv": list(argv), "timeout": timeout}).encode() + b"\n"
        self._ensure_shell()
        assert self._shell is not None
        self._shell.sendall(line)  # once: a command may not be idempotent (systemctl reboot)
        got = self._shell_answer(req, time.monotonic() + timeout + 15)
        if got is None:
            raise AssertionError(f"{self.name}: no answer from the guest to {argv} within {timeout + 15:.0f}s")
        return subprocess.CompletedProcess(list(argv), got["rc"], got["stdout"], got["stderr"])

    def _ensure_shell(self) -> None:
        if self._shell is None:
            s = socket.socket(socket.AF_UNIX)
            s.connect(str(self.dir / "shell.sock"))
            self._shell = s
            self._shell_buf = b""

    def _shell_answer(self, req: int, until: float) -> dict[str, Any] | None:
        assert self._shell is not None
        while time.monotonic() < until:
            while b"\n" in self._shell_buf:
                line, self._shell_buf = self._shell_buf.split(b"\n", 1)
                try:
                    doc: dict[str, Any] = json.loads(line)
                except ValueError:
                    continue
                if doc.get("id") == req:
                    return doc
            self._shell.settimeout(max(0.1, until - time.monotonic()))
            try:
                chunk = self._shell.recv(1 << 20)
            except TimeoutError:
                return None
            if not chunk:
                self._shell.close()
                self._shell = None
                return None
            self._shell_buf += chunk
        return None

    def guest_up(self, timeout: float) -> float:
        """Wait until the guest answers on its command channel; seconds since qemu started."""
        deadline = time.monotonic() + timeout
        self._req += 1
        req = self._req
        probe = json.dumps({"id": req, "argv": ["true"], "timeout": 5}).encode() + b"\n"
        while time.monotonic() < deadline:
            self.alive()
            try:
                self._ensure_shell()
                assert self._shell is not None
                self._shell.sendall(probe)
                if self._shell_answer(req, time.monotonic() + 3) is not None:
                    return time.monotonic() - self.started_at
            except OSError:
                if self._shell is not None:
                    self._shell.close()
                self._shell = None
                time.sleep(1)
        raise AssertionError(f"{self.name}: the guest did not answer within {timeout:.0f}s:\n{self.console_tail()}")

    # --- state, logs, stop ------------------------------------------------------------------
    def alive(self) -> None:
        if self.qemu is not None and self.qemu.poll() is not None:
            raise AssertionError(f"{self.name}: QEMU exited {self.qemu.returncode}:\n{self.qemu_log()}")

    def console_text(self) -> str:
        try:
            return self.console.read_bytes().decode(errors="replace")
        except OSError:
            return ""

    def console_tail(self, size: int = 5000) -> str:
        return self.console_text()[-size:]

    def qemu_log(self) -> str:
        try:
            return (self.dir / "qemu.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        self._watch_stop.set()
        for sock in (self._shell, self._qmp):
            if sock is not None:
                sock.close()
        self._shell = self._qmp = None
        for proc in (self.qemu, self.swtpm):
            if proc is not None:
                stop_process(proc, grace=15)
