"""agentctl's JSON reader gives exactly what json.loads gives, and refuses what it refuses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.cli.jsonread import loads

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(values, st.sampled_from(["", " ", "\n", " \r\n\t "]))
def test_same_as_json_loads(value: object, ws: str) -> None:
    raw = (ws + json.dumps(value) + ws).encode()
    assert loads(raw) == json.loads(raw)


@pytest.mark.parametrize("raw", [b"", b"   ", b"<html>", b'{"a": 1} x', b'{"a": 1}{}', b"\xff\xfe", b"{'a': 1}"])
def test_not_json_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        loads(raw)
