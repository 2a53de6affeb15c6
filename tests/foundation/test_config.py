"""Config layers and the errors an operator sees for bad files."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agent.config import load_config, render_redacted, unredacted
from agent.errors import ConfigError
from agent.model.config import AgentConfig
from agent.paths import Paths
from tests.conftest import REPO


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def check_config(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.daemon", "check-config", "--root", str(root), *extra],
        capture_output=True,
        text=True,
        check=False,
    )


def test_layers_merge_in_order_and_dropins_sorted(agent_root: Path) -> None:
    p = Paths(agent_root)
    write(p.vendor_config, '[fleet]\nurl = "https://vendor:8443"\nsite = "vendor"\n[agent]\nlog_level = "debug"\n')
    write(p.etc_config, '[fleet]\nsite = "etc"\n')
    write(p.config_dropins / "20-b.toml", '[fleet]\nsite = "dropin-b"\n')
    write(p.config_dropins / "10-a.toml", '[fleet]\nsite = "dropin-a"\nlabels = {rack = "r1"}\n')
    write(p.config_dropins / "ignored.conf", "not toml at all [")
    write(p.boot_seed, '[fleet]\nbootstrap_token = "tok"\n')
    cfg = load_config(p).config
    assert cfg.fleet.url == "https://vendor:8443"
    assert cfg.fleet.site == "dropin-b"
    assert cfg.fleet.labels == {"rack": "r1"}
    assert cfg.agent.log_level == "debug"
    assert cfg.fleet.bootstrap_token.get_secret_value() == "tok"


def test_fleet_url_takes_a_list_of_replicas_in_order(agent_root: Path) -> None:
    p = Paths(agent_root)
    write(p.boot_seed, '[fleet]\nurl = ["https://r1:8443", "https://r2:8443"]\nca_pin = "sha256:' + "a" * 64 + '"\n')
    cfg = load_config(p).config
    assert cfg.fleet.urls == ("https://r1:8443", "https://r2:8443")
    assert AgentConfig.model_validate({"fleet": {"url": "https://r1:8443"}}).fleet.urls == ("https://r1:8443",)
    assert AgentConfig().fleet.urls == ()  # no fleet
    r = check_config(agent_root)
    assert r.returncode == 0, r.stderr
    assert tomllib.loads(r.stdout)["fleet"]["url"] == ["https://r1:8443", "https://r2:8443"]


def test_unknown_key_names_file_key_and_closest(agent_root: Path) -> None:
    f = write(Paths(agent_root).etc_config, '[kubernetes]\ndistributon = "k3s"\n')
    with pytest.raises(ConfigError) as e:
        load_config(Paths(agent_root))
    msg = str(e.value)
    assert str(f) in msg and "kubernetes.distributon" in msg and "did you mean 'kubernetes.distribution'" in msg


def test_wrong_type_names_key_path_and_expected_type(agent_root: Path) -> None:
    write(Paths(agent_root).etc_config, '[inventory]\nnvidia_smi_timeout = "soon"\n')
    with pytest.raises(ConfigError) as e:
        load_config(Paths(agent_root))
    assert "inventory.nvidia_smi_timeout" in str(e.value) and "expected float" in str(e.value)


def test_malformed_toml_names_line_and_column(agent_root: Path) -> None:
    f = write(Paths(agent_root).config_dropins / "50-x.toml", '[fleet]\nurl = "https://x\n')
    with pytest.raises(ConfigError) as e:
        load_config(Paths(agent_root))
    assert str(f) in str(e.value) and "line 2" in str(e.value) and "column" in str(e.value)


def test_every_bad_file_is_reported_at_once(agent_root: Path) -> None:
    p = Paths(agent_root)
    write(p.etc_config, "[agent]\nlog_level = 'loud'\n")
    write(p.config_dropins / "a.toml", "[nope]\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert len(e.value.problems) == 2


def test_check_config_prints_merged_redacted_or_exits_2(agent_root: Path) -> None:
    p = Paths(agent_root)
    write(p.etc_config, '[fleet]\nbootstrap_token = "super-secret-token"\n[kubernetes]\ntoken = "K10abc::server:pw"\n')
    ok = check_config(agent_root)
    assert ok.returncode == 0, ok.stderr
    assert "super-secret-token" not in ok.stdout and "K10abc" not in ok.stdout
    assert tomllib.loads(ok.stdout)["fleet"]["bootstrap_token"] == "**********"
    write(p.etc_config, '[fleet]\nbootstrap_token = 12345678\nur = "x"\n')
    bad = check_config(agent_root)
    assert bad.returncode == 2
    assert "fleet.ur" in bad.stderr and "12345678" not in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr


def test_check_config_missing_explicit_file(agent_root: Path) -> None:
    r = check_config(agent_root, "--config", str(agent_root / "nope.toml"))
    assert r.returncode == 2 and "nope.toml" in r.stderr and "no such file" in r.stderr


def test_example_config_documents_every_key_with_its_default() -> None:
    doc = tomllib.loads((REPO / "config.example.toml").read_text())
    assert unredacted(AgentConfig.model_validate(doc)) == unredacted(AgentConfig())

    def keys(d: dict[str, object], prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            if isinstance(v, dict) and k in AgentConfig.model_fields:
                out |= keys(v, f"{k}.")
            else:
                out.add(prefix + k)
        return out

    assert keys(doc) == keys(AgentConfig().model_dump())


def test_render_redacted_roundtrips() -> None:
    cfg = AgentConfig()
    assert AgentConfig.model_validate(tomllib.loads(render_redacted(cfg))) == cfg


def test_check_config_refuses_labels_k3s_would_refuse(agent_root: Path) -> None:
    write(
        Paths(agent_root).etc_config, '[kubernetes]\ndistribution = "k3s"\nnode_labels = {"kubernetes.io/role" = "x"}\n'
    )
    r = check_config(agent_root)
    assert r.returncode == 2 and "kubernetes.io/role" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("toml", "key", "expected"),
    [
        ('[fleet]\nurl = "registrar:8443"\n', "fleet.url", "https://HOST"),
        ('[fleet]\nurl = ["https://r1:8443", "http://r2:8443"]\n', "fleet.url", "[1]: expected https://HOST"),
        ('[fleet]\nurl = ["https://r1:8443", "https://r2:99999"]\n', "fleet.url", "[1]: bad port"),
        ('[fleet]\nurl = ["https://r1:8443", 7]\n', "fleet.url", "[1]: expected an https URL, got 7"),
        ("[fleet]\nurl = []\n", "fleet.url", "at least one https URL"),
        ("[fleet]\nurl = 8443\n", "fleet.url", "an https URL or a list of them"),
        ('[fleet]\nca_pin = "abc"\n', "fleet.ca_pin", "sha256:<64 hex digits>"),
        ('[api]\nremote_listen = "nonsense"\n', "api.remote_listen", "HOST:PORT"),
        ('[upgrade]\nmaintenance_window = "2am-4am"\n', "upgrade.maintenance_window", "HH:MM-HH:MM"),
        ('[upgrade]\nrelease_keys = ["not-base64!"]\n', "upgrade.release_keys", "not base64"),
        ('[kubernetes]\nbinary_sha256 = "abc"\n', "kubernetes.binary_sha256", "64 hex digits"),
    ],
)
def test_values_are_checked_when_the_file_is_read(agent_root: Path, toml: str, key: str, expected: str) -> None:
    f = write(Paths(agent_root).etc_config, toml)
    with pytest.raises(ConfigError) as e:
        load_config(Paths(agent_root))
    assert str(f) in str(e.value) and key in str(e.value) and expected in str(e.value)


def test_check_config_never_shows_a_presigned_query(agent_root: Path) -> None:
    url = "https://dl.example/k3s?X-Amz-Signature=sekrit"
    write(Paths(agent_root).etc_config, f'[kubernetes]\nbinary_url = "{url}"\nbinary_sha256 = "{"a" * 64}"\n')
    r = check_config(agent_root)
    assert r.returncode == 0, r.stderr
    assert "sekrit" not in r.stdout and "https://dl.example/k3s" in r.stdout
