"""Reading sysfs attributes that may be absent, unreadable, garbage, or gone mid-scan.

A collector never raises for bad hardware data: each read either yields a
value or records ``field -> reason`` in :attr:`Fields.problems`, and the field
is left null. Attributes are read straight from the device directory (faster
than libudev's attribute cache, and the error says *why*); under umockdev the
preload library redirects these reads to the recorded tree.
"""

from __future__ import annotations

import errno
import os

MAX_ATTR = 4096


def read_raw(path: str, limit: int = MAX_ATTR, *, truncate: bool = False) -> tuple[bytes | None, str | None]:
    """The bytes of one sysfs file, or None and the reason it could not be read.

    More than ``limit`` bytes is garbage for an attribute, unless ``truncate``
    says only the head of the file is wanted (/proc/cpuinfo).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, "absent"
    except PermissionError:
        return None, "permission denied"
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    try:
        data = os.read(fd, limit + 1)
    except OSError as exc:
        if exc.errno == errno.ENODEV:
            return None, "device removed during scan"
        return None, f"unreadable: {exc.strerror or exc}"
    finally:
        os.close(fd)
    if len(data) > limit:
        if truncate:
            return data[:limit], None
        return None, f"larger than {limit} bytes"
    return data, None


def decode(data: bytes) -> tuple[str | None, str | None]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not valid UTF-8"
    text = text.strip().strip("\x00").strip()
    if not text:
        return None, "empty"
    if not text.isprintable():
        return None, "contains control characters"
    return text, None


class Fields:
    """Reads the attributes of one sysfs directory and remembers why any field is null."""

    def __init__(self, sys_path: str, problems: dict[str, str] | None = None) -> None:
        self.sys_path = sys_path
        self.problems: dict[str, str] = {} if problems is None else problems

    def note(self, field: str, reason: str) -> None:
        self.problems.setdefault(field, reason)

    def text(self, attr: str, field: str, *, required: bool = True) -> str | None:
        """Attribute ``attr`` as text; an absent one is a problem only if ``required``."""
        raw, why = read_raw(os.path.join(self.sys_path, attr))
        if raw is None:
            if why == "absent" and not os.path.isdir(self.sys_path):
                why = "device removed during scan"
            if required or why != "absent":
                self.note(field, f"{attr}: {why}")
            return None
        value, why = decode(raw)
        if value is None:
            self.note(field, f"{attr}: {why}")
        return value

    def document(self, attr: str, field: str, limit: int = 65536) -> str | None:
        """A multi-line text file (/proc/meminfo, os-release), or its first ``limit`` bytes."""
        raw, why = read_raw(os.path.join(self.sys_path, attr), limit, truncate=True)
        if raw is None:
            self.note(field, f"{attr}: {why}")
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.note(field, f"{attr}: not valid UTF-8")
            return None

    def integer(self, attr: str, field: str, *, base: int = 10, required: bool = True) -> int | None:
        value = self.text(attr, field, required=required)
        if value is None:
            return None
        try:
            return int(value, base)
        except ValueError:
            self.note(field, f"{attr}: not an integer: {value[:40]!r}")
            return None

    def hex_id(self, attr: str, field: str, digits: int = 4) -> str | None:
        """A '0x10de'-style attribute as ``digits`` lower-case hex digits."""
        value = self.integer(attr, field, base=16)
        if value is None:
            return None
        if not 0 <= value < 16**digits:
            self.note(field, f"{attr}: {value:#x} does not fit {digits} hex digits")
            return None
        return f"{value:0{digits}x}"

    def link(self, name: str) -> str | None:
        """Basename of the symlink ``name`` (driver, subsystem, physfn...) or None."""
        try:
            return os.path.basename(os.readlink(os.path.join(self.sys_path, name)))
        except OSError:
            return None

    def exists(self, name: str) -> bool:
        return os.path.exists(os.path.join(self.sys_path, name))


def listdir(path: str) -> list[str]:
    """Directory entries, sorted; empty when the directory is absent or unreadable."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
