"""k3s stop and uninstall do what k3s-killall.sh does (the agent never installs that script),
against real processes, real mounts and real links in a network namespace the test creates.

Mounts and namespaces need root (CI runs as root); those tests skip cleanly otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.errors import CommandFailed, RuntimeRemoveError
from agent.paths import Paths
from agent.runtime.k0s import K0s
from agent.runtime.k3s import K3s
from agent.runtime.killall import Killall, strip_rules
from agent.runtime.mounts import Mounts
from agent.sysexec import Completed, ProcessRunner

from .boxes import BIN, DIST, alive, wait_gone

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, network namespaces)")
SHIM = "var/lib/rancher/k3s/data/6f1c2a/bin/containerd-shim-runc-v2"
SHIM_SCRIPT = '#!/bin/sh\nsleep 300 &\necho $! > "$1"\nwait\n'


def runner(root: Path) -> ProcessRunner:
    """The agent's runner with the stand-in systemctl first on PATH (real ps, kill, umount, ip)."""
    return ProcessRunner(
        path=f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        base_env={"LC_ALL": "C", "EDGE_STANDIN_ROOT": str(root)},
    )


def start_shim(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A real process tree where k3s's containerd shims run: the shim and a child (a 'pod')."""
    exe = root / SHIM
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text(SHIM_SCRIPT)
    exe.chmod(0o755)
    pidfile = root / "pod.pid"
    proc = subprocess.Popen([str(exe), str(pidfile)], start_new_session=True)
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            return proc, int(pidfile.read_text())
        subprocess.run(["sleep", "0.05"], check=True)
    raise AssertionError("shim did not start its child")


def k3s_box(root: Path) -> None:
    """What an agent-installed k3s server leaves on disk (unit not running)."""
    for rel, text in {
        "usr/local/bin/k3s": "#!/bin/sh\nexit 0\n",
        "etc/systemd/system/k3s.service": "[Service]\nType=notify\nExecStart=/usr/local/bin/k3s server\n",
        "etc/systemd/system/k3s.service.env": "K3S_TOKEN=x\n",
        "etc/rancher/k3s/config.yaml": "node-name: edge-1\n",
        "etc/rancher/node/password": "secret\n",
        "var/lib/rancher/k3s/server/token": "K10abc::server:x\n",
        "var/lib/kubelet/cpu_manager_state": "{}\n",
    }.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


@pytest.fixture
def mounts_under(tmp_path: Path) -> Iterator[Path]:
    """A scratch root; whatever is still mounted under it is unmounted afterwards."""
    root = tmp_path / "box"
    root.mkdir()
    yield root
    for point in Mounts(Paths(root)).below("/"):
        subprocess.run(["umount", "-l", str(Paths(root).under(point))], check=False)


def mount_tmpfs(root: Path, box_path: str) -> Path:
    target = Paths(root).under(box_path)
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "edge-test", str(target)], check=True)
    (target / "data.txt").write_text("a pod's volume\n")
    return target


def is_mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)], check=False).returncode == 0


# --- processes ------------------------------------------------------------------------


async def test_stop_kills_the_containerd_shim_trees_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "box"
    k3s_box(root)
    shim, pod = start_shim(root)
    other_root = tmp_path / "other"
    other, other_pod = start_shim(other_root)  # a shim of another root: not this box's
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        await K3s(Paths(root), runner(root)).stop()
        assert wait_gone(shim.pid, shim) and wait_gone(pod), "the shim and its pod survived stop()"
        assert alive(other.pid) and alive(other_pod) and alive(bystander.pid)
    finally:
        for p in (shim, other, bystander):
            p.kill()
        for pid in (pod, other_pod):
            if alive(pid):
                os.kill(pid, 9)


# --- mounts ---------------------------------------------------------------------------


@root_only
async def test_uninstall_unmounts_pod_volumes_and_cni_netns_then_removes_the_data(mounts_under: Path) -> None:
    root = mounts_under
    k3s_box(root)
    volume = mount_tmpfs(root, "/var/lib/kubelet/pods/0d5e/volumes/kubernetes.io~empty-dir/cache")
    plugin = mount_tmpfs(root, "/var/lib/kubelet/plugins/kubernetes.io/csi/pv/globalmount")
    run_k3s = mount_tmpfs(root, "/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/4f2a/rootfs")
    netns = root / "run/netns/cni-3c1e-77aa"
    netns.parent.mkdir(parents=True)
    netns.write_text("")
    subprocess.run(["mount", "--bind", "/proc/self/ns/net", str(netns)], check=True)
    await K3s(Paths(root), runner(root)).uninstall()
    for point in (volume, plugin, run_k3s, netns):
        assert not is_mounted(point), f"{point} is still mounted"
    for gone in ("var/lib/kubelet", "run/k3s", "var/lib/rancher/k3s", "etc/rancher/k3s", "usr/local/bin/k3s"):
        assert not (root / gone).exists(), gone
    assert not netns.exists()
    assert (root / "etc/rancher/node/password").read_text() == "secret\n"


@root_only
async def test_uninstall_refuses_while_a_mount_remains_and_deletes_nothing(mounts_under: Path) -> None:
    root = mounts_under
    k3s_box(root)
    snap = mount_tmpfs(root, "/var/lib/rancher/k3s/agent/containerd/snapshots/9")  # killall leaves these
    with pytest.raises(RuntimeRemoveError) as err:
        await K3s(Paths(root), runner(root)).uninstall()
    assert "/var/lib/rancher/k3s/agent/containerd/snapshots/9 is still mounted" in str(err.value)
    assert (snap / "data.txt").read_text() == "a pod's volume\n"
    for kept in (
        "usr/local/bin/k3s",
        "etc/systemd/system/k3s.service",
        "etc/rancher/k3s/config.yaml",
        "var/lib/rancher/k3s/server/token",
        "var/lib/kubelet/cpu_manager_state",
    ):
        assert (root / kept).exists(), kept


def test_mount_points_with_spaces_are_read_as_the_kernel_writes_them(tmp_path: Path) -> None:
    table = tmp_path / "mountinfo"
    box = tmp_path / "box root"
    table.write_text(
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        f"90 22 0:50 / {str(box).replace(' ', chr(92) + '040')}/var/lib/kubelet/pods/a\\040b rw - tmpfs t rw\n"
    )
    assert Mounts(Paths(box), table).below("/var/lib/kubelet") == ["/var/lib/kubelet/pods/a b"]


# --- network --------------------------------------------------------------------------


@dataclass
class Through:
    """The agent's runner, each command recorded in ``calls`` and run behind ``prefix`` (nsenter --net ...)."""

    inner: ProcessRunner
    prefix: tuple[str, ...] = ()
    calls: list[list[str]] = field(default_factory=list)

    def which(self, program: str) -> str | None:
        return self.inner.which(program)

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        check: bool = True,
    ) -> Completed:
        self.calls.append(list(argv))
        return await self.inner.run([*self.prefix, *argv], timeout=timeout, env=env, stdin=stdin, check=check)


def in_netns(inner: ProcessRunner, netns: str) -> Through:
    """The agent's runner, with every program run inside one network namespace."""
    return Through(inner, ("nsenter", f"--net=/run/netns/{netns}", "--"))


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter"):
        pytest.skip("needs root, ip and nsenter")
    name = f"edge-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    subprocess.run(["ip", "netns", "delete", name], check=False)


def in_ns(ns: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True).stdout


@root_only
async def test_killall_removes_the_cni_and_flannel_links_in_the_box_network(tmp_path: Path, netns: str) -> None:
    for cmd in (
        "link add cni0 type bridge",
        "link add veth7a1 type veth peer name eth0-pod",
        "link set veth7a1 master cni0",
        "link add flannel.1 type bridge",
        "link add kube-ipvs0 type bridge",
        "link add uplink0 type bridge",
    ):
        subprocess.run(["ip", "-n", netns, *cmd.split()], check=True)
    root = tmp_path / "box"
    k3s_box(root)
    report = await K3s(Paths(root), in_netns(runner(root), netns), network=True).killall.run()
    left = {link["ifname"] for link in json.loads(in_ns(netns, "ip", "-j", "link", "show"))}
    assert left == {"lo", "uplink0"}, report.notes
    assert {"veth7a1", "cni0", "flannel.1", "kube-ipvs0"} <= set(report.links)


@root_only
async def test_killall_strips_kube_cni_and_flannel_iptables_rules(tmp_path: Path, netns: str) -> None:
    if not shutil.which("iptables-save"):
        pytest.skip("iptables is not installed")
    try:
        for rule in ("-N KUBE-SERVICES", "-A INPUT -j KUBE-SERVICES", "-N CNI-FORWARD", "-N FLANNEL-FWD",
                     "-N OPERATOR-KEEP", "-A INPUT -s 127.0.0.2/32 -j OPERATOR-KEEP"):  # fmt: skip
            in_ns(netns, "iptables", *rule.split())
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"iptables does not work here: {exc.stderr}")
    root = tmp_path / "box"
    k3s_box(root)
    report = await Killall(Paths(root), in_netns(runner(root), netns), network=True).run()
    saved = in_ns(netns, "iptables-save")
    assert "KUBE-" not in saved and "CNI-" not in saved and "FLANNEL" not in saved, report.notes
    assert "-A INPUT -s 127.0.0.2/32 -j OPERATOR-KEEP" in saved


def test_rule_stripping_keeps_every_other_line_of_iptables_save() -> None:
    saved = (
        "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FW - [0:0]\n-A INPUT -j KUBE-FW\n"
        "-A X -m comment --comment flannel\nCOMMIT\n"
    )
    kept, removed = strip_rules(saved)
    assert kept == "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n" and removed == 3


async def test_killall_leaves_the_host_network_alone_on_a_scratch_root(tmp_path: Path) -> None:
    root = tmp_path / "box"
    k3s_box(root)
    recording = Through(runner(root))
    await Killall(Paths(root), recording).run()
    assert not [c for c in recording.calls if c[0] in ("ip", "iptables-save", "ip6tables-save")]
    assert ["systemctl", "stop", "k3s.service"] in recording.calls


# --- k0s --------------------------------------------------------------------------------


def k0s_box(root: Path) -> None:
    exe = root / "usr/local/bin/k0s"
    exe.parent.mkdir(parents=True)
    shutil.copy(DIST, exe)
    (root / "etc/k0s").mkdir(parents=True)
    (root / "etc/k0s/k0s.yaml").write_text("apiVersion: k0s.k0sproject.io/v1beta1\n")
    unit = root / "etc/systemd/system/k0scontroller.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(f"[Service]\nExecStart={exe} controller\n")
    (root / "var/lib/k0s/pki").mkdir(parents=True)


async def test_k0s_uninstall_of_a_stopped_k0s_resets_it_and_keeps_the_binary(tmp_path: Path) -> None:
    root = tmp_path / "box"
    k0s_box(root)
    await K0s(Paths(root), runner(root)).uninstall()  # `k0s stop` says "already stopped": fine
    assert not (root / "var/lib/k0s").exists() and not (root / "etc/systemd/system/k0scontroller.service").exists()
    assert not (root / "etc/k0s/k0s.yaml").exists()
    assert (root / "usr/local/bin/k0s").exists()


async def test_k0s_uninstall_that_k0s_refuses_says_why_and_keeps_the_config(tmp_path: Path) -> None:
    root = tmp_path / "box"
    k0s_box(root)
    r = runner(root)
    k0s = K0s(Paths(root), ProcessRunner(path=r.path, base_env={**r.base_env, "EDGE_STANDIN_EUID": "1000"}))
    with pytest.raises(RuntimeRemoveError) as err:
        await k0s.uninstall()
    assert "this command must be run as root" in str(err.value)
    assert isinstance(err.value.__cause__, CommandFailed)
    assert (root / "etc/k0s/k0s.yaml").exists() and (root / "var/lib/k0s/pki").is_dir()
