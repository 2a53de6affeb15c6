"""Every path the agent touches, derived from one object, under an optional root.

Tests, the demo and image builds pass ``--root DIR`` and the real code runs
against a scratch tree. Nothing else in the agent spells an absolute path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Paths:
    root: Path = Path("/")

    def under(self, absolute: str | PurePosixPath) -> Path:
        """Map an absolute path on the box to the same path under ``root``."""
        rel = PurePosixPath(absolute)
        if not rel.is_absolute():
            raise ValueError(f"not an absolute path: {absolute}")
        return self.root.joinpath(*rel.parts[1:])

    # configuration, lowest layer first
    @property
    def vendor_config(self) -> Path:
        return self.under("/usr/lib/edge-agent/agent.toml")

    @property
    def etc_config(self) -> Path:
        return self.under("/etc/edge-agent/agent.toml")

    @property
    def config_dropins(self) -> Path:
        return self.under("/etc/edge-agent/agent.toml.d")

    @property
    def boot_seed(self) -> Path:
        return self.under("/boot/edge-agent.toml")

    # durable state
    @property
    def state_dir(self) -> Path:
        return self.under("/var/lib/edge-agent")

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def kept_seed(self) -> Path:
        """The first-boot seed after the agent moved it off the boot partition (0600)."""
        return self.state_dir / "seed.toml"

    @property
    def identity_dir(self) -> Path:
        return self.state_dir / "identity"

    @property
    def bundles_dir(self) -> Path:
        return self.state_dir / "bundles"

    @property
    def versions_dir(self) -> Path:
        return self.state_dir / "versions"

    # runtime
    @property
    def run_dir(self) -> Path:
        return self.under("/run/edge-agent")

    @property
    def socket(self) -> Path:
        return self.run_dir / "agent.sock"

    @property
    def machine_id(self) -> Path:
        return self.under("/etc/machine-id")

    @property
    def systemd_dir(self) -> Path:
        return self.under("/etc/systemd/system")
