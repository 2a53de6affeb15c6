"""Config checks of the network policy against this box's interfaces (ConfigValid=False, never a stop)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from agent.errors import ConfigProblem
from agent.model.inventory import Nic
from agent.model.network import NetworkSection, NicSelector
from agent.network.match import link_matches


def _check(
    selectors: Sequence[NicSelector], family: str, key: str, source: str, nics: Sequence[Nic]
) -> list[ConfigProblem]:
    out: list[ConfigProblem] = []
    names = ", ".join(sorted(n.name for n in nics)) or "none"
    for i, sel in enumerate(selectors):
        fam = sel.family or family
        if sel.cidr:
            version = ipaddress.ip_network(sel.cidr, strict=False).version
            if fam != "both" and fam != f"v{version}":
                out.append(
                    ConfigProblem(source, f"{key}.{i}.cidr", f"{sel.cidr} is IPv{version} but the family is {fam}")
                )
        if not any(link_matches(sel, n, nics) for n in nics):
            out.append(
                ConfigProblem(
                    source,
                    f"{key}.{i}",
                    f"selector ({sel.describe()}) matches no interface on this box (interfaces: {names})",
                )
            )
    return out


def network_problems(
    policy: NetworkSection, nics: Sequence[Nic], source: str, prefix: str = "network"
) -> list[ConfigProblem]:
    """Every selector that can never choose on this box, named by its key (``network.selectors.1``)."""
    return [
        *_check(policy.selectors, policy.family, f"{prefix}.selectors", source, nics),
        *_check(policy.external_selectors, policy.family, f"{prefix}.external_selectors", source, nics),
    ]
