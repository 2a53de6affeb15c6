"""First boot: take the seed (fleet URL, CA pin, bootstrap token) off the boot partition.

The seed arrives as ``/boot/edge-agent.toml`` (readable by anyone with the SD
card or disk image) or as the systemd credential ``edge-agent.seed``. It is
kept as ``/var/lib/edge-agent/seed.toml`` (0600, atomic) and the plaintext on
the boot partition is removed; a boot partition that refuses deletion gets a
copy without the bootstrap token instead. A systemd credential is read-only
and owned by systemd: it is copied, never changed.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import tomli_w

from agent.config import credential_seed
from agent.fsio import atomic_write
from agent.paths import Paths

log = logging.getLogger("agent.fleet.seed")


def _strip_token(data: bytes) -> bytes:
    doc = tomllib.loads(data.decode())
    fleet = doc.get("fleet")
    if isinstance(fleet, dict):
        fleet.pop("bootstrap_token", None)
    return tomli_w.dumps(doc).encode()


def adopt_seed(paths: Paths) -> str | None:
    """Keep the seed in the state directory (0600) and remove the plaintext token from /boot.

    Returns a line saying what was done, or None when there was nothing to adopt.
    A seed that is not valid TOML is left where it is (config loading names the
    file and the problem)."""
    boot = paths.boot_seed
    cred = credential_seed(paths)
    source: Path | None = boot if boot.is_file() else (cred if cred.is_file() else None)
    if source is None:
        return None
    data = source.read_bytes()
    try:
        tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return f"seed {source} is not valid TOML; left in place"
    kept = paths.kept_seed
    if source != boot and kept.is_file() and kept.read_bytes() == data:
        return None  # the credential comes back every boot; already kept
    atomic_write(kept, data, mode=0o600, dir_mode=0o700)
    if source != boot:
        return f"kept the seed from credential {source} in {kept}"
    try:
        boot.unlink()
        return f"moved the first-boot seed {boot} to {kept}"
    except OSError as unlink_error:
        try:
            atomic_write(boot, _strip_token(data), mode=0o600)
        except OSError as exc:
            log.error("cannot remove the bootstrap token from %s: %s", boot, exc.strerror)
            return f"kept the seed in {kept}; {boot} could not be changed ({exc.strerror}), it still holds the token"
        return f"kept the seed in {kept}; {boot} could not be removed ({unlink_error.strerror}), its token was"
