"""A :class:`NetworkPlan` as k3s config keys and k0s pieces (pure; contract A9 and B5).

k3s (config.yaml keys, lists for repeatable flags): ``node-ip`` (one per family),
``node-external-ip``, ``flannel-iface``; servers also ``advertise-address`` and
``tls-san``. k0s: ``spec.api.address`` / ``spec.api.sans`` in k0s.yaml for
controllers, and ``--node-ip=<ips>`` inside ``--kubelet-extra-args`` at
``k0s install`` for every node that runs a kubelet.
"""

from __future__ import annotations

from typing import Literal

from agent.model.network import NetworkPlan

Role = Literal["server", "agent"]
K3sValue = str | list[str]


def k3s_network_keys(plan: NetworkPlan | None, role: Role) -> dict[str, K3sValue]:
    """config.yaml keys; empty when no plan (k3s picks the default-route interface)."""
    if plan is None:
        return {}
    keys: dict[str, K3sValue] = {"node-ip": list(plan.internal), "flannel-iface": plan.interface}
    if plan.external:
        keys["node-external-ip"] = list(plan.external)
    if role == "server":
        keys["advertise-address"] = plan.advertise_address or plan.internal[0]
        if plan.tls_sans:
            keys["tls-san"] = list(plan.tls_sans)
    return keys


def k0s_api_spec(plan: NetworkPlan | None) -> dict[str, str | list[str]]:
    """The ``spec.api`` fields of k0s.yaml for a controller; empty when no plan."""
    if plan is None:
        return {}
    spec: dict[str, str | list[str]] = {"address": plan.advertise_address or plan.internal[0]}
    if plan.tls_sans:
        spec["sans"] = list(plan.tls_sans)
    return spec


def k0s_kubelet_args(plan: NetworkPlan | None) -> list[str]:
    """kubelet arguments for ``k0s install worker`` / ``controller --enable-worker``. k0s takes one
    ``--kubelet-extra-args`` value: join these with the others (``--hostname-override=...``) by spaces."""
    if plan is None:
        return []
    return [f"--node-ip={','.join(plan.internal)}"]
