"""`agentctl doctor`: every check a support engineer would run, locally and without the fleet.

One finding per check with the fix; exit 0 all good, 1 warnings, 2 failures.
Works with the agent daemon down (it says so and still checks the files) and
under ``--root DIR``. Imported lazily: `agentctl status` never pays for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.cli.doctor.box import check_agent, check_config, check_disk, check_runtime, check_socket, shell_runner
from agent.cli.doctor.findings import Finding, document, exit_code, render_text
from agent.cli.doctor.fleet import check_certificate, check_registrar, check_seed
from agent.cli.doctor.secrets import known_secrets
from agent.cli.transport import get_status
from agent.paths import Paths
from agent.runtime.diagnose import mask


def diagnose_box(paths: Paths, sock: str, timeout: float) -> list[Finding]:
    secrets = known_secrets(paths)
    status_doc, why = get_status(sock, timeout)
    findings = check_agent(status_doc, why)
    config_findings, config = check_config(paths)
    group = config.api.socket_group if config is not None else "edge-agent"
    findings += check_socket(Path(sock), group) + config_findings
    fleet = config.fleet if config is not None else None
    findings += check_seed(paths, fleet)
    if fleet is not None and fleet.url:
        findings += check_registrar(fleet, paths, timeout)
    elif fleet is not None:
        findings.append(Finding("registrar.dns", "skip", "no fleet.url configured: the box is not in a fleet"))
    findings += check_certificate(paths, in_fleet=fleet is None or bool(fleet.url))
    sections = (status_doc or {}).get("sections", {})
    kube = sections.get("kubernetes") if status_doc is not None else None
    runner = shell_runner()
    node_name = config.agent.node_name if config is not None else ""
    findings += check_runtime(paths, runner, kube if isinstance(kube, dict) else ({} if status_doc else None),
                              secrets, node_name)  # fmt: skip
    findings += check_disk(paths)
    return [Finding(f.check, f.status, mask(f.message, secrets), mask(f.fix, secrets), f.path) for f in findings]


def run(root: str | None, sock: str, output: str, timeout: float) -> int:
    paths = Paths(Path(root or "/"))
    findings = diagnose_box(paths, sock, timeout)
    if output == "json":
        sys.stdout.write(json.dumps(document(findings, str(paths.root)), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(findings))
    return exit_code(findings)
