"""Pure planner: config + fleet assignment + hardware labels -> desired Kubernetes state.

No I/O. The fleet assignment, when present, wins over config's ``[kubernetes]``
for distribution, version, role, join wiring; labels merge hardware < config <
fleet. Everything k3s/k0s would refuse at start (reserved label namespaces, bad
label syntax, an agent without a server) is refused here, naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from agent.errors import ConfigError, ConfigProblem
from agent.model.config import AgentConfig, KubernetesSection
from agent.model.desired import DesiredKube, InstallSource
from agent.model.fleet import Assignment
from agent.runtime.labels import label_problems, taint_problems

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
CONFIG = "[kubernetes]"
FLEET = "fleet assignment"
HARDWARE = "hardware labels"


def plan(config: AgentConfig, assignment: Assignment | None, hardware_labels: Mapping[str, str]) -> DesiredKube | None:
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
    if desired.node_name and (len(desired.node_name) > 253 or not _NODE_NAME.match(desired.node_name)):
        problems.append(
            ConfigProblem(CONFIG, "agent.node_name", "must be a lowercase DNS subdomain (a-z, 0-9, '-', '.')")
        )
    if problems:
        raise ConfigError(problems)
    return desired


def _common(config: AgentConfig, labels: dict[str, str], taints: list[str]) -> dict[str, object]:
    k = config.kubernetes
    return {
        "node_name": config.agent.node_name,
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
        plan(config, None, {})
    except ConfigError as exc:
        return list(exc.problems)
    return []
