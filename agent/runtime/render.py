"""Pure renderer: desired state + a few facts about the box -> the exact files and argv.

No I/O. The same input always gives the same bytes, so a reconcile that finds
every file already holding them writes nothing and restarts nothing.
Paths here are box paths; the controller maps them under ``Paths``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import tomli_w

from agent.model.desired import DesiredKube
from agent.runtime import yamltext
from agent.runtime.layout import K0S, K0S_NVIDIA, K0S_TOKEN, K3S, K3S_DROPIN, SYSTEMD
from agent.runtime.network_flags import k0s_api_spec, k0s_kubelet_args, k3s_network_keys
from agent.storage.mountunit import k3s_storage_keys

# files that matter only when the node first registers (node-label/node-taint)
REGISTRATION_ONLY = frozenset({K3S_DROPIN})

MANAGED = "# Managed by edge-agent; rewritten on every reconcile, do not edit.\n"
REGISTRATION_NOTE = "# Node labels and taints apply only when the node first registers.\n"


@dataclass(frozen=True)
class Facts:
    """What the controller found on the box that the files depend on."""

    node_name: str
    nvidia_runtime: str = ""  # box path of nvidia-container-runtime, "" when absent
    agent_token: str = ""  # k3s, first server: the password of the cluster's agent token (contract A4, A9)


@dataclass(frozen=True)
class FileSpec:
    path: str
    data: bytes
    mode: int = 0o644
    secret: bool = False


@dataclass(frozen=True)
class Rendered:
    distribution: str
    unit: str
    files: tuple[FileSpec, ...]
    remove: tuple[str, ...] = ()
    install_argv: tuple[str, ...] = ()  # k0s only: the `k0s install ...` invocation
    secrets: tuple[str, ...] = ()  # rendered secrets besides the join token, masked in logs and status

    @property
    def digest(self) -> str:
        """sha256 over everything rendered (what was last applied, kept in state)."""
        h = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.path):
            h.update(f"{f.path}\0{f.mode:o}\0".encode())
            h.update(hashlib.sha256(f.data).digest())
        h.update("\0".join(self.install_argv).encode())
        return h.hexdigest()


def k3s_unit_name(role: str) -> str:
    return "k3s" if role == "server" else "k3s-agent"


def k0s_unit_name(role: str) -> str:
    return "k0scontroller" if role == "server" else "k0sworker"


def unit_name(d: DesiredKube) -> str:
    """The systemd unit k3s/k0s runs as for this node's distribution and role."""
    return k3s_unit_name(d.role) if d.distribution == "k3s" else k0s_unit_name(d.role)


def render(desired: DesiredKube, facts: Facts) -> Rendered:
    return render_k3s(desired, facts) if desired.distribution == "k3s" else render_k0s(desired, facts)


# --- k3s ---------------------------------------------------------------------------------


def render_k3s(d: DesiredKube, facts: Facts) -> Rendered:
    unit = k3s_unit_name(d.role)
    other = k3s_unit_name("agent" if d.role == "server" else "server")
    config: dict[str, yamltext.Value] = {"node-name": facts.node_name}
    if d.role == "server":
        config["write-kubeconfig-mode"] = "0600"
        if d.cluster_init:
            config["cluster-init"] = True
            if facts.agent_token:
                # agents then join with K10<hash>::node:<password>, which cannot join a server
                config["agent-token"] = facts.agent_token
    if d.server_url:
        config["server"] = d.server_url
    config.update(k3s_network_keys(d.network, d.role))
    if d.role == "server":  # a server flag: the local-path provisioner runs with the servers
        config.update(k3s_storage_keys(d.local_storage_paths))
    dropin: dict[str, yamltext.Value] = {}
    if d.node_labels:
        dropin["node-label"] = [f"{k}={v}" for k, v in sorted(d.node_labels.items())]
    if d.node_taints:
        dropin["node-taint"] = list(d.node_taints)
    env = [f"K3S_TOKEN={d.token.get_secret_value()}"] if d.token.get_secret_value() else []
    files = (
        FileSpec(K3S.config, yamltext.document(config, MANAGED).encode(), 0o600, secret="agent-token" in config),
        FileSpec(K3S_DROPIN, yamltext.document(dropin, MANAGED + REGISTRATION_NOTE).encode(), 0o600),
        FileSpec(f"{SYSTEMD}/{unit}.service", k3s_unit(d.role, unit).encode(), 0o644),
        FileSpec(f"{SYSTEMD}/{unit}.service.env", "".join(f"{e}\n" for e in env).encode(), 0o600, secret=True),
    )
    return Rendered(
        "k3s",
        unit,
        files,
        remove=(f"{SYSTEMD}/{other}.service", f"{SYSTEMD}/{other}.service.env"),
        secrets=(facts.agent_token,) if facts.agent_token and d.role == "server" and d.cluster_init else (),
    )


def k3s_unit(role: str, unit: str) -> str:
    """The unit install.sh would write (contract A2), with our own ExecStart."""
    command = "server" if role == "server" else "agent"
    return f"""[Unit]
Description=Lightweight Kubernetes ({unit}, managed by edge-agent)
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-{SYSTEMD}/{unit}.service.env
KillMode=process
Delegate=yes
User=root
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart={K3S.binary} {command}
"""


# --- k0s ---------------------------------------------------------------------------------


def render_k0s(d: DesiredKube, facts: Facts) -> Rendered:
    unit = k0s_unit_name(d.role)
    other = k0s_unit_name("agent" if d.role == "server" else "server")
    files: list[FileSpec] = []
    argv: list[str] = [K0S.binary, "install", "controller" if d.role == "server" else "worker"]
    if d.role == "server":
        files.append(FileSpec(K0S.config, k0s_config(d).encode(), 0o600))
        argv += ["-c", K0S.config]
        argv += ["--single"] if d.single else ["--enable-worker", "--no-taints"]
    if d.server_url:
        files.append(FileSpec(K0S_TOKEN, (d.token.get_secret_value() + "\n").encode(), 0o600, secret=True))
        argv += ["--token-file", K0S_TOKEN]
    if d.node_labels:
        argv += ["--labels", ",".join(f"{k}={v}" for k, v in sorted(d.node_labels.items()))]
    if d.node_taints:
        argv += ["--taints", ",".join(d.node_taints)]
    kubelet = [f"--hostname-override={facts.node_name}", *k0s_kubelet_args(d.network)]
    argv += [f"--kubelet-extra-args={' '.join(kubelet)}"]  # k0s takes one value: every kubelet flag in it
    if facts.nvidia_runtime:
        files.append(FileSpec(K0S_NVIDIA, k0s_nvidia_dropin(facts.nvidia_runtime).encode(), 0o644))
    return Rendered(
        "k0s",
        unit,
        tuple(files),
        remove=(f"{SYSTEMD}/{other}.service",) + (() if facts.nvidia_runtime else (K0S_NVIDIA,)),
        install_argv=tuple(argv),
    )


def k0s_config(d: DesiredKube) -> str:
    doc: dict[str, yamltext.Value] = {
        "apiVersion": "k0s.k0sproject.io/v1beta1",
        "kind": "ClusterConfig",
        "metadata": {"name": "k0s"},
        "spec": {"storage": {"type": "kine" if d.single else "etcd"}},
    }
    api = k0s_api_spec(d.network)
    if api:
        doc["spec"] = {"api": dict(api), "storage": {"type": "kine" if d.single else "etcd"}}
    return yamltext.document(doc, MANAGED)


def k0s_nvidia_dropin(runtime: str) -> str:
    """containerd drop-in adding the ``nvidia`` runtime (k0s does not detect it itself)."""
    nvidia = {"runtime_type": "io.containerd.runc.v2", "options": {"BinaryName": runtime}}
    cri = {"containerd": {"runtimes": {"nvidia": nvidia}}}
    return MANAGED + tomli_w.dumps({"version": 2, "plugins": {"io.containerd.grpc.v1.cri": cri}})
