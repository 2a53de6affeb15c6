"""Joining servers: a second k3s server (embedded etcd) and a second k0s controller."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from .boxes import Box


@pytest.mark.slow
async def test_k3s_second_server_joins_with_the_full_token(make_box: Callable[..., Box]) -> None:
    first = make_box("s1", "10.0.0.1")
    first.bundle("k3s")
    first.set_config(distribution="k3s", cluster_init=True, token="clustersecret")
    await first.converge(first.controller())
    tokens = first.ctx.join_tokens.value
    assert tokens is not None

    second = make_box("s2", "10.0.0.2")
    second.bundle("k3s")
    second.set_config(
        distribution="k3s", role="server", server_url="https://10.0.0.1:6443", token=tokens.server.get_secret_value()
    )
    await second.converge(second.controller())
    joined = second.ctx.join_tokens.value
    assert joined is not None and joined.server == tokens.server  # one cluster, one CA, one secret
    config = yaml.safe_load((second.root / "etc/rancher/k3s/config.yaml").read_text())
    assert config["server"] == "https://10.0.0.1:6443" and "cluster-init" not in config
    nodes = first.run(str(first.root / "usr/local/bin/k3s"), "kubectl", "get", "nodes").stdout
    assert "s1   Ready" in nodes and "s2   Ready" in nodes


@pytest.mark.slow
async def test_k0s_second_controller_joins_with_a_controller_token(make_box: Callable[..., Box]) -> None:
    first = make_box("c1", "10.0.0.1")
    first.bundle("k0s")
    first.set_config(distribution="k0s", cluster_init=True)
    await first.converge(first.controller())
    tokens = first.ctx.join_tokens.value
    assert tokens is not None

    second = make_box("c2", "10.0.0.2")
    second.bundle("k0s")
    second.set_config(
        distribution="k0s", role="server", server_url="https://10.0.0.1:6443", token=tokens.server.get_secret_value()
    )
    await second.converge(second.controller())
    unit = (second.root / "etc/systemd/system/k0scontroller.service").read_text()
    assert "--token-file=/etc/k0s/join-token" in unit and "--enable-worker=true" in unit
    nodes = first.run(str(first.root / "usr/local/bin/k0s"), "kubectl", "get", "nodes").stdout
    assert "c1   Ready" in nodes and "c2   Ready" in nodes

    # a worker token cannot make a controller
    third = make_box("c3", "10.0.0.3")
    third.bundle("k0s")
    third.set_config(
        distribution="k0s", role="server", server_url="https://10.0.0.1:6443", token=tokens.agent.get_secret_value()
    )
    await third.converge(third.controller(), until=lambda: third.cond("Running").reason == "TokenRejected", timeout=8)
    assert "wrong token type kubelet-bootstrap" in third.cond("Running").message
