"""What k3s and k0s say their version is (contract: `k3s --version`, `k0s version`)."""

from __future__ import annotations

import re
from pathlib import Path

from agent.errors import RuntimeInstallError


def parse_version(distribution: str, output: str) -> str:
    """``k3s version v1.33.1+k3s1 (abcdef12)`` -> v1.33.1+k3s1; ``v1.36.3+k0s.1`` -> itself."""
    pattern = r"k3s version (v\S+)" if distribution == "k3s" else r"^(v\d\S*)"
    m = re.search(pattern, output, re.MULTILINE)
    if not m:
        raise RuntimeInstallError(f"cannot read the {distribution} version from: {output.strip()[:200]!r}")
    return m.group(1)


def version_argv(distribution: str, binary: Path) -> list[str]:
    return [str(binary), "--version"] if distribution == "k3s" else [str(binary), "version"]
