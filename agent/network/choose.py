"""The node's addresses from the ``[network]`` policy and the NIC inventory (pure).

Selectors are tried in order. A selector *matches* an interface when its name
glob, kind, minimum speed and default-route criteria hold. The first selector
that matches any interface decides:

- one of its interfaces (by name order) has an address of each wanted family
  (inside ``cidr`` when set): that is the plan;
- some matched interfaces have addresses of the family, none inside ``cidr``:
  the selector does not match after all, the next one is tried;
- the matched interfaces have no address of the family yet (DHCP late at boot,
  link down): :class:`NetworkPending` ``NoAddressYet`` — never a silent fall
  back to the next selector, which is usually the management port.

No selector matching at all is :class:`NetworkPending` ``NoSelectorMatched``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from agent.model.inventory import Nic
from agent.model.network import AddressFamily, NetworkChoice, NetworkPending, NetworkPlan, NetworkSection, NicSelector
from agent.network.match import in_cidr, link_matches, usable

Role = Literal["server", "agent"]
_VERSIONS: dict[str, tuple[int, ...]] = {"v4": (4,), "v6": (6,), "both": (4, 6)}
_WORDS = {"v4": "IPv4", "v6": "IPv6", "both": "IPv4 and IPv6"}


class _Found:
    def __init__(self, interface: str, addresses: tuple[str, ...], rule: str) -> None:
        self.interface, self.addresses, self.rule = interface, addresses, rule


class _Waiting:
    def __init__(self, reason: Literal["NoSelectorMatched", "NoAddressYet"], message: str) -> None:
        self.reason, self.message = reason, message


def _addresses(sel: NicSelector, nic: Nic, family: AddressFamily) -> tuple[str, ...] | Literal[False] | None:
    """The addresses chosen on ``nic``; None when a family has no address yet; False when none is in the CIDR."""
    chosen: list[str] = []
    for version in _VERSIONS[family]:
        ips = usable(nic, version)
        if not ips:
            return None
        inside = [ip for ip in ips if in_cidr(ip, sel.cidr)]
        if not inside:
            return False
        chosen.append(str(inside[0]))
    return tuple(chosen)


def _first(selectors: Sequence[NicSelector], key: str, family: AddressFamily, nics: Sequence[Nic]) -> _Found | _Waiting:
    for i, sel in enumerate(selectors):
        fam = sel.family or family
        rule = f"{key}.{i} ({sel.describe()})"
        matched = sorted((n for n in nics if link_matches(sel, n, nics)), key=lambda n: n.name)
        waiting: list[str] = []
        for nic in matched:
            got = _addresses(sel, nic, fam)
            if got:
                return _Found(nic.name, got, rule)
            if got is None and nic.operstate != "down":  # a port with no link is not about to get one
                waiting.append(nic.name)
        if waiting:
            return _Waiting(
                "NoAddressYet",
                f"{rule} chose {', '.join(waiting)} (link up), without a usable {_WORDS[fam]} address yet"
                + (f" in {sel.cidr}" if sel.cidr else ""),
            )
    names = ", ".join(sorted(n.name for n in nics)) or "none"
    return _Waiting(
        "NoSelectorMatched", f"no selector of {key} matches an interface with an address (interfaces: {names})"
    )


def choose(
    policy: NetworkSection,
    nics: Sequence[Nic],
    role: Role,
    since: datetime,
    source: Literal["config", "fleet"] = "config",
) -> NetworkChoice | None:
    """The plan, a wait (deadline ``since`` + ``address_wait``), or None for an empty policy (runtime default)."""
    if not policy.selectors:
        return None
    key = "network.selectors" if source == "config" else "assignment.network.selectors"
    deadline = since + timedelta(seconds=policy.address_wait)
    internal = _first(policy.selectors, key, policy.family, nics)
    if isinstance(internal, _Waiting):
        return NetworkPending(reason=internal.reason, message=internal.message, deadline=deadline)
    external: tuple[str, ...] = ()
    if policy.external_selectors:
        ext_key = key.replace("selectors", "external_selectors")
        found = _first(policy.external_selectors, ext_key, policy.family, nics)
        if isinstance(found, _Waiting):
            return NetworkPending(reason=found.reason, message=found.message, deadline=deadline)
        external = found.addresses
    sans: tuple[str, ...] = ()
    if role == "server":
        sans = tuple(dict.fromkeys((*internal.addresses, *external, *policy.extra_sans)))
    return NetworkPlan(
        interface=internal.interface,
        internal=internal.addresses,
        external=external,
        advertise_address=internal.addresses[0] if role == "server" else "",
        tls_sans=sans,
        rule=internal.rule,
        source=source,
    )
