"""`agentd check-config` names the key of a bad [network] / [storage] value (a real agentd process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def check_config(root: Path, text: str) -> subprocess.CompletedProcess[str]:
    etc = root / "etc/edge-agent/agent.toml"
    etc.parent.mkdir(parents=True, exist_ok=True)
    etc.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "agent.daemon", "check-config", "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_invalid_cidr_names_its_key_and_file(tmp_path: Path) -> None:
    r = check_config(tmp_path, '[[network.selectors]]\nname = "ens*"\n[[network.selectors]]\ncidr = "10.1.2/33"\n')
    assert r.returncode == 2, r.stdout
    assert "network.selectors.1.cidr" in r.stderr and "expected a CIDR" in r.stderr
    assert "etc/edge-agent/agent.toml" in r.stderr and "Traceback" not in r.stderr


def test_storage_keys_are_checked_and_the_defaults_print(tmp_path: Path) -> None:
    r = check_config(tmp_path, '[storage]\nenabled = true\nmode = "zfs"\n')
    assert r.returncode == 2 and "storage.mode" in r.stderr
    r = check_config(tmp_path, '[[storage.device_classes]]\nname = "Fast_1"\n')
    assert r.returncode == 2 and "storage.device_classes.0.name" in r.stderr and "DNS label" in r.stderr
    two = '[[storage.device_classes]]\nname = "a"\nvolume_group = "vg0"\n[[storage.device_classes]]\nname = "b"\n'
    r = check_config(tmp_path, two + 'volume_group = "vg0"\n')
    assert (
        r.returncode == 2
        and "storage.device_classes:" in r.stderr
        and "volume group vg0 used by more than one class" in r.stderr
    )
    r = check_config(tmp_path, "[storage]\nenabled = true\n")
    assert r.returncode == 0 and "[storage]" in r.stdout and "pcie" in r.stdout
