"""Parsers, the link tracker and the verdicts, on real files and nvme-cli / nvidia-smi output shapes."""

from __future__ import annotations

import json
from pathlib import Path

from agent.health.evaluate import nic_problems, nvme_problems, verdict
from agent.health.gpu import parse_query
from agent.health.linkmodes import max_supported_mbps
from agent.health.nic import LinkTracker
from agent.health.nvme import hwmon_celsius, parse_smart_log
from agent.health.readings import NvmeHealth, Problem
from agent.model.config import HealthSection

CFG = HealthSection()


def test_smart_log_counters_as_decimal_strings_and_a_missing_sensor() -> None:
    # nvme-cli prints 128-bit counters as numbers; some builds print them as strings
    log = {"critical_warning": 0, "temperature": 0, "percent_used": 255, "media_errors": "340282366920938463463"}
    r = parse_smart_log("nvme3", json.dumps(log))
    assert r.temperature_celsius is None  # 0 K: no composite sensor
    assert r.media_errors == 340282366920938463463
    assert r.percent_used == 255  # vendors may report > 100
    assert [p.reason for p in nvme_problems(r, CFG)] == ["NvmeMediaErrors", "NvmeWearHigh"]


def test_json_that_is_not_a_smart_log_is_unknown() -> None:
    r = parse_smart_log("nvme0", '{"error": "nope"}')
    assert (r.unknown_reason, r.unknown) == (
        "SmartLogGarbage",
        "nvme smart-log for /dev/nvme0 has no critical_warning: not a SMART log",
    )
    assert nvme_problems(r, CFG)[0].unknown


def test_hwmon_under_the_pci_function_on_older_kernels(tmp_path: Path) -> None:
    hw = tmp_path / "class/nvme/nvme0/device/hwmon/hwmon4"
    hw.mkdir(parents=True)
    (hw / "temp1_input").write_text("51850\n")
    assert hwmon_celsius(tmp_path, "nvme0") == 51.85
    assert hwmon_celsius(tmp_path, "nvme1") is None


def test_nvidia_smi_rows_with_unsupported_values_and_cut_output() -> None:
    row = "0, 00000000:3B:00.0, GPU-x, [Not Supported], [N/A], [N/A], [N/A], 0, 1, Yes\n"
    found = parse_query(row)
    assert not isinstance(found, str)
    g = found["0000:3b:00.0"]
    assert (g.temperature_celsius, g.ecc_uncorrected_volatile, g.retired_pages_double_bit) == (None, None, 1)
    assert g.retired_pages_pending is True
    assert (
        parse_query("0, 00000000:3B:00.0, GPU-x, 3")
        == "nvidia-smi line 1 has 4 fields, expected 10: '0, 00000000:3B:00.0, GPU-x, 3'"
    )
    assert isinstance(parse_query("0, nonsense, GPU-x, 1, 0, 0, 0, 0, 0, No"), str)


def _port(root: Path, name: str, **attrs: str) -> None:
    d = root / "class/net" / name
    d.mkdir(parents=True, exist_ok=True)
    for k, v in attrs.items():
        (d / k).write_text(v + "\n")


def test_flaps_window_counter_reset_and_ports_that_never_had_a_link(tmp_path: Path) -> None:
    tracker = LinkTracker(tmp_path)
    _port(tmp_path, "eth0", operstate="up", carrier="1", carrier_changes="2", speed="25000")
    _port(tmp_path, "eth1", operstate="down", carrier="0", carrier_changes="0")
    first = tracker.read(["eth0", "eth1"], 0.0, {})
    assert [nic_problems(n, CFG) for n in first] == [[], []]  # eth1: no cable since start, not a problem
    _port(tmp_path, "eth0", carrier_changes="8")
    eth0 = tracker.read(["eth0", "eth1"], 1800.0, {})[0]
    assert eth0.flaps_last_hour == 3
    assert [p.reason for p in nic_problems(eth0, CFG)] == ["LinkFlapping"]
    _port(tmp_path, "eth0", carrier_changes="1")  # driver reloaded: the counter restarts
    assert tracker.read(["eth0"], 1900.0, {})[0].flaps_last_hour == 0
    _port(tmp_path, "eth0", carrier_changes="3")
    assert tracker.read(["eth0"], 1900.0 + 3600 * 2, {})[0].flaps_last_hour == 1
    assert tracker.read(["eth0"], 1900.0 + 3600 * 4, {})[0].flaps_last_hour == 0


def test_an_unreadable_port_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "class/net/eth9").mkdir(parents=True)
    r = LinkTracker(tmp_path).read(["eth9"], 0.0, {})[0]
    assert r.unknown_reason == "LinkUnreadable" and str(tmp_path / "class/net/eth9/operstate") in (r.unknown or "")


def test_a_problem_outranks_an_unreadable_device() -> None:
    bad = nvme_problems(NvmeHealth(device="nvme1", percent_used=99), CFG)
    unknown = Problem(kind="nvme", device="nvme0", reason="NvmeCliTimeout", message="timed out", unknown=True)
    v = verdict("nvme", 2, [unknown, *bad])
    assert (v.type, v.status, v.reason) == ("NvmeHealth", "False", "NvmeWearHigh")
    assert v.message.endswith("; 1 unreadable")
    assert verdict("nvme", 2, [unknown]).status == "Unknown"
    assert verdict("nvme", 2, []).message == "2 device(s) healthy"


# `ethtool ens1f0np0` on a ConnectX-6 Dx (ethtool 6.1), the part the parser reads and what follows it
CX6_ETHTOOL = """Settings for ens1f0np0:
\tSupported ports: [ Backplane ]
\tSupported link modes:   1000baseKX/Full
\t                        10000baseKR/Full
\t                        25000baseCR/Full
\t                        50000baseCR2/Full
\t                        100000baseSR4/Full
\t                        100000baseCR4/Full
\tSupported pause frame use: Symmetric
\tSupports auto-negotiation: Yes
\tAdvertised link modes:  200000baseCR4/Full
\tSpeed: 10000Mb/s
\tLink detected: yes
"""


def test_fastest_supported_link_mode() -> None:
    assert max_supported_mbps(CX6_ETHTOOL) == 100000  # advertised modes below are not read
    virtio = "Settings for eth0:\n\tSupported ports: [  ]\n\tSupported link modes:   Not reported\n\tSpeed: Unknown!\n"
    assert max_supported_mbps(virtio) is None
