"""Which status a heartbeat carries (flightctl#1537: status only on change).

All of it when it changed (bookkeeping that moves at every call or poll, ``VOLATILE``, aside: sensor
readings count as changes) since a heartbeat last delivered it, or when the registrar did not say it keeps
the last one (``MembershipAnswer.status_kept``: older registrars store what each heartbeat carries, so
they get it every time); none when it did not change, except every ``RESEND``-th heartbeat, which carries
it anyway (a registry restored from a backup catches up). Per node id: a new identity starts afresh.
Reads the status the controller builds and the answers; writes nothing but its own memory.
"""

from __future__ import annotations

from typing import Any

RESEND = 10  # at least every 10th heartbeat carries the whole status
# per section, the fields that change at every registrar call or health poll without saying anything new:
# the registrar knows when it last heard from the box (its last_seen)
VOLATILE = {"fleet": ("last_contact",), "health": ("polled_at", "polls", "last_poll_seconds")}


def _telling(status: dict[str, Any]) -> dict[str, Any]:
    """``status`` without the VOLATILE fields: what a change is judged on."""
    sections = status.get("sections")
    if not isinstance(sections, dict):
        return status
    quiet = dict(sections)
    for name, fields in VOLATILE.items():
        if isinstance(section := quiet.get(name), dict):
            quiet[name] = {k: v for k, v in section.items() if k not in fields}
    return {**status, "sections": quiet}


class StatusReport:
    def __init__(self) -> None:
        self._node = ""
        self._delivered: dict[str, Any] | None = None  # the status the registrar has, as far as we know (telling)
        self._sending: dict[str, Any] | None = None  # carried by the heartbeat in flight (telling)
        self._kept = False  # the registrar's last answer said it keeps the status
        self._left_out = 0  # heartbeats since one carried the status

    def carry(self, node_id: str, status: dict[str, Any]) -> dict[str, Any] | None:
        """The status the next heartbeat of ``node_id`` carries: ``status``, or None when it is left out."""
        if node_id != self._node:
            self._node, self._delivered, self._kept, self._left_out = node_id, None, False, 0
        telling = _telling(status)
        unchanged = self._kept and telling == self._delivered and self._left_out < RESEND - 1
        self._sending = None if unchanged else telling
        return None if unchanged else status

    def answered(self, status_kept: bool) -> None:
        """The heartbeat of the last ``carry`` was answered (200): what it carried is delivered."""
        if self._sending is None:
            self._left_out += 1
        else:
            self._delivered, self._left_out = self._sending, 0
        self._sending = None
        self._kept = status_kept

    def failed(self) -> None:
        """That heartbeat got no answer: whether it was stored is unknown, so the next one carries the status."""
        self._delivered, self._sending = None, None
