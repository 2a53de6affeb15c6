"""Membership calls over mTLS: register, heartbeat, CRL (see agent.registrar.membership for the wire)."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agent.errors import FleetError
from agent.fleet.est_client import raise_for
from agent.fleet.transport import Transport
from agent.model.fleet import Assignment


@dataclass(frozen=True)
class MembershipAnswer:
    cluster: str
    assignment: Assignment | None
    waiting: str
    crl_number: int
    state: str = ""  # "approved" or "pending" (certified while approval policies judge it); "" from older registrars


class RegistrarClient:
    def __init__(self, base_url: str, transport: Transport, mtls: ssl.SSLContext, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.transport = transport
        self.mtls = mtls
        self.timeout = timeout

    async def _post(self, path: str, doc: dict[str, Any]) -> MembershipAnswer:
        resp = await self.transport.request(
            "POST",
            f"{self.base}{path}",
            ssl_context=self.mtls,
            headers={"Content-Type": "application/json"},
            body=json.dumps(doc).encode(),
            timeout=self.timeout,
        )
        raise_for(resp, path)
        try:
            answer = json.loads(resp.body)
            raw = answer.get("assignment")
            return MembershipAnswer(
                cluster=str(answer.get("cluster", "")),
                assignment=Assignment.model_validate(raw) if raw else None,
                waiting=str(answer.get("waiting", "")),
                crl_number=int(answer.get("crl_number", 0)),
                state=str(answer.get("state", "")),
            )
        except (ValueError, AttributeError, ValidationError) as exc:
            raise FleetError(f"{path}: the registrar's answer is not a membership document") from exc

    async def register(self, doc: dict[str, Any]) -> MembershipAnswer:
        return await self._post("/v1/fleet/register", doc)

    async def heartbeat(self, doc: dict[str, Any]) -> MembershipAnswer:
        return await self._post("/v1/fleet/heartbeat", doc)

    async def crl(self) -> bytes:
        """The fleet CRL, DER."""
        resp = await self.transport.request(
            "GET", f"{self.base}/v1/fleet/crl", ssl_context=self.mtls, timeout=self.timeout
        )
        raise_for(resp, "crl")
        return resp.body
