"""agentctl's fast command-line reader agrees with argparse on every well-formed command line."""

from __future__ import annotations

import pytest

from agent.cli.args import build_parser, fast_parse

GOOD = [
    ["status"],
    ["--root", "/tmp/r", "status", "-o", "json"],
    ["--socket=/x.sock", "--request-timeout", "0.5", "status", "--wait", "--timeout", "3"],
    ["status", "--output=json", "--wait"],
    ["inventory"],
    ["--root", "/r", "inventory", "-o", "text"],
    ["upgrade", "/b/agent.bundle"],
    ["upgrade", "https://x/b.tar", "--wait", "--force", "--timeout", "10"],
    ["upgrade", "status"],
    ["upgrade", "status", "abc123", "-o", "json"],
    ["upgrade", "cancel", "abc123"],
]

ODD = [
    [],
    ["--help"],
    ["status", "-h"],
    ["nope"],
    ["status", "-o", "yaml"],
    ["status", "--timeout", "soon"],
    ["--socket", "/a", "--root", "/b", "status"],
    ["status", "extra"],
    ["upgrade"],
    ["upgrade", "a", "b", "c"],
    ["status", "--wait=yes"],
    ["--request-timeout"],
]


@pytest.mark.parametrize("argv", GOOD, ids=[" ".join(a) for a in GOOD])
def test_fast_reader_matches_argparse(argv: list[str]) -> None:
    fast = fast_parse(argv)
    assert fast is not None
    assert vars(fast) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", ODD, ids=[" ".join(a) or "(empty)" for a in ODD])
def test_help_and_mistakes_go_to_argparse(argv: list[str]) -> None:
    assert fast_parse(argv) is None
