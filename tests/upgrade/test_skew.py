from __future__ import annotations

import pytest

from agent.errors import SkewError
from agent.upgrade.skew import KubeVersion, check_upgrade

V = KubeVersion.parse


@pytest.mark.parametrize(
    ("current", "new", "role", "servers", "refusal"),
    [
        ("v1.33.1+k3s1", "v1.33.2+k3s1", "server", [], None),
        ("v1.33.1+k3s1", "v1.33.1+k3s2", "server", [], None),
        ("v1.33.1+k3s1", "v1.34.0+k3s1", "server", ["v1.33.1+k3s1"], None),
        ("v1.33.1+k3s1", "v1.33.1+k3s1", "server", [], "already installed"),
        ("v1.33.2+k3s1", "v1.33.1+k3s1", "server", [], "downgrade"),
        ("v1.34.0+k3s1", "v1.33.9+k3s1", "server", [], "downgrade"),
        ("v1.33.1+k3s1", "v1.35.0+k3s1", "server", [], "skips a minor"),
        ("v1.33.1+k3s1", "v2.34.0+k3s1", "server", [], "skips a minor"),
        ("v1.33.1+k3s1", "v1.34.0+k3s1", "server", ["v1.32.5+k3s1"], "within one minor"),
        ("v1.33.1+k3s1", "v1.34.0+k3s1", "agent", ["v1.33.1+k3s1"], "never newer than servers"),
        ("v1.33.1+k3s1", "v1.34.0+k3s1", "agent", ["v1.34.0+k3s1", "v1.33.9+k3s1"], "never newer"),
        ("v1.33.1+k3s1", "v1.34.0+k3s1", "agent", ["v1.34.1+k3s1"], None),
        ("v1.33.1+k3s1", "v1.34.0+k3s1", "agent", [], "cannot tell the servers"),
        ("v1.36.3+k0s.1", "v1.36.3+k0s.2", "agent", ["v1.36.3+k0s.2"], None),
        ("v1.36.3+k0s.1", "v1.37.0+k0s.0", "server", [], None),
    ],
)
def test_skew_rules(current: str, new: str, role: str, servers: list[str], refusal: str | None) -> None:
    def check() -> None:
        check_upgrade(V(current), V(new), role=role, servers=[V(s) for s in servers])

    if refusal is None:
        check()
    else:
        with pytest.raises(SkewError, match=refusal):
            check()


def test_versions_parse_strictly() -> None:
    assert V("v1.33.1+k3s1") < V("v1.33.1+k3s2") < V("v1.33.2+k3s1")
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        V("latest")
