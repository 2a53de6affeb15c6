"""Boot an image tree under systemd-nspawn the way shared/NSPAWN.md measured it works here.

Host without systemd as PID 1, hybrid cgroups: nspawn runs from a private cgroup
(``/sys/fs/cgroup/{systemd,unified}/e2e/NAME``) with ``--keep-unit --register=no``,
and we enter the container with nsenter on its PID 1 (machined tools do not work).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import stop_process


def cgroup_roots() -> tuple[Path, ...]:
    """Where a private cgroup for nspawn goes: both hierarchies on a hybrid host, the one on a v2 host."""
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return (Path("/sys/fs/cgroup"),)
    return tuple(p for p in (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")) if p.is_dir())


EXIT_REBOOT = 133
BOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BootError(RuntimeError):
    """The container did not come up (the message carries the console tail)."""


@dataclass(frozen=True)
class Link:
    """A /30 between the host end ve-NAME and the container's host0."""

    network: ipaddress.IPv4Network
    routes: tuple[str, ...] = ()  # extra destinations the container reaches through the host

    @property
    def host(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def box(self) -> str:
        return str(self.network.network_address + 2)

    def network_file(self) -> str:
        routes = "".join(f"\n[Route]\nDestination={d}\nGateway={self.host}\n" for d in self.routes)
        return (
            "# written by tests/system: static address on the nspawn veth\n"
            "[Match]\nName=host0\n\n"
            f"[Network]\nAddress={self.box}/{self.network.prefixlen}\nLinkLocalAddressing=no\n"
            "IPv6AcceptRA=no\n" + routes
        )


@dataclass
class Container:
    name: str
    root: Path
    link: Link
    console: Path
    nspawn_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    boots: int = 0

    @classmethod
    def from_tree(cls, name: str, tree: Path, workdir: Path, link: Link) -> Container:
        """A fresh copy of ``tree`` (the cached image stays pristine) wired to ``link``."""
        if len(f"ve-{name}") > 15:
            raise ValueError(f"container name {name!r} too long for a veth name")
        root = workdir / name / "root"
        if root.exists():
            shutil.rmtree(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", "--reflink=auto", str(tree), str(root)], check=True)
        netdir = root / "etc/systemd/network"
        netdir.mkdir(parents=True, exist_ok=True)
        (netdir / "10-host0.network").write_text(link.network_file())
        return cls(name=name, root=root, link=link, console=workdir / name / "console.log")

    # -- lifecycle ----------------------------------------------------------------
    @property
    def veth(self) -> str:
        return f"ve-{self.name}"

    def _cgroups(self) -> list[Path]:
        return [r / "e2e" / self.name for r in cgroup_roots()]

    def start(self) -> None:
        """Boot; returns once the host end of the veth has its address (nspawn is still booting)."""
        if self.proc is not None and self.proc.poll() is None:
            raise BootError(f"{self.name}: already running")
        procs = []
        for cg in self._cgroups():
            cg.mkdir(parents=True, exist_ok=True)
            procs.append(str(cg / "cgroup.procs"))
        argv = [
            "systemd-nspawn", "--boot", "-D", str(self.root), "-M", self.name, "--register=no",
            "--keep-unit", "--console=read-only", "--network-veth", *self.nspawn_args,
        ]  # fmt: skip
        script = "".join(f'echo $$ > "{p}"; ' for p in procs) + 'exec "$@"'
        self.boots += 1
        with self.console.open("ab") as out:
            out.write(f"\n===== boot {self.boots}: {' '.join(argv)}\n".encode())
            out.flush()
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                ["setsid", "bash", "-c", script, "nspawn", *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._address_veth()

    def _address_veth(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not Path(f"/sys/class/net/{self.veth}").exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise BootError(f"{self.name}: {self.veth} did not appear\n{self.console_tail()}")
            time.sleep(0.02)
        subprocess.run(["ip", "addr", "replace", f"{self.link.host}/30", "dev", self.veth], check=True)
        subprocess.run(["ip", "link", "set", self.veth, "up"], check=True)

    def _check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            raise BootError(f"{self.name}: systemd-nspawn exited ({rc})\n{self.console_tail()}")

    def pid1(self) -> int:
        """Host PID of the container's systemd (the child of nspawn)."""
        self._check_alive()
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        for pid in children.read_text().split():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return int(pid)
        raise BootError(f"{self.name}: no systemd under nspawn pid {self.proc.pid}")

    def wait_booted(self, timeout: float = 60.0) -> str:
        """Wait for the system manager to finish booting; returns is-system-running's answer."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(BootError, OSError):
                pid = self.pid1()
                if Path(f"/proc/{pid}/root/run/systemd/private").exists():
                    break
            self._check_alive()
            if time.monotonic() > deadline:
                raise BootError(f"{self.name}: systemd did not come up in {timeout}s\n{self.console_tail()}")
            time.sleep(0.05)
        left = max(1.0, deadline - time.monotonic())
        res = self.sh("systemctl is-system-running --wait", timeout=left, check=False)
        return res.stdout.strip()

    def stop(self, timeout: float = 10.0) -> int | None:
        """Power off (SIGTERM to nspawn), then remove the veth and the private cgroups."""
        rc = None if self.proc is None else stop_process(self.proc, timeout)
        self.cleanup_host()
        return rc

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise BootError(f"{self.name}: nspawn still running after {timeout}s\n{self.console_tail()}") from exc

    def reboot(self, timeout: float = 30.0) -> None:
        """``systemctl reboot`` inside; nspawn exits 133; boot the same root again."""
        self.sh("systemctl reboot", check=False)
        rc = self.wait_exit(timeout)
        if rc != EXIT_REBOOT:
            raise BootError(f"{self.name}: reboot made nspawn exit {rc}, not {EXIT_REBOOT}\n{self.console_tail()}")
        self.cleanup_host()
        self.start()

    def cleanup_host(self) -> None:
        subprocess.run(["ip", "link", "del", self.veth], capture_output=True, check=False)
        self._reap()
        for cg in self._cgroups():
            if cg.is_dir():  # nested cgroups the container left, deepest first
                for d in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    with contextlib.suppress(OSError):
                        d.rmdir()
                with contextlib.suppress(OSError):
                    cg.rmdir()

    def _reap(self, timeout: float = 5.0) -> None:
        """SIGKILL what is left in this box's private cgroup (a payload orphaned when nspawn itself
        had to be killed early in boot); only PIDs found in our own cgroup, never 0 or 1."""
        deadline = time.monotonic() + timeout
        while True:
            pids = {pid for cg in self._cgroups() if cg.is_dir() for pid in _cgroup_pids(cg)}
            if not pids or time.monotonic() > deadline:
                return
            for pid in pids:
                if pid > 1:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    # -- inside -------------------------------------------------------------------
    def sh(
        self, command: str, *, timeout: float = 30.0, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command inside the container (all its namespaces, its root)."""
        argv = ["nsenter", "-t", str(self.pid1()), "-m", "-u", "-i", "-n", "-p", "--", "/bin/sh", "-c", command]
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/root",
        }
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, input=input)
        if check and res.returncode != 0:
            raise AssertionError(
                f"{self.name}: `{command}` exited {res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}"
            )
        return res

    def unit_pid(self, unit: str) -> int:
        """MainPID of a unit, as a host-side PID of the process inside (0: not running)."""
        inner = int(self.sh(f"systemctl show -P MainPID {unit}").stdout.strip() or 0)
        if inner <= 1:
            return 0
        return host_pid(self.pid1(), inner)

    def journal(self, unit: str = "", lines: int = 200) -> str:
        what = f"-u {unit}" if unit else ""
        return self.sh(f"journalctl --no-pager -o short-monotonic -n {lines} {what}", check=False).stdout

    def console_tail(self, size: int = 4000) -> str:
        try:
            data = self.console.read_bytes()[-size:]
        except OSError:
            return "(no console log)"
        return data.decode(errors="replace")


def _cgroup_pids(cg: Path) -> set[int]:
    pids: set[int] = set()
    for procs in cg.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(line) for line in procs.read_text().split())
    return pids


def host_pid(pid1: int, inner: int) -> int:
    """Map a PID in the container's PID namespace to the host's by walking its processes."""
    ns = os.readlink(f"/proc/{pid1}/ns/pid")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "pid") != ns:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("NSpid:"):
                    ids = line.split()[1:]
                    if len(ids) >= 2 and int(ids[-1]) == inner:
                        return int(entry.name)
        except OSError:
            continue
    return 0
