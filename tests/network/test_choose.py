"""The pure address choice on generated inventories: selectors, order, families, waits, the rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from agent.model.network import NetworkOverride, NetworkPending, NetworkPlan, NetworkSection
from agent.network.choose import choose
from agent.network.condition import address_condition
from agent.network.problems import network_problems
from tests.network.nics import edge_box, nic

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def policy(*selectors: dict[str, object], **kw: object) -> NetworkSection:
    return NetworkSection.model_validate({"selectors": list(selectors), **kw})


def plan(p: NetworkSection, role: str = "server", nics: object = None) -> NetworkPlan:
    got = choose(p, nics if nics is not None else edge_box(), role, NOW)  # type: ignore[arg-type]
    assert isinstance(got, NetworkPlan), got
    return got


def test_an_empty_policy_leaves_the_choice_to_the_runtime() -> None:
    assert choose(NetworkSection(), edge_box(), "server", NOW) is None


def test_minimum_speed_counts_a_bonds_links_and_picks_it_over_the_management_port() -> None:
    got = plan(policy({"min_speed_mbps": 25000}))
    assert (got.interface, got.internal) == ("bond0", ("198.51.100.7",))
    assert got.rule == "network.selectors.0 (min_speed_mbps=25000)"


def test_dual_stack_takes_one_address_per_family_and_never_link_local() -> None:
    got = plan(policy({"kind": "bond"}, family="both"))
    assert got.internal == ("198.51.100.7", "2001:db8:51::7")
    assert got.advertise_address == "198.51.100.7"
    assert got.tls_sans == ("198.51.100.7", "2001:db8:51::7")


def test_order_decides_and_the_rule_names_the_selector_that_chose() -> None:
    got = plan(policy({"name": "wwan*", "cidr": "10.0.0.0/8"}, {"kind": "vlan"}, {"name": "eno1"}))
    assert got.interface == "bond0.300" and got.rule == "network.selectors.1 (kind=vlan)"


def test_not_the_default_route_skips_the_management_port() -> None:
    got = plan(policy({"kind": "physical", "not_default_route": True}, {"name": "bond0"}))
    # the bonded physical ports carry no address of their own: bond members are not candidates
    assert got.interface == "bond0" and got.rule.startswith("network.selectors.1")


def test_an_agent_gets_no_advertise_address_or_sans_and_servers_get_extra_sans() -> None:
    assert plan(policy({"name": "bond0"}), role="agent").tls_sans == ()
    got = plan(policy({"name": "bond0"}, extra_sans=["api.edge.example", "198.51.100.7"]))
    assert got.tls_sans == ("198.51.100.7", "api.edge.example")


def test_external_address_from_its_own_selectors() -> None:
    got = plan(policy({"name": "bond0"}, external_selectors=[{"name": "wwan0"}]))
    assert got.external == ("100.64.9.9",) and got.tls_sans == ("198.51.100.7", "100.64.9.9")


def test_no_address_yet_waits_with_a_deadline_instead_of_falling_back() -> None:
    nics = (*edge_box(), nic("ens2f0", "fe80::9/64", speed_mbps=400000))
    got = choose(policy({"min_speed_mbps": 400000}, {"name": "eno1"}), nics, "server", NOW)
    assert isinstance(got, NetworkPending) and got.reason == "NoAddressYet"
    assert got.deadline == NOW + timedelta(seconds=300) and "ens2f0" in got.message


def test_nothing_matching_is_a_wait_too() -> None:
    got = choose(policy({"name": "enp9s*"}, address_wait=60), edge_box(), "agent", NOW)
    assert isinstance(got, NetworkPending) and got.reason == "NoSelectorMatched"
    assert got.deadline == NOW + timedelta(seconds=60) and "eno1" in got.message


def test_cni_interfaces_are_never_chosen_even_by_cidr() -> None:
    got = choose(policy({"cidr": "10.42.0.0/16", "family": "v4"}), edge_box(), "agent", NOW)
    assert isinstance(got, NetworkPending) and got.reason == "NoSelectorMatched"


def test_the_fleet_override_replaces_only_what_it_sets() -> None:
    mine = policy({"name": "eno1"}, extra_sans=["box.example"])
    site = NetworkOverride.model_validate({"selectors": [{"kind": "vlan"}]}).apply(mine)
    got = choose(site, edge_box(), "server", NOW, source="fleet")
    assert isinstance(got, NetworkPlan) and got.interface == "bond0.300" and got.source == "fleet"
    assert got.rule.startswith("assignment.network.selectors.0") and "box.example" in got.tls_sans


def test_an_invalid_cidr_is_refused_by_the_schema_with_its_key() -> None:
    with pytest.raises(ValidationError) as exc:
        NetworkSection.model_validate({"selectors": [{"cidr": "10.0.0.300/8"}]})
    (err,) = exc.value.errors()
    assert err["loc"] == ("selectors", 0, "cidr") and "expected a CIDR" in err["msg"]


def test_network_problems_name_the_selector_that_matches_nothing_and_a_family_mismatch() -> None:
    p = policy({"name": "bond0"}, {"name": "enp9s*"}, {"cidr": "2001:db8::/32"})
    problems = network_problems(p, edge_box(), "/etc/edge-agent/agent.toml")
    keys = {pr.key: pr.message for pr in problems}
    assert set(keys) == {"network.selectors.1", "network.selectors.2.cidr"}
    assert "matches no interface" in keys["network.selectors.1"] and "eno1" in keys["network.selectors.1"]
    assert "IPv6 but the family is v4" in keys["network.selectors.2.cidr"]
    assert all(pr.source == "/etc/edge-agent/agent.toml" for pr in problems)


def test_the_condition_says_what_was_chosen_by_which_rule_or_why_it_waits() -> None:
    ok = address_condition(plan(policy({"kind": "bond"})), NOW)
    assert (ok.status, ok.reason) == (
        "True",
        "Chosen",
    ) and ok.message == "198.51.100.7 on bond0, by network.selectors.0 (kind=bond)"
    pending = choose(policy({"name": "enp9s*"}), edge_box(), "agent", NOW)
    assert pending is not None
    waiting = address_condition(pending, NOW)
    assert (waiting.status, waiting.reason, waiting.severity) == ("False", "NodeAddressPending", "info")
    late = address_condition(pending, NOW + timedelta(seconds=301))
    assert late.severity == "error" and "overdue since 2026-12-02T06:05:00+00:00" in late.message
    assert address_condition(None, NOW).reason == "RuntimeDefault"
