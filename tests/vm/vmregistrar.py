"""The fleet side of the VM tier: an edge-registrar the guests reach, and nothing else."""

from __future__ import annotations

from pathlib import Path

from qemu import REGISTRAR_GUEST_ADDR, REGISTRAR_GUEST_PORT

from tests.registrar_process import RegistrarProcess, seed_toml


class Registrar(RegistrarProcess):
    """An edge-registrar on 127.0.0.1 (or ``listen``); QEMU guests reach it as https://10.0.2.100:8443 (guestfwd)."""

    def __init__(
        self, state_dir: Path, repo: Path, *, listen: str = "127.0.0.1", reached_as: str = REGISTRAR_GUEST_ADDR
    ) -> None:
        super().__init__(state_dir, repo, listen)
        self.reached_as = reached_as

    @property
    def url(self) -> str:
        # guests behind QEMU's guestfwd reach it at a fixed port; anything else at the port it listens on
        port = REGISTRAR_GUEST_PORT if self.reached_as == REGISTRAR_GUEST_ADDR else self.port
        return f"https://{self.reached_as}:{port}"

    def serve_args(self) -> list[str]:
        return ["--san", self.reached_as, "--servers", "1"]

    def seed(self, site: str) -> str:
        """A seed for one box of ``site`` (a token of two uses: a box may enroll again after a reset)."""
        return seed_toml(self.url, self.pin, self.token(uses=2, site=site), site=site)
