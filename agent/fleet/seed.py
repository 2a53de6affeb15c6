"""First boot: take the seed (fleet URL, CA pin, bootstrap token) off the boot partition.

The seed arrives as ``/boot/edge-agent.toml`` (readable by anyone with the SD
card or disk image) or as the systemd credential ``edge-agent.seed``. It is
kept as ``/var/lib/edge-agent/seed.toml`` (0600, atomic) and the plaintext on
the boot partition is removed; a boot partition that refuses deletion gets a
copy without the bootstrap token instead. A systemd credential is read-only
and owned by systemd: it is copied, never changed.

The bootstrap token lives on the box only as long as the box needs it: while
it is not enrolled yet or pending approval. Once the registrar has issued a
certificate the enrollment controller calls :func:`forget_bootstrap_token`,
which rewrites ``seed.toml`` without it (the rest of the seed is kept); from
then on the certificate is the box's credential (renewal is over mTLS). A box
that must enroll again (identity reset after a cloned image, or a certificate
that expired while the box was offline) needs a fresh token from the fleet
operator, given the same ways as a first seed. A credential seen again on a
later boot of an enrolled box is kept without its token (systemd still hands
the credential itself to the agent each boot, read-only under /run).
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import tomli_w

from agent.config import credential_seed
from agent.fleet.identity import IdentityFiles
from agent.fsio import atomic_write
from agent.paths import Paths

log = logging.getLogger("agent.fleet.seed")


TOKEN_KEY = "bootstrap_token"  # noqa: S105 (the key name, not a secret)


def _strip_token(data: bytes) -> bytes:
    doc = tomllib.loads(data.decode())
    fleet = doc.get("fleet")
    if isinstance(fleet, dict):
        fleet.pop(TOKEN_KEY, None)
    return tomli_w.dumps(doc).encode()


def _seed_token(path: Path) -> str:
    """The bootstrap token in a seed file, or "" (no file, not TOML, no token)."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ""
    fleet = doc.get("fleet")
    token = fleet.get(TOKEN_KEY, "") if isinstance(fleet, dict) else ""
    return token if isinstance(token, str) else ""


def kept_bootstrap_token(paths: Paths) -> str:
    """The bootstrap token the kept seed still holds (a box not enrolled yet), or ""."""
    return _seed_token(paths.kept_seed)


def forget_bootstrap_token(paths: Paths) -> bool:
    """After enrollment: rewrite the kept seed without its bootstrap token (atomic, 0600).

    Returns whether the file changed. Everything else in the seed is kept."""
    kept = paths.kept_seed
    if not _seed_token(kept):
        return False
    atomic_write(kept, _strip_token(kept.read_bytes()), mode=0o600, dir_mode=0o700)
    return True


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
    if source != boot and IdentityFiles(paths.identity_dir).cert.is_file():
        data = _strip_token(data)  # enrolled: the kept copy needs no token
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
