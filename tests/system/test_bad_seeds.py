"""Bad seeds leave the box booted and the agent running, saying what is wrong, retrying where it helps.

Four production boxes boot side by side, each with one thing wrong in its seed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Boxes, dump_box
from fleetbox import seed_on_boot_partition
from hostfleet import REGISTRAR_ADDR, REGISTRAR_NET, HostRegistrar
from nspawn import Container
from probes import condition, status, status_text, unit_active, wait_for

from tests.registrar_process import free_port, seed_toml

pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.fixture(scope="module")
def bad_boxes(
    production_tree: Path, workdir: Path, registrar: HostRegistrar, request: pytest.FixtureRequest
) -> Iterator[dict[str, tuple[Container, str]]]:
    made = Boxes(workdir)
    failed_before = request.session.testsfailed
    good = registrar.token(uses=5)
    unsent = registrar.token(uses=1)  # only the wrong-pin box holds it
    expired = registrar.token(ttl="1s")
    wrong_pin = "sha256:" + "0" * 64
    seeds = {
        "missing": (seed_toml(registrar.url, "", ""), ""),
        "pin": (seed_toml(registrar.url, wrong_pin, unsent), unsent),
        "expired": (seed_toml(registrar.url, registrar.pin, expired), expired),
        # no route to the registrar yet: the test adds one and expects enrollment without a restart
        "offline": (seed_toml(registrar.url, registrar.pin, good), good),
    }
    time.sleep(1.5)  # let the short token expire
    out: dict[str, tuple[Container, str]] = {}
    for i, (case, (seed, token)) in enumerate(seeds.items()):
        routes = () if case == "offline" else (REGISTRAR_NET,)
        box = made.make(f"e2e-s{i}", production_tree, routes=routes)
        seed_on_boot_partition(box, seed)
        out[case] = (box, token)
    try:
        for box, _ in out.values():
            box.start()
        for box, _ in out.values():
            box.wait_booted()
        yield out
    finally:
        if request.session.testsfailed > failed_before:
            for box in made.running:
                dump_box(box)
        made.close()


def enrolled_condition(box: Container, reason: str, timeout: float = 45.0) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        c = condition(status(box), "Enrolled")
        return c if c is not None and c["status"] == "False" and c["reason"] == reason else None

    box.wait_booted(timeout)
    return wait_for(f"{box.name}: Enrolled=False/{reason}", probe, timeout, describe=lambda: status_text(box))


def assert_up_and_telling(box: Container, reason: str, token: str, *, degraded: bool = True) -> str:
    """The box is booted, the agent active, and `agentctl status` shows the reason; no secret leaks.

    A seed that cannot work reads degraded (exit 1); an offline registrar is normal at the
    edge and only informational (exit 0), but still shown."""
    assert box.wait_booted(10) in ("running", "degraded")
    assert unit_active(box, "edge-agent.service") == "active"
    res = box.sh("agentctl status", check=False)
    assert res.returncode == (1 if degraded else 0), f"agentctl status exited {res.returncode}:\n{res.stdout}"
    assert reason in res.stdout, res.stdout
    if token:
        assert token not in res.stdout
        assert token not in box.sh("agentctl status -o json", check=False).stdout
        assert token not in box.journal("edge-agent.service", lines=2000), "the bootstrap token is in the journal"
    return res.stdout


def test_missing_fields_name_the_missing_key(bad_boxes: dict[str, tuple[Container, str]]) -> None:
    box, token = bad_boxes["missing"]
    c = enrolled_condition(box, "BadConfig")
    assert "fleet.ca_pin" in c["message"], c
    assert_up_and_telling(box, "BadConfig", token)


def test_wrong_ca_pin_sends_no_token(bad_boxes: dict[str, tuple[Container, str]], registrar: HostRegistrar) -> None:
    box, token = bad_boxes["pin"]
    c = enrolled_condition(box, "PinMismatch")
    assert "does not match the pinned" in c["message"], c
    assert_up_and_telling(box, "PinMismatch", token)
    # the token never reached the registrar: not used, not even named in its log
    assert registrar.uses_left(token) == 1, "a box that distrusts the registrar enrolled anyway"
    assert token.partition(".")[0] not in registrar.log_tail(1 << 20)


def test_expired_token_is_denied_and_said_so(bad_boxes: dict[str, tuple[Container, str]]) -> None:
    box, token = bad_boxes["expired"]
    c = enrolled_condition(box, "Denied")
    assert "expired" in c["message"], c
    assert_up_and_telling(box, "Denied", token)


def test_unreachable_registrar_is_retried_until_it_answers(
    bad_boxes: dict[str, tuple[Container, str]],
) -> None:
    box, token = bad_boxes["offline"]
    c = enrolled_condition(box, "RegistrarUnreachable")
    assert_up_and_telling(box, "RegistrarUnreachable", token, degraded=False)

    def attempt() -> int:
        got = condition(status(box), "Enrolled") or {}
        m = re.search(r"attempt (\d+)", got.get("message", ""))
        return int(m.group(1)) if m else 0

    first = attempt() or 1
    wait_for("another enrollment attempt", lambda: attempt() > first, 30)
    print(f"\n[bad seed] unreachable registrar: {c['message']}")
    # the network comes back: the same agent process enrolls on its next attempt
    pid = box.unit_pid("edge-agent.service")
    box.sh(f"ip route add {REGISTRAR_NET} via {box.link.host}")
    wait_for(
        f"{box.name} enrolled once the registrar is reachable",
        lambda: (condition(status(box), "Enrolled") or {}).get("status") == "True",
        90,
    )
    assert box.unit_pid("edge-agent.service") == pid, "the agent had to restart to recover"


def test_unreachable_port_names_the_registrar(production_tree: Path, workdir: Path, registrar: HostRegistrar) -> None:
    """A registrar URL where nothing listens: refused connections, retried, said plainly."""
    made = Boxes(workdir)
    url = f"https://{REGISTRAR_ADDR}:{free_port(REGISTRAR_ADDR)}"
    box = made.make("e2e-s9", production_tree, routes=(REGISTRAR_NET,))
    seed_on_boot_partition(box, seed_toml(url, registrar.pin, "unused-token"))
    try:
        box.start()
        c = enrolled_condition(box, "RegistrarUnreachable")
        assert url.split("//")[1] in c["message"] or REGISTRAR_ADDR in c["message"], c
        assert_up_and_telling(box, "RegistrarUnreachable", "unused-token", degraded=False)
    finally:
        made.close()
