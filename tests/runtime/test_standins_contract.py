"""The stand-ins follow shared/contracts/k3s-k0s.md (what the runtime tests rely on)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from .boxes import DIST, Box


@pytest.fixture
def k3s(make_box: Callable[..., Box]) -> Box:
    box = make_box("n1", "10.0.0.1")
    bin_dir = box.root / "usr/local/bin"
    bin_dir.mkdir(parents=True)
    for name in ("k3s", "k0s"):
        (bin_dir / name).write_bytes(DIST.read_bytes())
        (bin_dir / name).chmod(0o755)
    return box


def exe(box: Box, name: str) -> str:
    return str(box.root / "usr/local/bin" / name)


class Service:
    """A stand-in server run in the foreground (as systemd would), until READY."""

    def __init__(self, box: Box, argv: list[str], **env: str) -> None:
        self.notify = box.root / "ready"
        self.proc = subprocess.Popen(
            argv,
            env={"PATH": box.path, **box.env, "EDGE_STANDIN_NOTIFY_FILE": str(self.notify), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.notify.exists():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=10)
        return err


@pytest.fixture
def services() -> Iterator[list[Service]]:
    running: list[Service] = []
    yield running
    for s in running:
        s.stop()


def write(box: Box, path: str, text: str) -> None:
    p = box.root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def node(box: Box, name: str, binary: str = "k3s") -> dict[str, object]:
    out = box.run(exe(box, binary), "kubectl", "get", "node", name, "-o", "json").stdout
    return dict(json.loads(out))


def ready_status(doc: dict[str, object]) -> str:
    conds = doc["status"]["conditions"]  # type: ignore[index]
    return str(next(c["status"] for c in conds if c["type"] == "Ready"))


def test_versions(k3s: Box) -> None:
    assert k3s.run(exe(k3s, "k3s"), "--version").stdout.splitlines() == [
        "k3s version v1.33.1+k3s1 (abcdef12)",
        "go version go1.24.2",
    ]
    assert k3s.run(exe(k3s, "k0s"), "version").stdout == "v1.36.3+k0s.1\n"
    keys = json.loads(k3s.run(exe(k3s, "k0s"), "version", "-j").stdout)
    assert set(keys) == {"k0s", "runc", "containerd", "kubernetes", "kine", "etcd", "konnectivity"}


def test_k3s_config_merge_rules_and_tokens(k3s: Box, services: list[Service]) -> None:
    write(k3s, "/etc/rancher/k3s/config.yaml", 'node-name: "n1"\nnode-label: ["a=1"]\nbogus-key: 1\n')
    write(k3s, "/etc/rancher/k3s/config.yaml.d/10-x.yaml", 'node-label+:\n  - "b=2"\n')
    write(k3s, "/etc/rancher/k3s/config.yaml.d/20-y.yaml", "write-kubeconfig-mode: '0644'\n")
    s = Service(k3s, [exe(k3s, "k3s"), "server"])
    services.append(s)
    assert s.ready()
    labels = node(k3s, "n1")["metadata"]["labels"]  # type: ignore[index]
    assert labels["a"] == "1" and labels["b"] == "2"
    server = k3s.root / "var/lib/rancher/k3s/server"
    ca = (server / "tls/server-ca.crt").read_bytes()
    import hashlib

    token = (server / "token").read_text().strip()
    assert token.startswith("K10" + hashlib.sha256(ca).hexdigest() + "::server:")
    assert (server / "token").stat().st_mode & 0o777 == 0o600
    assert os.readlink(server / "node-token") == "token" and os.readlink(server / "agent-token") == "token"
    assert (k3s.root / "etc/rancher/k3s/k3s.yaml").stat().st_mode & 0o777 == 0o644
    err = s.stop()
    assert "Unknown flag --bogus-key found in config.yaml, skipping" in err
    assert "k3s is up and running" in err


def test_k3s_cli_list_replaces_file_list(k3s: Box, services: list[Service]) -> None:
    write(k3s, "/etc/rancher/k3s/config.yaml", 'node-label: ["a=1"]\n')
    s = Service(k3s, [exe(k3s, "k3s"), "server", "--node-name", "n2", "--node-label", "c=3"])
    services.append(s)
    assert s.ready()
    labels = node(k3s, "n2")["metadata"]["labels"]  # type: ignore[index]
    assert "a" not in labels and labels["c"] == "3"


def test_k3s_reserved_label_is_fatal(k3s: Box) -> None:
    r = k3s.run(exe(k3s, "k3s"), "server", "--node-label", "kubernetes.io/role=x", check=False)
    assert r.returncode == 1
    assert 'level=fatal msg="Error: failed to validate kubelet flags' in r.stderr
    assert "kubernetes.io/role" in r.stderr


def test_k3s_agent_needs_server_and_root(k3s: Box) -> None:
    r = k3s.run(exe(k3s, "k3s"), "agent", check=False)
    assert r.returncode == 1 and "--server is required" in r.stderr
    r = subprocess.run(
        [exe(k3s, "k3s"), "agent", "--server", "https://x:6443", "--token", "t"],
        env={"PATH": k3s.path, **k3s.env, "EDGE_STANDIN_EUID": "1000"},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "agent requires additional privilege" in r.stderr


def test_node_ready_false_then_unknown(k3s: Box, services: list[Service]) -> None:
    s = Service(k3s, [exe(k3s, "k3s"), "server", "--node-name", "n3"], EDGE_STANDIN_READY_DELAY="60")
    services.append(s)
    assert s.ready()
    assert ready_status(node(k3s, "n3")) == "False"
    os.kill(s.proc.pid, signal.SIGKILL)
    s.proc.wait()
    # another server of the cluster keeps the API up while this node's kubelet is gone
    s2 = Service(k3s, [exe(k3s, "k3s"), "server", "--node-name", "other"])
    services.append(s2)
    assert s2.ready()
    k3s.extra_env["EDGE_STANDIN_GRACE"] = "0.1"
    time.sleep(0.3)
    assert ready_status(node(k3s, "n3")) == "Unknown"


def test_sd_notify_under_a_real_systemd(k3s: Box, services: list[Service]) -> None:
    path = f"/tmp/standin-notify-{os.getpid()}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    try:
        s = Service(k3s, [exe(k3s, "k3s"), "server", "--node-name", "n4"], NOTIFY_SOCKET=path)
        services.append(s)
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()
        os.unlink(path)


@pytest.mark.slow
def test_k0s_service_rules(k3s: Box) -> None:
    k0s = exe(k3s, "k0s")
    r = k3s.run(k0s, "start", check=False)
    assert (r.returncode, r.stderr) == (1, "Error: k0s has not been installed as a service\n")
    r = k3s.run(k0s, "status", check=False)
    assert r.returncode == 1 and r.stderr.startswith('Error: status: can\'t get "status" via "/run/k0s/status.sock"')
    k3s.run(k0s, "install", "controller", "--single")
    r = k3s.run(k0s, "install", "controller", "--single", check=False)
    assert r.stderr == "Error: Init already exists: /etc/systemd/system/k0scontroller.service\n"
    k3s.run(k0s, "install", "controller", "--single", "--force")
    k3s.run(k0s, "start")
    assert k3s.run(k0s, "start", check=False).stderr == "Error: already running\n"
    deadline = time.monotonic() + 10
    while k3s.run(k0s, "status", check=False).returncode and time.monotonic() < deadline:
        time.sleep(0.1)
    text = k3s.run(k0s, "status").stdout.splitlines()
    assert [line.split(":")[0] for line in text] == [
        "Version",
        "Process ID",
        "Role",
        "Workloads",
        "SingleNode",
        "Kube-api probing successful",
        "Kube-api probing last error",
    ]
    doc = json.loads(k3s.run(k0s, "status", "-o", "json").stdout)
    assert {"Version", "Pid", "PPid", "Role", "SysInit", "StubFile", "Workloads", "SingleNode", "Args"} <= set(doc)
    assert k3s.run(k0s, "token", "create", check=False).stderr == "Error: cannot join into a single node cluster\n"
    assert "another k0s process is still running" in k3s.run(k0s, "reset", check=False).stderr
    k3s.run(k0s, "stop")
    assert k3s.run(k0s, "stop", check=False).stderr == "Error: already stopped\n"
    r = subprocess.run(
        [k0s, "start"], env={"PATH": k3s.path, **k3s.env, "EDGE_STANDIN_EUID": "1000"}, capture_output=True, text=True
    )
    assert (r.returncode, r.stderr) == (1, "Error: this command must be run as root\n")


def test_systemctl_daemon_reload_warning(k3s: Box) -> None:
    write(
        k3s,
        "/etc/systemd/system/t.service",
        f"[Service]\nExecStart={sys.executable} -c 'import time; time.sleep(60)'\n",
    )
    k3s.run("systemctl", "start", "t")
    assert k3s.run("systemctl", "is-active", "t").stdout == "active\n"
    write(k3s, "/etc/systemd/system/t.service", "[Service]\nExecStart=/bin/true\n")
    r = k3s.run("systemctl", "restart", "t")
    assert "changed on disk. Run 'systemctl daemon-reload' to reload units." in r.stderr
    k3s.run("systemctl", "stop", "t")
    assert k3s.run("systemctl", "is-active", "t", check=False).returncode == 3
