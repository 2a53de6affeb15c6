"""The one Prometheus writer (agent/api/exposition.py): what any label value or help text turns
into is read back unchanged by prometheus_client's parser and passes promtool."""

from __future__ import annotations

import math
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from agent.api.exposition import Family, counter, gauge, histogram
from tests.needs import need_tool


def _text(*families: Family) -> str:
    return "\n".join(line for f in families for line in f.lines()) + "\n"


# HELP text is ours (fixed strings), never with whitespace around it, which the format does not keep
HELP_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",))).map(str.strip).filter(bool)


@given(value=st.text(), help_text=HELP_TEXT)
def test_any_label_value_and_help_text_round_trip(value: str, help_text: str) -> None:
    fam = gauge("edge_agent_test_info", help_text).add(1, {"name": value, "other": "x"})
    (parsed,) = text_string_to_metric_families(_text(fam))
    assert parsed.documentation == help_text
    assert [(s.labels, s.value) for s in parsed.samples] == [({"name": value, "other": "x"}, 1.0)]


def test_hostile_labels_pass_promtool_and_parse_back() -> None:
    promtool = need_tool("promtool", "prometheus")
    node = 'rack "7"\\slot\nB'
    fams = (
        gauge("edge_agent_test_node_info", "A node label with quote, backslash\\ and\nnewline.").add(1, {"node": node}),
        counter("edge_agent_test_events_total", "Events.").add(3, {"node": node}).add(0, {"node": ""}),
        histogram("edge_agent_test_seconds", "Latency.")
        .add(1, {"node": node, "le": "0.5"}, "_bucket")
        .add(2, {"node": node, "le": "+Inf"}, "_bucket")
        .add(0.75, {"node": node}, "_sum")
        .add(2, {"node": node}, "_count"),
        gauge("edge_agent_test_ratio", "Odd floats.").add(math.inf, {"v": "inf"}).add(0.1, {"v": "tenth"}),
    )
    text = _text(*fams)
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, ""), text
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert parsed["edge_agent_test_node_info"].documentation == "A node label with quote, backslash\\ and\nnewline."
    assert [(s.labels, s.value) for s in parsed["edge_agent_test_node_info"].samples] == [({"node": node}, 1.0)]
    assert [(s.name, s.labels, s.value) for s in parsed["edge_agent_test_events"].samples] == [
        ("edge_agent_test_events_total", {"node": node}, 3.0),
        ("edge_agent_test_events_total", {"node": ""}, 0.0),
    ]
    assert parsed["edge_agent_test_events"].type == "counter"
    assert parsed["edge_agent_test_seconds"].type == "histogram"
    assert [s.value for s in parsed["edge_agent_test_seconds"].samples] == [1.0, 2.0, 0.75, 2.0]
    assert [s.value for s in parsed["edge_agent_test_ratio"].samples] == [math.inf, 0.1]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (
            lambda: gauge("edge_agent_upgrade_bytes_total", "x"),
            ("edge_agent_upgrade_bytes_total", "must not", "_total"),
        ),
        (lambda: counter("edge_agent_scans", "x"), ("edge_agent_scans", "must end in _total")),
        (lambda: gauge("edge-agent", "x"), ("'edge-agent'", "metric name")),
        (lambda: gauge("edge_agent_x", "x").add(1, {"bad-label": "v"}), ("edge_agent_x", "'bad-label'")),
        (lambda: gauge("edge_agent_x", "x").add(1, suffix="_bucket"), ("edge_agent_x", "_bucket")),
    ],
)
def test_a_family_the_format_would_not_allow_is_refused_by_name(make: object, words: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as err:
        make()  # type: ignore[operator]
    for w in words:
        assert w in str(err.value)
