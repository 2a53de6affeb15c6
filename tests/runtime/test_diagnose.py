"""Journal lines -> a reason a technician can act on (pure)."""

from __future__ import annotations

import pytest

from agent.runtime.diagnose import diagnose
from agent.runtime.kubectl import parse_node


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            'time="t" level=error msg="token CA hash does not match the Cluster CA certificate hash: a != b"',
            "TokenCAHashMismatch",
        ),
        (
            'time="t" level=info msg="Waiting to retrieve agent configuration; server is not ready: '
            'Get \\"https://10.0.0.1:6443/v1-k3s/serving-kubelet.crt\\": '
            'dial tcp 10.0.0.1:6443: connect: connection refused"',
            "ServerUnreachable",
        ),
        ('level=error msg="Node password rejected, duplicate hostname or contents of ..."', "NodePasswordRejected"),
        ("Error: failed to bootstrap kubelet client configuration: Unauthorized", "JoinFailed"),
        ('level=fatal msg="Error: server must run as root, or with --rootless and/or --disable-agent"', "NotRoot"),
        ('level=fatal msg="Error: something else"', "StartFailed"),
    ],
)
def test_reasons(line: str, reason: str) -> None:
    found = diagnose(['level=info msg="Starting k3s"', line, 'level=info msg="still trying"'])
    assert found is not None and found.reason == reason


def test_latest_telling_line_wins_and_secrets_are_masked() -> None:
    lines = [
        'level=error msg="token CA hash does not match the Cluster CA certificate hash: x != y"',
        'level=info msg="Waiting to retrieve agent configuration; server is not ready: '
        'https://s/v1-k3s: 401 Unauthorized (token s3cret)"',
    ]
    found = diagnose(lines, secrets=["s3cret"])
    assert found is not None and found.reason == "TokenRejected"
    assert "s3cret" not in found.message and "<redacted>" in found.message


def test_nothing_telling() -> None:
    assert diagnose(['level=info msg="k3s is up and running"']) is None


@pytest.mark.parametrize("status", ["True", "False", "Unknown"])
def test_parse_node_ready(status: str) -> None:
    doc = (
        '{"status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, '
        f'{{"type": "Ready", "status": "{status}", "reason": "R", "message": "m"}}], '
        '"nodeInfo": {"kubeletVersion": "v1.33.1+k3s1"}}}'
    )
    ready = parse_node(doc)
    assert (ready.status, ready.reason, ready.kubelet_version) == (status, "R", "v1.33.1+k3s1")


def test_parse_node_garbage() -> None:
    assert parse_node("not json").status == "Unknown"
