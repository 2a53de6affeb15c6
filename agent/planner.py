"""The one pure planner: config + inventory + fleet assignment + host facts -> Desired.

No I/O. The fleet assignment, when present, wins over config's ``[kubernetes]``
for distribution, version, role, join wiring; labels merge hardware < config <
fleet. The node name (agent.node_name, else the hostname, whole: an FQDN stays
one) and the GPU runtime (an NVIDIA GPU in the inventory *and* the toolkit on
the box) are decided here, once, for the runtime and the upgrader alike.
Everything k3s/k0s would refuse at start (reserved label namespaces, bad label
syntax, an agent without a server, a node name the kubelet rejects) is refused
here, naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from agent.errors import ConfigError, ConfigProblem, NodeNameError
from agent.inventory.labels import node_labels
from agent.inventory.nvidia import NVIDIA
from agent.model.config import AgentConfig, KubernetesSection
from agent.model.desired import Desired, DesiredKube, GpuRuntime, HostFacts, InstallSource, UpgradePolicy
from agent.model.fleet import Assignment
from agent.model.inventory import Inventory
from agent.model.network import NetworkChoice, NetworkPlan
from agent.network.plan import plan_network
from agent.nodename import node_name_problem
from agent.runtime.labels import label_problems, taint_problems
from agent.storage.select import plan_storage, storage_problems

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # no start time known (check-config): deadlines are past
CONFIG = "[kubernetes]"
FLEET = "fleet assignment"
HARDWARE = "hardware labels"


def plan(
    config: AgentConfig, inventory: Inventory | None, assignment: Assignment | None, facts: HostFacts | None
) -> Desired:
    """Everything this box should be. ``facts`` None: planning without a host (check-config),
    so the hostname is not judged. Raises ConfigError (NodeNameError for the node name)
    listing every problem, each naming where it came from."""
    hardware = node_labels(inventory) if inventory is not None else {}
    kube = plan_kube(config, assignment, hardware, facts)
    network: NetworkChoice | None = None
    storage = plan_storage(config.storage, inventory) if inventory is not None else None
    problems = storage_problems(config.storage, inventory, "[storage]") if inventory is not None else []
    if kube is not None:
        since = facts.since if facts is not None and facts.since is not None else EPOCH
        network, more = plan_network(config, inventory, assignment, kube.role, since)
        problems += more
        paths = tuple(d.mountpoint for d in storage.namespaces if d.mountpoint) if storage is not None else ()
        kube = kube.model_copy(
            update={
                "gpu": gpu_runtime(inventory, facts),
                "network": network if isinstance(network, NetworkPlan) else None,
                "local_storage_paths": paths if storage is not None and storage.mode == "filesystem" else (),
            }
        )
    if problems:
        raise ConfigError(problems)
    return Desired(kube=kube, network=network, storage=storage, upgrade=upgrade_policy(config))


def upgrade_policy(config: AgentConfig) -> UpgradePolicy:
    u = config.upgrade
    return UpgradePolicy(
        release_keys=tuple(u.release_keys),
        health_deadline=u.health_deadline,
        maintenance_window=u.maintenance_window.strip(),
        update_lock=u.update_lock,
        require_fleet=bool(config.api.remote_listen),
    )


def gpu_runtime(inventory: Inventory | None, facts: HostFacts | None) -> GpuRuntime:
    """NVIDIA's container runtime only for a box with an NVIDIA compute GPU, and only when installed:
    a toolkit on PATH with no GPU in the inventory is left alone (the default runtime stays runc)."""
    installed = facts.nvidia_runtime if facts is not None else ""
    if inventory is None:
        return GpuRuntime(reason="hardware not scanned yet")
    gpus = [g for g in inventory.gpus if g.vendor_id == NVIDIA and not g.display_only]
    if not gpus:
        unused = f"; {installed} is installed but unused" if installed else ""
        return GpuRuntime(reason=f"no NVIDIA GPU in the inventory{unused}")
    count = f"{len(gpus)} NVIDIA GPU{'s' if len(gpus) > 1 else ''}"
    if not installed:
        return GpuRuntime(reason=f"{count}, but nvidia-container-runtime is not installed (the NVIDIA toolkit)")
    return GpuRuntime(nvidia=True, binary=installed, reason=f"{count}; containerd runtime nvidia uses {installed}")


def plan_kube(
    config: AgentConfig,
    assignment: Assignment | None,
    hardware_labels: Mapping[str, str],
    facts: HostFacts | None = None,
) -> DesiredKube | None:
    """The node this box should be, or None when nothing asks for Kubernetes.

    Raises ConfigError listing every problem, each naming where it came from."""
    k = config.kubernetes
    if assignment is None and k.distribution == "none":
        return None
    problems: list[ConfigProblem] = []
    problems += _check_labels(HARDWARE, "", hardware_labels)
    problems += _check_labels(CONFIG, "kubernetes.node_labels", k.node_labels)
    problems += _check_taints(CONFIG, "kubernetes.node_taints", k.node_taints)
    labels = {**hardware_labels, **k.node_labels}
    taints = list(k.node_taints)
    if assignment is not None:
        problems += _check_labels(FLEET, "labels", assignment.labels)
        problems += _check_taints(FLEET, "taints", assignment.taints)
        labels.update(assignment.labels)
        taints += [t for t in assignment.taints if t not in taints]
        desired = DesiredKube(
            origin="fleet",
            cluster=assignment.cluster,
            distribution=assignment.distribution,
            version=assignment.version or k.version,
            role=assignment.role,
            cluster_init=assignment.cluster_init,
            server_url=assignment.server_url,
            token=assignment.join_token,
            **_common(config, labels, taints),
        )
        source, prefix = FLEET, ""
    else:
        assert k.distribution != "none"
        desired = DesiredKube(
            origin="config",
            distribution=k.distribution,
            version=k.version,
            role=k.role,
            cluster_init=k.cluster_init,
            server_url=k.server_url,
            token=k.token,
            **_common(config, labels, taints),
        )
        source, prefix = CONFIG, "kubernetes."
    problems += _check_wiring(desired, source, prefix)
    problems += _check_source(k)
    if problems:
        raise ConfigError(problems)
    name, name_source = _node_name(config, facts)
    return desired.model_copy(update={"node_name": name, "node_name_source": name_source})


def _node_name(config: AgentConfig, facts: HostFacts | None) -> tuple[str, str]:
    """agent.node_name, else the hostname lower-cased and whole (as the kubelet takes it)."""
    if config.agent.node_name:
        name, source, key = config.agent.node_name, "config", "agent.node_name"
    elif facts is None:
        return "", ""
    else:
        name, source, key = facts.hostname.lower(), facts.hostname_source, ""
    problem = node_name_problem(name)
    if problem:
        hint = "" if key else "; set agent.node_name to a valid name"
        raise NodeNameError([ConfigProblem(source, key, f"node name {name!r} {problem}{hint}")])
    return name, key or source


def _common(config: AgentConfig, labels: dict[str, str], taints: list[str]) -> dict[str, object]:
    k = config.kubernetes
    return {
        "node_labels": dict(sorted(labels.items())),
        "node_taints": tuple(taints),
        "source": InstallSource(
            airgap_dir=k.airgap_dir, binary_url=k.binary_url, binary_sha256=k.binary_sha256.lower()
        ),
        "start_timeout": k.start_timeout,
        "ready_timeout": k.ready_timeout,
    }


def _check_labels(source: str, key: str, labels: Mapping[str, str]) -> list[ConfigProblem]:
    return [
        ConfigProblem(source, f"{key}.{label}" if key else label, f"invalid node label: {why}")
        for label, why in label_problems(labels)
    ]


def _check_taints(source: str, key: str, taints: list[str]) -> list[ConfigProblem]:
    return [ConfigProblem(source, key, f"invalid taint {t!r}: {why}") for t, why in taint_problems(taints)]


def _check_wiring(d: DesiredKube, source: str, prefix: str) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    url_key = f"{prefix}server_url"
    token_key = f"{prefix}token" if prefix else "join_token"
    token = d.token.get_secret_value()
    if d.server_url and not d.server_url.startswith("https://"):
        out.append(ConfigProblem(source, url_key, f"must start with https://, got {d.server_url!r}"))
    if d.role == "agent" and not d.server_url:
        out.append(ConfigProblem(source, url_key, "an agent needs the URL of the server it joins"))
    if d.server_url and not token:
        out.append(ConfigProblem(source, token_key, "joining a cluster needs its join token"))
    if d.cluster_init and d.role != "server":
        out.append(ConfigProblem(source, f"{prefix}cluster_init", "only a server can initialise a cluster"))
    if d.cluster_init and d.server_url:
        out.append(
            ConfigProblem(
                source,
                f"{prefix}cluster_init",
                "a node either initialises a cluster or joins one at server_url, not both",
            )
        )
    if d.distribution == "k3s" and not d.server_url and token.startswith("K10"):
        out.append(
            ConfigProblem(
                source,
                token_key,
                "the first k3s server takes only a short token (the secret), not a K10... token",
            )
        )
    return out


def _check_source(k: KubernetesSection) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    if k.binary_sha256 and not _SHA256.match(k.binary_sha256.lower()):
        out.append(ConfigProblem(CONFIG, "kubernetes.binary_sha256", "expected 64 hex digits (sha256)"))
    if k.binary_url and not k.binary_sha256:
        out.append(
            ConfigProblem(
                CONFIG, "kubernetes.binary_sha256", "binary_url is set: downloads are always checked, give its sha256"
            )
        )
    if k.binary_url and not k.binary_url.startswith(("https://", "http://")):
        out.append(ConfigProblem(CONFIG, "kubernetes.binary_url", "expected an http(s):// URL"))
    return out


def config_problems(config: AgentConfig) -> list[ConfigProblem]:
    """Problems in ``[kubernetes]`` alone (for ``agentd check-config``), hardware aside."""
    try:
        plan(config, None, None, None)
    except ConfigError as exc:
        return list(exc.problems)
    return []
