"""Node addresses: the ``[network]`` policy, the fleet's per-site override, and the plan (data only).

The policy is an ordered list of selectors; the first selector that matches an
interface decides (agent/network/choose.py). An empty policy leaves the choice to
k3s/k0s (the interface of the default route) and renders no flags.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

AddressFamily = Literal["v4", "v6", "both"]
SelectorKind = Literal["", "physical", "bond", "vlan"]


def _cidr(value: str) -> str:
    if value:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"expected a CIDR such as 10.20.0.0/16 or fd00:20::/64, got {value!r}") from None
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NicSelector(_Frozen):
    """One rule of the policy; every criterion that is set must hold (empty/0/false: any)."""

    name: str = Field("", description="interface name glob, e.g. 'ens*f0' or 'bond0'")
    cidr: str = Field("", description="the address must lie in this network")
    min_speed_mbps: int = Field(0, ge=0, description="link speed at least this (a bond: sum of its links)")
    kind: SelectorKind = Field("", description="physical, bond or vlan; empty: any")
    not_default_route: bool = Field(False, description="skip interfaces that hold a default route")
    family: AddressFamily | Literal[""] = Field("", description="v4, v6 or both; empty: network.family")

    _c = field_validator("cidr")(_cidr)

    def describe(self) -> str:
        """The criteria that are set, for status: ``name=ens*, cidr=10.0.0.0/8``."""
        parts = [
            f"{k}={v}"
            for k, v in (
                ("name", self.name),
                ("cidr", self.cidr),
                ("min_speed_mbps", self.min_speed_mbps or ""),
                ("kind", self.kind),
                ("not_default_route", "true" if self.not_default_route else ""),
                ("family", self.family),
            )
            if v
        ]
        return ", ".join(parts) or "any interface"


def _sans(value: list[str]) -> list[str]:
    for i, san in enumerate(value):
        if not san or any(c.isspace() for c in san) or "," in san:
            raise ValueError(f"[{i}]: expected an IP address or DNS name, got {san!r}")
    return value


class NetworkSection(_Frozen):
    """``[network]``: which interface and addresses the node uses."""

    selectors: list[NicSelector] = Field(
        default_factory=list, description="ordered policy; empty: leave it to k3s/k0s (default-route interface)"
    )
    family: AddressFamily = Field("v4", description="address family of the node IP(s) unless a selector says")
    external_selectors: list[NicSelector] = Field(
        default_factory=list, description="when set, node-external-ip comes from the first match of these"
    )
    extra_sans: list[str] = Field(default_factory=list, description="servers: more tls-san / spec.api.sans entries")
    address_wait: float = Field(300.0, gt=0, description="seconds to wait for the chosen NIC's address")

    _s = field_validator("extra_sans")(_sans)


class NetworkOverride(_Frozen):
    """What a fleet assignment may set per site; a field that is None keeps the box's ``[network]``."""

    selectors: list[NicSelector] | None = None
    family: AddressFamily | None = None
    external_selectors: list[NicSelector] | None = None
    extra_sans: list[str] | None = None

    @field_validator("extra_sans")
    @classmethod
    def _sans(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _sans(v)

    def apply(self, section: NetworkSection) -> NetworkSection:
        """``section`` with this override's fields in place of its own."""
        changes = {k: v for k, v in self.model_dump(exclude_none=True).items()}
        return NetworkSection.model_validate({**section.model_dump(), **changes})


class NetworkPlan(_Frozen):
    """The node's addresses as chosen; rendered by agent/runtime/network_flags.py."""

    interface: str = Field(description="the CNI interface (flannel-iface)")
    internal: tuple[str, ...] = Field(description="node IPs, IPv4 first when both")
    external: tuple[str, ...] = ()
    advertise_address: str = Field("", description="servers only: the address the API server advertises")
    tls_sans: tuple[str, ...] = Field((), description="servers only: extra names/addresses in the server cert")
    rule: str = Field(description="the selector that chose it, e.g. 'network.selectors[1] (name=ens*)'")
    source: Literal["config", "fleet"] = "config"


class NetworkPending(_Frozen):
    """No address can be chosen yet: the runtime waits (condition NodeAddressPending), never falls back."""

    reason: Literal["NoSelectorMatched", "NoAddressYet"]
    message: str
    deadline: datetime = Field(description="when the wait counts as failed (status shows it overdue)")


NetworkChoice = NetworkPlan | NetworkPending
